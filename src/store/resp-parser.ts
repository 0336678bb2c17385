// RESP2 replies (the Redis wire protocol), parsed incrementally from socket chunks. Only what
// the quota scripts' connection receives: simple strings, errors, integers, bulk strings and
// arrays of them.

/** An error reply from Redis (`-NOSCRIPT ...`, `-ERR ...`): a value, not a thrown failure. */
export class RespError extends Error {
  override readonly name = 'RespError'
}

export type RespValue = string | number | null | RespError | RespValue[]

/** Thrown when the bytes are not RESP: the connection cannot be trusted any more. */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError'
}

const CR = 13
const INCOMPLETE = Symbol('incomplete')
type Parsed = RespValue | typeof INCOMPLETE

/**
 * Feeds socket chunks in, hands complete replies out in order. A reply split across chunks
 * waits for the rest; the unconsumed tail is kept (replies here are small, so re-parsing a
 * partial one from its start when more bytes come costs little).
 */
export class RespParser {
  private buf: Buffer | null = null
  private pos = 0

  constructor(private readonly onReply: (value: RespValue) => void) {}

  feed(chunk: Buffer): void {
    if (this.buf === null) {
      this.buf = chunk
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk])
    }
    this.pos = 0
    const buf = this.buf
    while (this.pos < buf.length) {
      const start = this.pos
      const value = this.parse(buf)
      if (value === INCOMPLETE) {
        this.pos = start
        return
      }
      this.onReply(value)
    }
    this.buf = null
    this.pos = 0
  }

  /** Forgets a partial reply (the connection it came from is gone). */
  reset(): void {
    this.buf = null
    this.pos = 0
  }

  private parse(buf: Buffer): Parsed {
    const type = buf[this.pos]
    const lineEnd = buf.indexOf(CR, this.pos + 1)
    if (lineEnd < 0 || lineEnd + 1 >= buf.length) return INCOMPLETE
    const lineStart = this.pos + 1
    const next = lineEnd + 2
    switch (type) {
      case 0x2b: // '+'
        this.pos = next
        return buf.toString('utf8', lineStart, lineEnd)
      case 0x2d: // '-'
        this.pos = next
        return new RespError(buf.toString('utf8', lineStart, lineEnd))
      case 0x3a: // ':'
        this.pos = next
        return integer(buf, lineStart, lineEnd)
      case 0x24: { // '$'
        const len = integer(buf, lineStart, lineEnd)
        if (len < 0) {
          this.pos = next
          return null
        }
        if (next + len + 2 > buf.length) return INCOMPLETE
        this.pos = next + len + 2
        return buf.toString('utf8', next, next + len)
      }
      case 0x2a: { // '*'
        const n = integer(buf, lineStart, lineEnd)
        this.pos = next
        if (n < 0) return null
        const items: RespValue[] = new Array(n)
        for (let i = 0; i < n; i++) {
          if (this.pos >= buf.length) return INCOMPLETE
          const item = this.parse(buf)
          if (item === INCOMPLETE) return INCOMPLETE
          items[i] = item
        }
        return items
      }
      default:
        throw new RespProtocolError(`unexpected reply type byte ${type}`)
    }
  }
}

/** The decimal integer in buf[from, to), optionally negative. */
function integer(buf: Buffer, from: number, to: number): number {
  let negative = false
  let i = from
  if (buf[i] === 0x2d) {
    negative = true
    i++
  }
  if (i >= to) throw new RespProtocolError('empty integer')
  let n = 0
  for (; i < to; i++) {
    const d = buf[i] - 0x30
    if (d < 0 || d > 9) throw new RespProtocolError('malformed integer')
    n = n * 10 + d
  }
  return negative ? -n : n
}
