import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { readBody } from '../../src/http/body.js'
import { RequestTooLarge } from '../../src/errors/index.js'

const LIMIT = 64

/** A server that reads each body with readBody and answers with what it got (or the error's name). */
async function bodyServer(t: { after: (fn: () => void) => void }, whenToRead: (req: IncomingMessage) => Promise<void>) {
  const seen: { complete: boolean }[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      await whenToRead(req)
      seen.push({ complete: req.complete })
      try {
        const body = await readBody(req, LIMIT)
        res.end(`ok ${body.toString()}`)
      } catch (err) {
        // As the gateway answers (http/errors.ts): no `connection: close`, the rest of the body is dropped.
        res.writeHead(413).end(err instanceof RequestTooLarge ? 'too large' : String(err))
      }
    })()
  })
  let connections = 0
  server.on('connection', () => connections++)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => {
    agent.destroy()
    server.close()
  })
  const { port } = server.address() as { port: number }
  /** Sends `parts` one after the other (chunked unless their length is declared), 20 ms apart. */
  const send = async (parts: string[], declareLength = parts.length === 1): Promise<{ status: number; text: string }> => {
    const length = Buffer.byteLength(parts.join(''))
    const req = request({ port, host: '127.0.0.1', method: 'POST', agent, headers: declareLength ? { 'content-length': length } : {} })
    for (const [i, p] of parts.entries()) {
      req.write(p)
      if (i < parts.length - 1) await new Promise((r) => setTimeout(r, 20))
    }
    req.end()
    const [res] = (await once(req, 'response')) as [IncomingMessage]
    let text = ''
    for await (const c of res) text += c
    return { status: res.statusCode ?? 0, text }
  }
  return { send, seen, connections: () => connections }
}

const untilComplete = async (req: IncomingMessage) => {
  for (let turns = 0; turns < 100_000 && !req.complete; turns++) await new Promise((r) => setImmediate(r))
}

test('a body already whole when read is returned as sent, and the connection serves the next request', async (t) => {
  const { send, seen } = await bodyServer(t, untilComplete)
  assert.deepEqual(await send(['{"model":"m"}']), { status: 200, text: 'ok {"model":"m"}' })
  assert.deepEqual(await send(['second']), { status: 200, text: 'ok second' })
  assert.deepEqual(await send(['']), { status: 200, text: 'ok ' })
  assert.ok(seen.every((s) => s.complete), 'the test meant to read whole bodies')
})

test('a body still arriving when read is gathered piece by piece', async (t) => {
  const { send, seen } = await bodyServer(t, async () => {})
  assert.deepEqual(await send(['{"a":', '1', '}']), { status: 200, text: 'ok {"a":1}' })
  assert.equal(seen[0].complete, false, 'the test meant to read a body still arriving')
})

test('a body over the limit is refused whether it is whole or still arriving (no Content-Length)', async (t) => {
  const big = 'x'.repeat(LIMIT + 1)
  const whole = await bodyServer(t, untilComplete)
  assert.deepEqual(await whole.send([big.slice(0, 10), big.slice(10)]), { status: 413, text: 'too large' })
  const arriving = await bodyServer(t, async () => {})
  assert.deepEqual(await arriving.send([big.slice(0, 10), big.slice(10)]), { status: 413, text: 'too large' })
  assert.deepEqual(await arriving.send(['x'.repeat(LIMIT)]), { status: 200, text: `ok ${'x'.repeat(LIMIT)}` })
})

// Node hands over a small body and marks its request complete in two separate callbacks, with
// the gateway's awaits in between: a body is whole once its declared length has arrived.
const untilDeclaredLengthArrived = async (req: IncomingMessage) => {
  const declared = Number(req.headers['content-length'])
  for (let hops = 0; hops < 1000 && req.readableLength < declared; hops++) await Promise.resolve()
}

test('a body whose declared length has all arrived is whole before node marks the request complete', async (t) => {
  const { send, seen } = await bodyServer(t, untilDeclaredLengthArrived)
  assert.deepEqual(await send(['{"model":"m","messages":[]}']), { status: 200, text: 'ok {"model":"m","messages":[]}' })
  assert.deepEqual(await send(['next']), { status: 200, text: 'ok next' })
  assert.deepEqual(await send(['x'.repeat(LIMIT + 1)]), { status: 413, text: 'too large' })
  assert.equal(seen[0].complete, false, 'the test meant to read before node marked the request complete')
})

test('a body with a declared length that has only partly arrived waits for the rest', async (t) => {
  const { send, seen } = await bodyServer(t, async () => {})
  assert.deepEqual(await send(['{"a":', '1', '}'], true), { status: 200, text: 'ok {"a":1}' })
  assert.equal(seen[0].complete, false)
})

test('an oversize body is read to its end and dropped: the client gets its 413, and the connection serves the next request', async (t) => {
  const big = 'x'.repeat(8 * 1024 * 1024)
  for (const whenToRead of [async () => {}, untilDeclaredLengthArrived]) {
    const server = await bodyServer(t, whenToRead)
    for (const declareLength of [true, false]) {
      assert.deepEqual(await server.send([big], declareLength), { status: 413, text: 'too large' })
      assert.deepEqual(await server.send(['small']), { status: 200, text: 'ok small' })
    }
    assert.equal(server.connections(), 1, 'the connection was closed after a 413')
  }
})
