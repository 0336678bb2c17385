import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { Http1Pool, type ReplicaRequest, type ReplyHandler } from '../../src/upstream/http1-pool.js'
import { freePort } from '../helpers/ports.js'

// The request path's HTTP/1.1 client against raw TCP servers on loopback that answer with
// exactly the bytes each test writes: what goes out, keep-alive reuse and when a connection
// must not be reused, timeouts, a replica failing mid-reply, aborts, backpressure, close.

interface Replica {
  server: Server
  origin: string
  /** Request heads (and bodies) as received, in order. */
  requests: string[]
  connections: number
  sockets: Set<Socket>
  close(): Promise<void>
}

/** A replica whose `answer` is called per request with the socket and the request text. */
async function replica(answer: (socket: Socket, request: string, n: number) => void): Promise<Replica> {
  const r: Replica = {
    server: createServer(),
    origin: '',
    requests: [],
    connections: 0,
    sockets: new Set(),
    close: async () => {
      for (const s of r.sockets) s.destroy()
      r.server.close()
    },
  }
  r.server.on('connection', (socket) => {
    r.connections++
    r.sockets.add(socket)
    socket.on('close', () => r.sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1')
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n')
        if (headEnd < 0) return
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(pending.slice(0, headEnd))?.[1] ?? 0)
        if (pending.length < headEnd + 4 + length) return
        const request = pending.slice(0, headEnd + 4 + length)
        pending = pending.slice(request.length)
        r.requests.push(request)
        answer(socket, request, r.requests.length)
      }
    })
  })
  r.server.listen(0, '127.0.0.1')
  await once(r.server, 'listening')
  r.origin = `http://127.0.0.1:${(r.server.address() as { port: number }).port}`
  return r
}

interface Outcome {
  status: number
  contentType: string | null
  body: string
  error: (Error & { code?: string }) | null
  completions: number
}

const request = (over: Partial<ReplicaRequest> = {}): ReplicaRequest => ({
  path: '/v1/chat/completions',
  headers: { 'content-type': 'application/json' },
  body: '{"model":"m"}',
  headersTimeout: 5000,
  bodyTimeout: 5000,
  ...over,
})

/** A pool on `up`, both closed when the test ends. */
function poolFor(t: { after: (fn: () => Promise<void>) => void }, up: Replica): Http1Pool {
  const pool = new Http1Pool(up.origin, 1000)
  t.after(async () => {
    pool.destroy()
    await up.close()
  })
  return pool
}

/** Sends one request and collects its whole outcome; `hooks` can act on the handler's events. */
function send(
  pool: Http1Pool,
  req: ReplicaRequest = request(),
  hooks: { onConnect?: (abort: (e: Error) => void) => void; onData?: (chunk: Buffer, abort: (e: Error) => void) => boolean } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, contentType: null, body: '', error: null, completions: 0 }
    let abort: (e: Error) => void = () => {}
    const handler: ReplyHandler = {
      onConnect(a) {
        abort = a
        hooks.onConnect?.(a)
      },
      onHeaders(status, contentType) {
        out.status = status
        out.contentType = contentType
        return true
      },
      onData(chunk) {
        out.body += chunk.toString('latin1')
        return hooks.onData ? hooks.onData(chunk, abort) : true
      },
      onComplete() {
        out.completions++
        setTimeout(() => resolve(out), 20)
      },
      onError(err) {
        out.error = err
        out.completions++
        setTimeout(() => resolve(out), 20)
      },
    }
    pool.dispatch(req, handler)
  })
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

