import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Http1Pool } from '../../src/upstream/http1-pool.js'
import { Cancellation, Exchange, type BodyReader } from '../../src/upstream/exchange.js'

// The Exchange against a real HTTP server on loopback: what arrives before a reader is
// attached is not lost, an abort before the connection exists sends nothing, and the
// content type is read from the raw headers.

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; origin: string; seen: () => number }> {
  let seen = 0
  const server = createServer((req, res) => {
    seen++
    handler!(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { server, origin: `http://127.0.0.1:${port}`, seen: () => seen }
}

function collect(exchange: Exchange): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const reader: BodyReader = { data: (c) => chunks.push(c), end: () => resolve(Buffer.concat(chunks).toString()), error: reject }
    exchange.read(reader)
  })
}

test('the body that arrived before read() is delivered first, in order, then the end', async (t) => {
  const up = await listen((_req, res) => {
    res.writeHead(201, { 'Content-Type': 'application/json; charset=utf-8' })
    res.write('{"a":')
    setTimeout(() => res.end('1}'), 30)
  })
  const pool = new Http1Pool(up.origin, 1000)
  t.after(async () => {
    await pool.close()
    up.server.close()
  })
  const ex = new Exchange()
  pool.dispatch({ path: '/', headers: {}, body: '{}', headersTimeout: 5000, bodyTimeout: 0 }, ex)
  await ex.started
  assert.equal(ex.status, 201)
  assert.equal(ex.contentType, 'application/json; charset=utf-8')
  // Let the whole reply arrive (and complete) before anyone reads it.
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(await collect(ex), '{"a":1}')
})

test('aborted before the connection exists: started rejects with the reason and the server sees nothing', async (t) => {
  const up = await listen((_req, res) => res.end('late'))
  const pool = new Http1Pool(up.origin, 1000)
  t.after(async () => {
    await pool.close()
    up.server.close()
  })
  const ex = new Exchange()
  const cancellation = new Cancellation()
  cancellation.onCancel(() => ex.abort(new Error('client left')))
  pool.dispatch({ path: '/', headers: {}, body: '{}', headersTimeout: 5000, bodyTimeout: 0 }, ex)
  cancellation.cancel()
  await assert.rejects(ex.started, /client left/)
  // A request that did go out would be answered within this time.
  const probe = new Exchange()
  pool.dispatch({ path: '/', headers: {}, body: '{}', headersTimeout: 5000, bodyTimeout: 0 }, probe)
  await probe.started
  assert.equal(await collect(probe), 'late')
  assert.equal(up.seen(), 1, 'only the probe reached the server')
})

test('aborted mid-body: the reader gets the reason as its error, once', async (t) => {
  const up = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: {"n":1}\n\n')
    // Never ends: only the abort can finish this exchange.
  })
  const pool = new Http1Pool(up.origin, 1000)
  t.after(async () => {
    pool.destroy()
    up.server.closeAllConnections()
    up.server.close()
  })
  const ex = new Exchange()
  pool.dispatch({ path: '/', headers: {}, body: '{}', headersTimeout: 5000, bodyTimeout: 0 }, ex)
  await ex.started
  const outcome = await new Promise<{ chunks: number; errors: string[] }>((resolve) => {
    let chunks = 0
    const errors: string[] = []
    ex.read({
      data: () => {
        chunks++
        ex.abort(new Error('stop'))
        ex.abort(new Error('stop again'))
        setTimeout(() => resolve({ chunks, errors }), 50)
      },
      end: () => errors.push('ended'),
      error: (err) => errors.push(err.message),
    })
  })
  assert.deepEqual(outcome, { chunks: 1, errors: ['stop'] })
})

test('a cancellation runs its current hook once, and only the current one', () => {
  const c = new Cancellation()
  const calls: string[] = []
  c.onCancel(() => calls.push('first'))
  c.onCancel(() => calls.push('second'))
  c.cancel()
  c.cancel()
  assert.deepEqual(calls, ['second'])
  assert.equal(c.cancelled, true)
})
