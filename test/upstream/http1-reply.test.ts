import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReplyReader, ReplyFormatError, MAX_HEAD_BYTES } from '../../src/upstream/http1-reply.js'

// The reply reader against replies written by the test: every framing a replica may use, fed
// in pieces cut anywhere, and the malformed replies it must refuse rather than misread.

interface Read {
  heads: { status: number; contentType: string | null; keepAlive: boolean; keepAliveMs: number | null }[]
  body: Buffer
  reader: ReplyReader
}

function reading(): Read {
  const chunks: Buffer[] = []
  const read: Read = {
    heads: [],
    body: Buffer.alloc(0),
    reader: new ReplyReader({
      head: (status, contentType, keepAlive, keepAliveMs) => read.heads.push({ status, contentType, keepAlive, keepAliveMs }),
      body: (c) => {
        chunks.push(Buffer.from(c))
        read.body = Buffer.concat(chunks)
      },
    }),
  }
  return read
}

function feedAll(text: string | Buffer, pieces: number[] = []): Read {
  const r = reading()
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text
  let at = 0
  for (const size of pieces) {
    if (at >= bytes.length) break
    r.reader.feed(bytes.subarray(at, at + size))
    at += size
  }
  if (at < bytes.length) r.reader.feed(bytes.subarray(at))
  return r
}

