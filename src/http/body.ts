import type { IncomingMessage } from 'node:http'
import { RequestTooLarge, InvalidRequest } from '../errors/index.js'

/**
 * Reads a request body of at most `maxBytes`, counting bytes as they arrive so an oversize
 * body is refused (413) whether or not it declared a Content-Length, and is never buffered
 * whole. Resolves to the raw bytes.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > maxBytes) {
    discardRest(req, maxBytes)
    return Promise.reject(tooLarge(maxBytes))
  }
  // Whole already: node marks a request complete only in a later callback than the one that
  // hands over its body, so a body that has all the bytes its Content-Length declares is
  // whole too (node refuses a request with both Content-Length and chunked encoding).
  if (req.complete || (declared !== undefined && req.readableLength === Number(declared))) {
    try {
      return Promise.resolve(takeBuffered(req, maxBytes))
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        cleanup()
        discardRest(req, maxBytes)
        reject(tooLarge(maxBytes))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
    }
    const onError = () => {
      cleanup()
      reject(new InvalidRequest('the request body could not be read', { reason: 'body_read_error' }))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onError)
  })
}

const EMPTY = Buffer.alloc(0)

/**
 * The body of a request whose last byte has already arrived (a small one comes in the same
 * packet as its headers, and node has parsed it by the time the gateway asks): taken from the
 * stream's buffer in one read, without the four listeners the general path adds and removes.
 * Its 'end' may then never be emitted; nothing waits for it (node's server goes on to the
 * next request on the connection once the reply is sent).
 */
function takeBuffered(req: IncomingMessage, maxBytes: number): Buffer {
  if (req.readableLength > maxBytes) {
    discardRest(req, maxBytes)
    throw tooLarge(maxBytes)
  }
  const data = req.readableLength === 0 ? null : (req.read() as Buffer | null)
  return data ?? EMPTY
}

/** Past this many dropped bytes (or 4× the limit, when larger) an oversize body's connection is cut. */
const MAX_DISCARDED_BYTES = 64 * 1024 * 1024

/**
 * After a 413, the rest of the body is read and dropped, so the client can finish sending and
 * read the answer: closing the connection while it still sends makes its kernel answer with a
 * reset, and most clients then report a broken pipe instead of the 413. A client that keeps
 * sending past the bound is cut (and node's requestTimeout bounds the time).
 */
function discardRest(req: IncomingMessage, maxBytes: number): void {
  const bound = Math.max(MAX_DISCARDED_BYTES, 4 * maxBytes)
  let dropped = 0
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length
    if (dropped > bound) req.socket.destroy()
  })
  req.resume()
}

function tooLarge(maxBytes: number): RequestTooLarge {
  return new RequestTooLarge(`request body exceeds the limit of ${maxBytes} bytes`, { reason: 'body_too_large' })
}
