import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from '../log/index.js'
import { recordHash } from './hash-chain.js'

/** Where sealed batches go. Only the sink calls these, one at a time. */
export interface AuditTarget {
  readonly description: string
  /** Opens the destination; resolves to the hash the chain must continue from, when it already holds records. */
  open(): Promise<string | null>
  /** Writes one batch; on failure nothing of it stays behind (as far as the OS lets us undo). */
  write(text: string): Promise<void>
  sync(): Promise<void>
  close(): Promise<void>
}

const TAIL_CHUNK = 64 * 1024

/** An append-only file (created with its directory), one writer per file. */
export function fileTarget(path: string, log: Logger): AuditTarget {
  let fh: FileHandle | null = null
  let regular = false
  // Bytes known to be complete records; a failed write is truncated back to this.
  let size = 0

  return {
    description: path,
    async open() {
      await mkdir(dirname(path), { recursive: true })
      const handle = await open(path, 'a+')
      try {
        const st = await handle.stat()
        regular = st.isFile()
        size = regular ? st.size : 0
        let last: string | null = null
        if (size > 0) {
          const tail = await readChainTail(handle, size)
          if (tail.truncateTo !== undefined) {
            log.warn('audit file ended in a partial line (a crash mid-write); removed it', {
              path,
              bytes: size - tail.truncateTo,
            })
            await handle.truncate(tail.truncateTo)
            size = tail.truncateTo
          }
          if (tail.needsNewline) {
            await writeAll(handle, Buffer.from('\n'))
            size += 1
          }
          last = tail.lastHash
          if (last === null && size > 0) {
            log.warn('audit file does not end with a chained record; new records start a new chain', { path })
          }
        }
        fh = handle
        return last
      } catch (err) {
        await handle.close().catch(() => undefined)
        throw err
      }
    },
    async write(text) {
      if (!fh) throw new Error('audit file is not open')
      const buf = Buffer.from(text)
      try {
        await writeAll(fh, buf)
        size += buf.length
      } catch (err) {
        // A disk that fills mid-batch leaves half a line; cut it so the retry starts clean.
        if (regular) {
          const current = await fh.stat().catch(() => null)
          if (current && current.size > size) await fh.truncate(size).catch(() => undefined)
        }
        throw err
      }
    },
    async sync() {
      if (fh && regular) await fh.datasync()
    },
    async close() {
      const handle = fh
      fh = null
      if (handle) await handle.close()
    },
  }
}

/** What the stdout sink needs of a stream (process.stdout fits). */
export interface AuditStream {
  write(chunk: string, cb: (err?: Error | null) => void): boolean
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
}

/** A stream such as process.stdout; its errors arrive through write callbacks. */
export function streamTarget(stream: AuditStream, description = 'stdout'): AuditTarget {
  // Without a listener an EPIPE on stdout would crash the process; the callback reports it.
  const swallow = (): void => undefined
  let listening = false
  return {
    description,
    async open() {
      if (!listening) stream.on('error', swallow)
      listening = true
      return null
    },
    write(text) {
      return new Promise<void>((resolve, reject) => {
        try {
          stream.write(text, (err) => (err ? reject(err) : resolve()))
        } catch (err) {
          reject(err)
        }
      })
    },
    async sync() {},
    async close() {
      if (listening) stream.off('error', swallow)
      listening = false
    },
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0
  while (offset < buf.length) {
    const { bytesWritten } = await fh.write(buf, offset, buf.length - offset)
    if (bytesWritten <= 0) throw Object.assign(new Error('audit write made no progress'), { code: 'EIO' })
    offset += bytesWritten
  }
}

interface ChainTail {
  lastHash: string | null
  /** Set when the file ends in a fragment that is not a record. */
  truncateTo?: number
  /** Set when the last record lacks only its newline. */
  needsNewline: boolean
}

async function readChainTail(fh: FileHandle, size: number): Promise<ChainTail> {
  const last = Buffer.alloc(1)
  await fh.read(last, 0, 1, size - 1)
  if (last[0] === 0x0a) {
    return { lastHash: recordHash((await lineEndingAt(fh, size - 1)).text), needsNewline: false }
  }
  const fragment = await lineEndingAt(fh, size)
  const hash = recordHash(fragment.text)
  if (hash) return { lastHash: hash, needsNewline: true }
  if (fragment.start === 0) return { lastHash: null, truncateTo: 0, needsNewline: false }
  const before = await lineEndingAt(fh, fragment.start - 1)
  return { lastHash: recordHash(before.text), truncateTo: fragment.start, needsNewline: false }
}

/** The line that ends at byte `end` (exclusive), read backwards in chunks. */
async function lineEndingAt(fh: FileHandle, end: number): Promise<{ start: number; text: string }> {
  const chunks: Buffer[] = []
  let pos = end
  while (pos > 0) {
    const len = Math.min(TAIL_CHUNK, pos)
    const buf = Buffer.alloc(len)
    await fh.read(buf, 0, len, pos - len)
    const nl = buf.lastIndexOf(0x0a)
    if (nl >= 0) {
      chunks.unshift(buf.subarray(nl + 1))
      return { start: pos - len + nl + 1, text: Buffer.concat(chunks).toString('utf8') }
    }
    chunks.unshift(buf)
    pos -= len
  }
  return { start: 0, text: Buffer.concat(chunks).toString('utf8') }
}