test('a request goes out as one POST with its headers and exact length; keep-alive connections are reused', async (t) => {
  const up = await replica((s) => s.write(ok('{"id":1}')))
  const pool = poolFor(t, up)
  const body = '{"model":"m","messages":[{"role":"user","content":"Grüße, 世界"}]}'
  const first = await send(pool, request({ body, headers: { 'content-type': 'application/json', 'x-request-id': 'r1', 'content-length': '1', connection: 'close', host: 'evil' } }))
  assert.deepEqual([first.status, first.contentType, first.body, first.error, first.completions], [200, 'application/json', '{"id":1}', null, 1])
  const [head, sent] = up.requests[0].split('\r\n\r\n')
  const lines = head.split('\r\n')
  assert.equal(lines[0], 'POST /v1/chat/completions HTTP/1.1')
  assert.deepEqual(lines.slice(1).sort(), [`content-length: ${Buffer.byteLength(body)}`, 'content-type: application/json', `host: ${new URL(up.origin).host}`, 'x-request-id: r1'])
  assert.equal(Buffer.from(sent, 'latin1').toString('utf8'), body)
  for (let i = 0; i < 3; i++) assert.equal((await send(pool)).status, 200)
  assert.equal(up.connections, 1, 'sequential requests each opened a connection')
  assert.equal(pool.connections, 1)
})

test('a header value that could end its line is refused and nothing is sent', async (t) => {
  const up = await replica((s) => s.write(ok('{}')))
  const pool = poolFor(t, up)
  const unsafe: Record<string, string>[] = [{ 'x-request-id': 'a\r\nx-admin: 1' }, { 'x-bad\r\nname': 'v' }, { 'x-nul': 'a\0b' }]
  for (const headers of unsafe) {
    const out = await send(pool, request({ headers }))
    assert.equal(out.error?.code, 'UND_ERR_INVALID_ARG', JSON.stringify(headers))
    assert.equal(out.completions, 1)
  }
  assert.equal(up.connections, 0)
})

test('a connection is not reused when the replica says close, frames badly or sends more than its reply', async (t) => {
  const answers = [
    ok('{"n":1}', 'connection: close\r\n'),
    ok('{"n":2}', 'keep-alive: timeout=1\r\n'), // less than the safety margin: not worth keeping
    `${ok('{"n":3}')}HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n`,
    'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n1\r\n4\r\n0\r\n\r\n',
    ok('{"n":5}'),
    ok('{"n":6}'),
  ]
  const up = await replica((s, _r, n) => s.write(answers[n - 1]))
  const pool = poolFor(t, up)
  const bodies: string[] = []
  for (let i = 0; i < answers.length; i++) {
    const out = await send(pool)
    assert.equal(out.error, null)
    bodies.push(out.body)
  }
  assert.deepEqual(bodies, ['{"n":1}', '{"n":2}', '{"n":3}', '4', '{"n":5}', '{"n":6}'])
  assert.equal(up.connections, 5, 'the last two share one connection, each of the others had its own')
})

test('a replica that closes an idle connection: the next request gets a fresh one, without an error', async (t) => {
  const up = await replica((s) => {
    s.write(ok('{}'))
    setTimeout(() => s.end(), 5)
  })
  const pool = poolFor(t, up)
  assert.equal((await send(pool)).status, 200)
  for (let i = 0; i < 100 && pool.connections > 0; i++) await new Promise((r) => setTimeout(r, 10))
  assert.equal(pool.connections, 0, 'the closed connection was kept')
  const out = await send(pool)
  assert.deepEqual([out.status, out.error], [200, null])
  assert.equal(up.connections, 2)
})

