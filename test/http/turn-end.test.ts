import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import { atTurnEnd, replyAtTurnEnd } from '../../src/http/turn-end.js'

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

test("tasks run after the turn's microtasks, together and in order; one queued by a task runs on the next turn", async () => {
  const ran: string[] = []
  atTurnEnd(() => {
    ran.push('a')
    atTurnEnd(() => ran.push('c'))
  })
  atTurnEnd(() => ran.push('b'))
  await Promise.resolve()
  assert.deepEqual(ran, [], 'a task ran before the turn ended')
  await nextTurn()
  assert.deepEqual(ran, ['a', 'b'])
  await nextTurn()
  assert.deepEqual(ran, ['a', 'b', 'c'])
})

test('a task that throws does not keep the ones queued after it from running', async (t) => {
  const ran: string[] = []
  const thrown: unknown[] = []
  // The error reaches the process as any uncaught one would; here it is caught to look at it.
  const listeners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  process.on('uncaughtException', (err) => thrown.push(err))
  t.after(() => {
    process.removeAllListeners('uncaughtException')
    for (const l of listeners) process.on('uncaughtException', l)
  })
  atTurnEnd(() => ran.push('a'))
  atTurnEnd(() => {
    throw new Error('a bug')
  })
  atTurnEnd(() => ran.push('c'))
  atTurnEnd(() => ran.push('d'))
  for (let turns = 0; turns < 100 && ran.length < 3; turns++) await nextTurn()
  assert.deepEqual(ran, ['a', 'c', 'd'])
  assert.equal((thrown[0] as Error).message, 'a bug')
})

test('a task queued while one socket is read runs after every socket that was ready in that turn was read', async (t) => {
  // Two connections get data in the same instant (loopback delivers it during the write), so
  // one poll of the event loop finds both readable: what the gateway sees when two replicas
  // answer at once. The reply to the first must wait until the second has been read.
  const events: string[] = []
  const accepted: Socket[] = []
  const server = createServer((s) => {
    accepted.push(s)
    s.on('data', (d: Buffer) => {
      const name = d.toString()
      events.push(`read ${name}`)
      atTurnEnd(() => events.push(`reply ${name}`))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const clients = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
  t.after(() => {
    for (const c of clients) c.destroy()
    for (const s of accepted) s.destroy()
    server.close()
  })
  await Promise.all(clients.map((c) => once(c, 'connect')))
  for (let turns = 0; turns < 100_000 && accepted.length < 2; turns++) await nextTurn()
  clients[0].write('x')
  clients[1].write('y')
  for (let turns = 0; turns < 100_000 && events.length < 4; turns++) await nextTurn()
  const reads = events.slice(0, 2)
  assert.deepEqual([...reads].sort(), ['read x', 'read y'], `a reply went out before both sockets were read: ${events.join(', ')}`)
  assert.deepEqual(events.slice(2), reads.map((r) => r.replace('read', 'reply')))
})

test('a reply sent at the turn\'s end arrives whole; one node refuses cuts only its own connection', async (t) => {
  const server = createHttpServer((req, res: ServerResponse) => {
    if (req.url === '/bad') replyAtTurnEnd(res, 200, { 'x-bad': 'a\nb' }, 'never')
    else replyAtTurnEnd(res, 201, { 'content-type': 'text/plain', 'x-test': 'yes' }, 'hello')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const [good, bad, again] = await Promise.allSettled([fetch(`${base}/good`), fetch(`${base}/bad`), fetch(`${base}/again`)])
  assert.equal(good.status, 'fulfilled')
  assert.equal(again.status, 'fulfilled')
  assert.equal(bad.status, 'rejected', 'a reply with an invalid header must not be sent')
  for (const r of [good, again]) {
    if (r.status !== 'fulfilled') continue
    assert.equal(r.value.status, 201)
    assert.equal(r.value.headers.get('x-test'), 'yes')
    assert.equal(await r.value.text(), 'hello')
  }
})
