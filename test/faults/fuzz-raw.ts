import fc from 'fast-check'
import { connect } from 'node:net'
import { FUZZ_SEED, type FuzzContext } from './fuzz-corpus.js'

// Requests undici refuses to send (CR/LF/NUL in headers, smuggling, broken request lines):
// written byte for byte on a fresh socket each.

const INJECTIONS = [
  'a\r\nX-Injected: yes', 'a\nX-Injected: yes', 'a\rX-Injected: yes', 'a\u0000b', 'a\r\n X-Injected: yes',
  'a\r\n\r\nGET /admin/keys HTTP/1.1\r\nHost: x', '\r\nX-Injected: yes', 'a%0d%0aX-Injected: yes', 'a\x7fb', 'a\u00ffb',
]

function request(head: string, body = ''): Buffer {
  return Buffer.from(`${head}\r\n\r\n${body}`, 'latin1')
}

/** `n` raw requests: header injection in x-request-id, smuggling, bad request lines, huge paths. */
export function rawCorpus(ctx: FuzzContext, n: number, seed = FUZZ_SEED): Buffer[] {
  const chat = `{"model":"${ctx.model}","messages":[{"role":"user","content":"hi"}]}`
  const auth = `Authorization: Bearer ${ctx.clientKey}`
  const admin = `Authorization: Bearer ${ctx.adminToken}`
  const fixed: Buffer[] = [
    request(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked`, '0\r\n\r\n'),
    request(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: 5\r\nContent-Length: 6`, 'hello'),
    request(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}\r\nTransfer-Encoding: chunked, identity`, '0\r\n\r\n'),
    request(`GET /admin/keys/\u0000 HTTP/1.1\r\nHost: x\r\n${admin}`),
    request(`DELETE /admin/keys/${ctx.keyId}\u0000 HTTP/1.1\r\nHost: x\r\n${admin}`),
    request(`DELETE /admin/keys/${ctx.keyId} x HTTP/1.1\r\nHost: x\r\n${admin}`),
    request(`DELETE /admin/keys/../keys/${ctx.keyId}/.. HTTP/1.1\r\nHost: x\r\n${admin}`),
    request(`GET /admin/keys/${'k'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n${admin}`),
    request(`GET http://evil.example/v1/models HTTP/1.1\r\nHost: x\r\n${auth}`),
    request(`FOO /v1/models HTTP/1.1\r\nHost: x\r\n${auth}`),
    request(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX Bad: 1\r\n${auth}`),
    request(`GET /v1/models HTTP/9.9\r\nHost: x\r\n${auth}`),
    request(`GET /v1/models\r\nHost: x`),
    request(`GET /v1/models HTTP/1.1\r\nHost: x\r\n${auth}\r\nX-Big: ${'b'.repeat(20_000)}`),
  ]
  const injected = fc.record({
    value: fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 30, unit: 'binary' }).map((s) => Buffer.from(s).toString('latin1'))),
    target: fc.constantFrom('healthz', 'chat', 'models', 'admin'),
  })
  const generated = fc.sample(injected, { seed, numRuns: Math.max(0, n - fixed.length) }).map(({ value, target }) => {
    const rid = `X-Request-Id: ${value}`
    if (target === 'healthz') return request(`GET /healthz HTTP/1.1\r\nHost: x\r\n${rid}\r\nConnection: close`)
    if (target === 'models') return request(`GET /v1/models HTTP/1.1\r\nHost: x\r\n${auth}\r\n${rid}\r\nConnection: close`)
    if (target === 'admin') return request(`GET /admin/keys/${ctx.keyId} HTTP/1.1\r\nHost: x\r\n${admin}\r\n${rid}\r\nConnection: close`)
    return request(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Type: application/json\r\n${rid}\r\n` +
        `Content-Length: ${Buffer.byteLength(chat)}\r\nConnection: close`,
      chat,
    )
  })
  return [...fixed, ...generated]
}

/** A raw HTTP answer, parsed just enough: status, lower-cased headers, de-chunked body. */
export interface RawAnswer {
  status: number
  headers: Map<string, string>
  body: string
}

/** Sends `bytes` on a fresh connection; resolves with the first answer (null: none came, closed). */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<RawAnswer | null> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    let settled = false
    const done = (answer: RawAnswer | null) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => done(parseAnswer(data, true) ?? null), timeoutMs)
    socket.on('error', () => done(parseAnswer(data, true)))
    socket.on('close', () => done(parseAnswer(data, true)))
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d])
      const answer = parseAnswer(data, false)
      if (answer) done(answer)
    })
    socket.write(bytes)
  })
}

function parseAnswer(data: Buffer, ended: boolean): RawAnswer | null {
  const text = data.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return null
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  const status = Number(statusLine.split(' ')[1])
  let body = text.slice(end + 4)
  if (headers.get('transfer-encoding') === 'chunked') {
    if (!body.includes('0\r\n\r\n') && !ended) return null
    let out = ''
    for (let at = 0; ; ) {
      const nl = body.indexOf('\r\n', at)
      const size = parseInt(body.slice(at, nl), 16)
      if (!(size > 0)) break
      out += body.slice(nl + 2, nl + 2 + size)
      at = nl + 2 + size + 2
    }
    body = out
  } else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'))
    if (body.length < length && !ended) return null
    // A client that wrote two requests (one hidden in a header) gets two answers: keep the first.
    body = body.slice(0, length)
  } else if (!ended) {
    return null
  }
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8') }
}