/** A small deterministic PRNG, so a failure names its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return s / 2 ** 32
  }
}

test('replies in every framing, fed in pieces cut anywhere, read as sent', () => {
  for (let seed = 1; seed <= 1500; seed++) {
    const rand = rng(seed)
    const size = Math.floor(rand() ** 3 * 5000)
    const body = Buffer.alloc(size)
    for (let i = 0; i < size; i++) body[i] = Math.floor(rand() * 256)
    const status = [200, 201, 400, 429, 500, 503][Math.floor(rand() * 6)]
    const chunked = rand() < 0.5
    const type = rand() < 0.8 ? ['application/json', 'text/event-stream; charset=utf-8', 'text/plain'][Math.floor(rand() * 3)] : null
    let head = rand() < 0.3 ? 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' : ''
    head += `HTTP/1.1 ${status} ${rand() < 0.2 ? '' : 'Some Reason'}\r\n`.replace(' \r\n', '\r\n')
    if (type !== null) head += `${rand() < 0.5 ? 'Content-Type' : 'content-type'}:${rand() < 0.5 ? ' ' : ''}${type}\r\n`
    head += 'date: Tue, 24 Nov 2026 19:00:00 GMT\r\nx-colon: a:b:c\r\n'
    let framed: Buffer
    if (chunked) {
      head += 'Transfer-Encoding: chunked\r\n\r\n'
      const parts: Buffer[] = [Buffer.from(head, 'latin1')]
      for (let at = 0; at < size; ) {
        const n = Math.min(size - at, 1 + Math.floor(rand() * 700))
        const ext = rand() < 0.2 ? ';name=value' : ''
        parts.push(Buffer.from(`${(rand() < 0.5 ? n.toString(16) : n.toString(16).toUpperCase())}${ext}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'))
        at += n
      }
      parts.push(Buffer.from(rand() < 0.3 ? '0\r\nx-trailer: t\r\n\r\n' : '0\r\n\r\n'))
      framed = Buffer.concat(parts)
    } else {
      framed = Buffer.concat([Buffer.from(`${head}Content-Length: ${size}\r\n\r\n`, 'latin1'), body])
    }
    const pieces: number[] = []
    for (let left = framed.length; left > 0; ) {
      const n = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * 400)
      pieces.push(n)
      left -= n
    }
    const r = feedAll(framed, pieces)
    const where = `seed ${seed}`
    assert.equal(r.heads.length, 1, where)
    assert.deepEqual(r.heads[0], { status, contentType: type, keepAlive: true, keepAliveMs: null }, where)
    assert.ok(r.body.equals(body), where)
    assert.equal(r.reader.done, true, where)
    assert.equal(r.reader.trailingGarbage, false, where)
  }
})

test('a body without a length runs to the close; the connection is not kept', () => {
  const r = feedAll('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nsome text')
  assert.equal(r.reader.done, false)
  assert.equal(r.reader.endsAtClose, true)
  r.reader.feed(Buffer.from(' and more'))
  r.reader.close()
  assert.equal(r.reader.done, true)
  assert.equal(r.body.toString(), 'some text and more')
  assert.equal(r.heads[0].keepAlive, false)
})

test('a close before the declared end is an error, not a short body', () => {
  const r = feedAll('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')
  assert.throws(() => r.reader.close(), (err: ReplyFormatError) => err.code === 'UND_ERR_SOCKET')
  const chunked = feedAll('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n')
  assert.throws(() => chunked.reader.close(), (err: ReplyFormatError) => err.code === 'UND_ERR_SOCKET')
})

test('what the headers say about the connection is kept', () => {
  const cases: [string, boolean, number | null][] = [
    ['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', true, null],
    ['HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n', false, null],
    ['HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 0\r\n\r\n', false, null],
    ['HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n', false, null],
    ['HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n', true, null],
    ['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\ncontent-length: 0\r\n\r\n', true, 5000],
    // Both framings: the coding is trusted and the connection dropped afterwards.
    ['HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', false, null],
    // A coding that is not chunked ends at the close.
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n', false, null],
  ]
  for (const [reply, keepAlive, keepAliveMs] of cases) {
    const r = feedAll(reply)
    assert.deepEqual([r.heads[0].keepAlive, r.heads[0].keepAliveMs], [keepAlive, keepAliveMs], reply)
  }
  const noBody = feedAll('HTTP/1.1 204 No Content\r\n\r\n')
  assert.equal(noBody.reader.done, true)
  assert.equal(noBody.body.length, 0)
})

test('bytes after the reply are noticed, and the reply itself is still whole', () => {
  const r = feedAll('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil')
  assert.equal(r.body.toString(), 'ok')
  assert.equal(r.heads.length, 1, 'a second reply was read from one request')
  assert.equal(r.reader.done, true)
  assert.equal(r.reader.trailingGarbage, true)
})

test('the reader is reused for the next reply on the same connection after reset()', () => {
  const r = feedAll('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n')
  assert.equal(r.reader.done, true)
  r.reader.reset()
  r.reader.feed(Buffer.from('HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\ncd'))
  assert.deepEqual(r.heads.map((h) => h.status), [200, 201])
  assert.equal(r.body.toString(), 'abcd')
  assert.equal(r.reader.done, true)
})

test('malformed replies are refused with a code, never read as something else', () => {
  const bad: [string, string][] = [
    ['HTTP/2.0 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/1.2 200 OK\r\n\r\n', 'HPE_INVALID_VERSION'],
    ['HTTP/1.1 2x0 OK\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['HTTP/1.1 200OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['ICY 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1 2\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nbad header\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nx-a: 1\r\n folded: 2\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2\r\n\r\n', 'HPE_LF_EXPECTED'],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 'HPE_UNEXPECTED_SPACE'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\r\n', 'HPE_LF_EXPECTED'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n', 'HPE_STRICT'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000000000000\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ]
  for (const [reply, code] of bad) {
    for (const pieces of [[], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]) {
      assert.throws(() => feedAll(reply, pieces), (err: ReplyFormatError) => err.code === code, `${JSON.stringify(reply)} in ${pieces.length} pieces`)
    }
  }
})

test('a head or trailers larger than the limit are refused, whether the end comes or not', () => {
  const filler = `x-filler: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n`
  assert.throws(() => feedAll(`HTTP/1.1 200 OK\r\n${filler}`), (err: ReplyFormatError) => err.code === 'HPE_HEADER_OVERFLOW')
  assert.throws(() => feedAll(`HTTP/1.1 200 OK\r\n${filler}\r\n`), (err: ReplyFormatError) => err.code === 'HPE_HEADER_OVERFLOW')
  assert.throws(
    () => feedAll(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n${filler}`, [100, 100]),
    (err: ReplyFormatError) => err.code === 'HPE_HEADER_OVERFLOW',
  )
})