test('failures carry the codes the proxy and the health rules know', async (t) => {
  const silent = await replica(() => {})
  const stalls = await replica((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'))
  const dies = await replica((s) => {
    s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n')
    setTimeout(() => s.destroy(), 20)
  })
  const garbled = await replica((s) => s.write('HTTP/1.1 2x0 OK\r\n\r\n'))
  const refused = `http://127.0.0.1:${await freePort()}`
  const pools = [silent, stalls, dies, garbled].map((r) => new Http1Pool(r.origin, 1000))
  const refusedPool = new Http1Pool(refused, 1000)
  t.after(async () => {
    for (const p of [...pools, refusedPool]) p.destroy()
    for (const r of [silent, stalls, dies, garbled]) await r.close()
  })
  const quick = request({ headersTimeout: 200, bodyTimeout: 200 })
  const outcomes = await Promise.all([...pools.map((p) => send(p, quick)), send(refusedPool, quick)])
  assert.deepEqual(
    outcomes.map((o) => [o.error?.code, o.body, o.completions]),
    [
      ['UND_ERR_HEADERS_TIMEOUT', '', 1],
      ['UND_ERR_BODY_TIMEOUT', 'abc', 1],
      ['UND_ERR_SOCKET', 'abc', 1],
      ['HPE_INVALID_STATUS', '', 1],
      ['ECONNREFUSED', '', 1],
    ],
  )
  // A stream has no body timeout of the client's own (bodyTimeout 0): only the abort ends it.
  const streamed = send(pools[1], request({ bodyTimeout: 0 }), {
    onData: (_c, abort) => {
      setTimeout(() => abort(new Error('the relay gave up')), 400)
      return true
    },
  })
  assert.equal((await streamed).error?.message, 'the relay gave up')
  for (const p of pools) assert.equal(p.connections, 0, 'a failed connection was kept')
})

test('an abort ends the request once, closes its connection, and a late abort touches nothing', async (t) => {
  const up = await replica((s, _r, n) => {
    if (n === 1) s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n')
    else s.write(ok(`{"n":${n}}`))
  })
  const pool = poolFor(t, up)
  const aborted = await send(pool, request(), {
    onData: (_c, abort) => {
      abort(new Error('client left'))
      abort(new Error('again'))
      return true
    },
  })
  assert.deepEqual([aborted.error?.message, aborted.completions, aborted.body], ['client left', 1, 'data:'])
  let lateAbort: (e: Error) => void = () => {}
  const done = await send(pool, request(), { onConnect: (a) => (lateAbort = a) })
  assert.deepEqual([done.body, done.error], ['{"n":2}', null])
  lateAbort(new Error('too late'))
  const next = await send(pool)
  assert.deepEqual([next.body, next.error], ['{"n":3}', null])
  assert.equal(up.connections, 2, 'the aborted connection was reused, or the late abort cut the next one')
  // Aborted before anything was sent: no connection at all.
  const before = up.connections
  const never = await send(pool, request(), { onConnect: (a) => a(new Error('gone before sending')) })
  assert.equal(never.error?.message, 'gone before sending')
  assert.equal(up.requests.length, 3, 'an aborted request reached the replica')
  assert.ok(up.connections <= before)
})

test('backpressure: a handler that pauses stops the reading until it resumes', async (t) => {
  const size = 8 * 1024 * 1024
  const up = await replica((s) => {
    s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`)
    s.write(Buffer.alloc(size, 97))
  })
  const pool = poolFor(t, up)
  let received = 0
  let resume: () => void = () => {}
  const finished = new Promise<string | null>((resolve) => {
    pool.dispatch(request({ bodyTimeout: 0 }), {
      onConnect() {},
      onHeaders(_s, _t, r) {
        resume = r
        return true
      },
      onData(chunk) {
        received += chunk.length
        return false
      },
      onComplete: () => resolve(null),
      onError: (err) => resolve(err.message),
    })
  })
  for (let i = 0; i < 200 && received === 0; i++) await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 200))
  const whilePaused = received
  assert.ok(whilePaused > 0 && whilePaused < size, `read ${whilePaused} of ${size} bytes while paused`)
  // Resumed on every chunk from now on: the rest arrives.
  const keepResuming = setInterval(() => resume(), 5)
  t.after(() => clearInterval(keepResuming))
  assert.equal(await finished, null)
  assert.equal(received, size)
})

test('close() lets the request in flight finish and refuses new ones; destroy() cuts what is left', async (t) => {
  const up = await replica((s, _r, n) => {
    if (n === 1) setTimeout(() => s.write(ok('{"late":true}')), 100)
    else if (n === 2) s.write(ok('{}'))
    else s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nab')
  })
  const pool = new Http1Pool(up.origin, 1000)
  t.after(() => up.close())
  const inFlight = send(pool)
  await new Promise((r) => setTimeout(r, 30))
  let closed = false
  const closing = pool.close().then(() => (closed = true))
  const refused = await send(pool)
  assert.equal(refused.error?.code, 'UND_ERR_CLOSED')
  assert.equal(closed, false, 'close() resolved with a request in flight')
  assert.deepEqual([(await inFlight).body, (await inFlight).error], ['{"late":true}', null])
  await closing
  assert.equal(pool.connections, 0)

  const other = new Http1Pool(up.origin, 1000)
  assert.equal((await send(other)).error, null)
  const cut = send(other)
  await new Promise((r) => setTimeout(r, 50))
  other.destroy()
  const outcome = await cut
  assert.deepEqual([outcome.error?.code, outcome.body], ['UND_ERR_DESTROYED', 'ab'])
  assert.equal(other.connections, 0)
})

test('an https replica: its certificate is verified (an untrusted one fails before anything is sent), a trusted one carries the request', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'))
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=replica', '-addext', 'subjectAltName=IP:127.0.0.1',
  ])
  assert.equal(made.status, 0, `openssl could not make a test certificate: ${made.stderr}`)
  let requests = 0
  const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (s) => {
    s.on('error', () => {})
    s.on('data', () => {
      requests++
      s.write(ok('{"tls":true}'))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  const origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`

  const pool = new Http1Pool(origin, 1000)
  t.after(() => pool.destroy())
  const untrusted = await send(pool)
  assert.equal(untrusted.error?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT')
  assert.equal(requests, 0, 'a request went to a replica whose certificate was not verified')

  // Trusted the way a deployment trusts a private CA: NODE_EXTRA_CA_CERTS, in a process of its own.
  const script = `
    import { Http1Pool } from ${JSON.stringify(new URL('../../src/upstream/http1-pool.js', import.meta.url).href)}
    const pool = new Http1Pool(${JSON.stringify(origin)}, 1000)
    let body = ''
    pool.dispatch({ path: '/v1/chat/completions', headers: {}, body: '{}', headersTimeout: 5000, bodyTimeout: 5000 }, {
      onConnect() {}, onHeaders: (s) => { body += s + ' '; return true }, onData: (c) => { body += c; return true },
      onComplete: () => { console.log(body); pool.destroy() }, onError: (e) => { console.log('error ' + e.code); pool.destroy() },
    })`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d))
  const timer = setTimeout(() => child.kill(), 15_000)
  await once(child, 'exit')
  clearTimeout(timer)
  assert.equal(output.trim(), '200 {"tls":true}')
  assert.equal(requests, 1)
})

test('a replica that never completes the connection: UND_ERR_CONNECT_TIMEOUT after connectMs', async (t) => {
  // A listener whose process never accepts (its event loop is blocked): once its small backlog is
  // full, the kernel drops further connection attempts, so the next connect hangs.
  const script = `
    const server = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      console.log(server.address().port)
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000), 50)
    })`
  const child = spawn(process.execPath, ['-e', script])
  t.after(() => child.kill('SIGKILL'))
  const [line] = (await once(child.stdout, 'data')) as [Buffer]
  const port = Number(line.toString().trim())
  await new Promise((r) => setTimeout(r, 200))
  const fillers = Array.from({ length: 4 }, () => connectTcp(port, '127.0.0.1').on('error', () => {}))
  t.after(() => fillers.forEach((s) => s.destroy()))
  await new Promise((r) => setTimeout(r, 200))
  const pool = new Http1Pool(`http://127.0.0.1:${port}`, 300)
  t.after(() => pool.destroy())
  const out = await Promise.race([send(pool, request({ headersTimeout: 60_000 })), new Promise<null>((r) => setTimeout(() => r(null), 10_000))])
  assert.ok(out !== null, 'the connect attempt never ended')
  assert.equal(out.error?.code, 'UND_ERR_CONNECT_TIMEOUT')
  assert.equal(pool.connections, 0)
})
