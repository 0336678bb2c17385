/**
 * An incremental reader of HTTP/1.1 replies, fed a connection's bytes as they come: the status
 * line and headers, then the body by Content-Length, chunked coding or up to the connection's
 * close. Strict where a lenient reader could be fooled into splitting one reply into two
 * (request smuggling's mirror image): CRLF line ends only, no folded headers, one
 * Content-Length, hex chunk sizes of bounded length. Errors carry llhttp's `HPE_*` codes,
 * the ones undici (which this replaces on the request path) reported, so health rules and
 * audit reasons read the same.
 */

/**
 * What the reader reports, in order: one `head`, then body chunks. The reply's end is read
 * from `done` after each `feed` (never mid-feed, so bytes after the reply are seen first).
 */
export interface ReplyEvents {
  /** `keepAlive`: the connection may carry another request once this reply has ended. */
  head(status: number, contentType: string | null, keepAlive: boolean, keepAliveMs: number | null): void
  body(chunk: Buffer): void
}

export class ReplyFormatError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** The value of an ASCII hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

export const MAX_HEAD_BYTES = 64 * 1024
const MAX_SIZE_LINE = 1024
const CR = 13
const LF = 10
const HEAD_END = Buffer.from('\r\n\r\n')

const enum Phase {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** `keep-alive: timeout=5, max=100` → 5000; null when absent or unreadable. */
function keepAliveTimeout(value: string): number | null {
  const m = /(?:^|[\s,;])timeout\s*=\s*(\d+)/i.exec(value)
  return m ? Number(m[1]) * 1000 : null
}

export class ReplyReader {
  private phase = Phase.Head
  /** Head bytes kept while the blank line has not arrived yet. */
  private pending: Buffer | null = null
  private remaining = 0
  private sizeLine = ''
  private trailerBytes = 0
  /** Bytes came after the reply ended: the connection cannot be trusted with another. */
  trailingGarbage = false

  constructor(private readonly events: ReplyEvents) {}

  get done(): boolean {
    return this.phase === Phase.Done
  }

  /** True while the body runs to the connection's close (so a close ends it cleanly). */
  get endsAtClose(): boolean {
    return this.phase === Phase.UntilClose
  }

  /** Ready for the next reply on the same connection. */
  reset(): void {
    this.phase = Phase.Head
    this.pending = null
    this.remaining = 0
    this.sizeLine = ''
    this.trailerBytes = 0
    this.trailingGarbage = false
  }

  /** The connection closed: ends a body that runs to the close (`done`), or throws. */
  close(): void {
    if (this.phase === Phase.UntilClose) {
      this.phase = Phase.Done
      return
    }
    if (this.phase !== Phase.Done) throw new ReplyFormatError('UND_ERR_SOCKET', 'other side closed')
  }

  /** Reads one piece of the connection's bytes; throws ReplyFormatError on a malformed reply. */
  feed(data: Buffer): void {
    let at = 0
    const n = data.length
    while (at < n) {
      switch (this.phase) {
        case Phase.Head: {
          const used = this.readHead(data, at)
          if (used < 0) return
          at = used
          break
        }
        case Phase.Length: {
          const take = Math.min(this.remaining, n - at)
          this.remaining -= take
          const chunk = at === 0 && take === n ? data : data.subarray(at, at + take)
          at += take
          if (this.remaining === 0) this.phase = Phase.Done
          this.events.body(chunk)
          break
        }
        case Phase.ChunkSize:
          at = this.readSizeLine(data, at)
          break
        case Phase.ChunkData: {
          const take = Math.min(this.remaining, n - at)
          this.remaining -= take
          const chunk = data.subarray(at, at + take)
          at += take
          if (this.remaining === 0) {
            this.phase = Phase.ChunkDataEnd
            this.sizeLine = ''
          }
          this.events.body(chunk)
          break
        }
        case Phase.ChunkDataEnd:
          at = this.readChunkEnd(data, at)
          break
        case Phase.Trailers:
          at = this.readTrailers(data, at)
          break
        case Phase.UntilClose: {
          const chunk = at === 0 ? data : data.subarray(at)
          at = n
          this.events.body(chunk)
          break
        }
        case Phase.Done:
          this.trailingGarbage = true
          return
      }
    }
  }

  /** Returns where the body starts in `data`, or -1 when the head is not complete yet. */
  private readHead(data: Buffer, at: number): number {
    let buf = at === 0 ? data : data.subarray(at)
    let searchFrom = 0
    if (this.pending !== null) {
      searchFrom = Math.max(0, this.pending.length - 3)
      buf = Buffer.concat([this.pending, buf])
    }
    const end = buf.indexOf(HEAD_END, searchFrom)
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) throw new ReplyFormatError('HPE_HEADER_OVERFLOW', 'reply head too large')
      this.pending = buf
      return -1
    }
    if (end > MAX_HEAD_BYTES) throw new ReplyFormatError('HPE_HEADER_OVERFLOW', 'reply head too large')
    const consumedBefore = this.pending === null ? 0 : this.pending.length
    this.pending = null
    const bodyAt = at + end + 4 - consumedBefore
    this.parseHead(buf.toString('latin1', 0, end))
    return bodyAt
  }

  private parseHead(head: string): void {
    // Status line: HTTP/1.x NNN[ reason]
    let lineEnd = head.indexOf('\r\n')
    if (lineEnd < 0) lineEnd = head.length
    if (lineEnd < 12 || !head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32 || (lineEnd > 12 && head.charCodeAt(12) !== 32)) {
      throw new ReplyFormatError('HPE_INVALID_CONSTANT', 'malformed status line')
    }
    const minor = head.charCodeAt(7)
    if (minor !== 48 && minor !== 49) throw new ReplyFormatError('HPE_INVALID_VERSION', 'unsupported HTTP version')
    const status = Number(head.slice(9, 12))
    if (!(status >= 100 && status <= 999) || !/^\d{3}$/.test(head.slice(9, 12))) {
      throw new ReplyFormatError('HPE_INVALID_STATUS', 'malformed status code')
    }
    let contentType: string | null = null
    let contentLength = -1
    let chunked = false
    let transferEncoding = false
    let keepAlive = minor === 49
    let keepAliveMs: number | null = null
    let pos = lineEnd + 2
    while (pos < head.length) {
      let next = head.indexOf('\r\n', pos)
      if (next < 0) next = head.length
      const colon = head.indexOf(':', pos)
      if (colon < 0 || colon > next) throw new ReplyFormatError('HPE_INVALID_HEADER_TOKEN', 'malformed header line')
      const name = head.slice(pos, colon)
      if (!TOKEN.test(name)) throw new ReplyFormatError('HPE_INVALID_HEADER_TOKEN', 'malformed header name')
      const value = head.slice(colon + 1, next).trim()
      if (value.includes('\n') || value.includes('\r')) throw new ReplyFormatError('HPE_LF_EXPECTED', 'bare CR or LF in a header')
      switch (name.length) {
        case 12:
          if (name.toLowerCase() === 'content-type') contentType = value
          break
        case 14:
          if (name.toLowerCase() === 'content-length') {
            if (!/^\d{1,15}$/.test(value)) throw new ReplyFormatError('HPE_INVALID_CONTENT_LENGTH', 'malformed Content-Length')
            const length = Number(value)
            if (contentLength >= 0 && contentLength !== length) {
              throw new ReplyFormatError('HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length headers')
            }
            contentLength = length
          }
          break
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            transferEncoding = true
            // Only the last coding tells how the body ends.
            const codings = value.toLowerCase().split(',')
            chunked = codings[codings.length - 1].trim() === 'chunked'
          }
          break
        case 10: {
          const lowered = name.toLowerCase()
          if (lowered === 'connection') {
            const tokens = value.toLowerCase()
            if (/(?:^|,)\s*close\s*(?:,|$)/.test(tokens)) keepAlive = false
            else if (/(?:^|,)\s*keep-alive\s*(?:,|$)/.test(tokens)) keepAlive = true
          } else if (lowered === 'keep-alive') {
            keepAliveMs = keepAliveTimeout(value)
          }
          break
        }
      }
      pos = next + 2
    }
    if (status < 200) {
      // 1xx: an interim answer; the real one follows on the same connection.
      if (status === 101) throw new ReplyFormatError('HPE_UNEXPECTED_SPACE', 'unexpected protocol switch')
      return
    }
    if (transferEncoding) {
      // A reply with both is how smuggling starts: trust the coding, never reuse the connection.
      if (contentLength >= 0) keepAlive = false
      if (chunked) {
        this.phase = Phase.ChunkSize
        this.sizeLine = ''
      } else {
        this.phase = Phase.UntilClose
        keepAlive = false
      }
    } else if (status === 204 || status === 304) {
      this.phase = Phase.Done
    } else if (contentLength >= 0) {
      this.remaining = contentLength
      this.phase = contentLength === 0 ? Phase.Done : Phase.Length
    } else {
      this.phase = Phase.UntilClose
      keepAlive = false
    }
    this.events.head(status, contentType, keepAlive, keepAliveMs)
  }

  /** `1a;ext=v\r\n`: the next chunk's size. */
  private readSizeLine(data: Buffer, at: number): number {
    // Usual case (a whole `1a\r\n` in this piece, no extension): read from the bytes, no string.
    if (this.sizeLine === '') {
      let size = 0
      let i = at
      for (; i < data.length && i - at <= 12; i++) {
        const v = hexDigit(data[i])
        if (v < 0) break
        size = size * 16 + v
      }
      if (i > at && i - at <= 12 && i + 1 < data.length && data[i] === CR && data[i + 1] === LF) {
        this.startChunk(size)
        return i + 2
      }
    }
    const lf = data.indexOf(LF, at)
    const stop = lf < 0 ? data.length : lf
    this.sizeLine += data.toString('latin1', at, stop)
    if (this.sizeLine.length > MAX_SIZE_LINE) throw new ReplyFormatError('HPE_INVALID_CHUNK_SIZE', 'chunk size line too long')
    if (lf < 0) return data.length
    const line = this.sizeLine
    this.sizeLine = ''
    if (line.charCodeAt(line.length - 1) !== CR) throw new ReplyFormatError('HPE_LF_EXPECTED', 'chunk size line without CRLF')
    let end = line.indexOf(';')
    if (end < 0) end = line.length - 1
    const hex = line.slice(0, end).trimEnd()
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ReplyFormatError('HPE_INVALID_CHUNK_SIZE', 'malformed chunk size')
    this.startChunk(parseInt(hex, 16))
    return lf + 1
  }

  private startChunk(size: number): void {
    if (size === 0) {
      this.phase = Phase.Trailers
      this.trailerBytes = 0
    } else {
      this.remaining = size
      this.phase = Phase.ChunkData
    }
  }

  /** The CRLF after a chunk's data. */
  private readChunkEnd(data: Buffer, at: number): number {
    if (this.sizeLine === '' && at + 1 < data.length && data[at] === CR && data[at + 1] === LF) {
      this.phase = Phase.ChunkSize
      return at + 2
    }
    while (at < data.length && this.sizeLine.length < 2) {
      this.sizeLine += String.fromCharCode(data[at])
      at++
    }
    if (this.sizeLine.length < 2) return at
    if (this.sizeLine !== '\r\n') throw new ReplyFormatError('HPE_STRICT', 'chunk data not followed by CRLF')
    this.sizeLine = ''
    this.phase = Phase.ChunkSize
    return at
  }

  /** Trailer lines after the last chunk, up to an empty line; their content is ignored. */
  private readTrailers(data: Buffer, at: number): number {
    for (;;) {
      const lf = data.indexOf(LF, at)
      const stop = lf < 0 ? data.length : lf
      this.trailerBytes += stop - at
      if (this.trailerBytes > MAX_HEAD_BYTES) throw new ReplyFormatError('HPE_HEADER_OVERFLOW', 'trailers too large')
      this.sizeLine += data.toString('latin1', at, stop)
      if (lf < 0) return data.length
      const line = this.sizeLine
      this.sizeLine = ''
      at = lf + 1
      if (line.charCodeAt(line.length - 1) !== CR) throw new ReplyFormatError('HPE_LF_EXPECTED', 'trailer line without CRLF')
      if (line.length === 1) {
        this.phase = Phase.Done
        return at
      }
    }
  }
}
