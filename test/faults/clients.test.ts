import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey, simStats } from '../e2e/helpers.js'
import { startFakeReplica, type FakeReplica } from './fake-replica.js'
import { alive, auditLineOf, clientSockets, faultConfig, procSample, sleep, usageOf, waitUntil } from './harness.js'

// Clients that trickle their headers or body (slowloris), stop reading, or leave mid-stream:
// their connections are timed out, memory and descriptors stay bounded, the replica's
// request is aborted, and everyone else is served meanwhile.
//
// The trickling connections open first and are checked last, so their long waits (the
// server's 30 s header and 60 s request limits) overlap the other tests.

const TRICKLERS = 40
const MiB = 1024 * 1024

interface Trickler {
  socket: Socket
  closed: boolean
  firstLine: string
}

describe('slow and vanishing clients', () => {
  let sim: SimHandle
  let fake: FakeReplica
  let gw: GatewayHandle
  let key: string
  const subject = 'clients-faults'
  let baseline = { rssKb: 0, fds: 0 }
  let baseSockets = 0
  const held = () => clientSockets(gw.proc.pid!, gw.port)
  const headerTricklers: Trickler[] = []
  const bodyTricklers: Trickler[] = []
  const timers: NodeJS.Timeout[] = []

  /** A connection that sends `head` then one more byte of `drip` every second. */
  function trickle(head: string, drip: (i: number) => string): Trickler {
    const t: Trickler = { socket: connect(gw.port, '127.0.0.1'), closed: false, firstLine: '' }
    t.socket.on('error', () => undefined)
    t.socket.on('data', (d: Buffer) => (t.firstLine ||= d.toString('latin1').split('\r\n')[0]))
    t.socket.on('close', () => (t.closed = true))
    t.socket.write(head)
    let i = 0
    const timer = setInterval(() => {
      if (!t.closed) t.socket.write(drip(i++))
    }, 1000)
    timers.push(timer)
    return t
  }

  before(async () => {
    sim = await startSim('vllm', ['--model', 'm', '--tokens', '20'])
    fake = await startFakeReplica()
    const yaml = faultConfig({
      models: { m: 'sim', f: 'fake' },
      upstreams: { sim: { targets: [sim.url], firstByteMs: 1500, idleMs: 1500 }, fake: { targets: [fake.url], firstByteMs: 1500, idleMs: 1500 } },
    })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' })
    ;({ key } = await createKey(gw, { name: 'clients', roles: ['user'], subject }))
    baseline = procSample(gw.proc.pid!)
    baseSockets = held()
    for (let i = 0; i < TRICKLERS; i++) {
      headerTricklers.push(trickle('POST /v1/chat/completions HTTP/1.1\r\nHost: gatehouse\r\n', (n) => `X-Slow-${n}: y\r\n`))
      const head =
        `POST /v1/chat/completions HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer ${key}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"m","messages":['
      bodyTricklers.push(trickle(head, () => ' '))
    }
  })
  after(async () => {
    for (const t of timers) clearInterval(t)
    for (const t of [...headerTricklers, ...bodyTricklers]) t.socket.destroy()
    await gw?.stop()
    await sim?.stop()
    await fake?.close()
  })

  const simConfig = (settings: Record<string, number>) =>
    fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify(settings) }).then((r) => r.arrayBuffer())
  const stream = (model: string, id: string, signal?: AbortSignal) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      signal,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], stream: true }),
    })

  it('others are served while the trickling connections are open; memory stays bounded', async () => {
    const res = await stream('m', 'clients-served')
    assert.equal(res.status, 200)
    assert.match(await res.text(), /\[DONE\]/)
    assert.ok(await waitUntil(async () => held() >= baseSockets + 2 * TRICKLERS), 'the trickling connections are not open')
    const now = procSample(gw.proc.pid!)
    const grown = (now.rssKb - baseline.rssKb) / 1024
    assert.ok(grown < 50, `RSS grew by ${grown.toFixed(0)} MiB for ${2 * TRICKLERS} trickling connections`)
  })

  it('clients leaving mid-stream, before the first token, or while queued: every replica request aborted, every stream settled', async () => {
    await simConfig({ itlMs: 40, tokens: 200, maxBatch: 11, ttftMs: 0 })
    const abortedBefore = (await simStats(sim.url)).aborted
    const usageBefore = (await usageOf(gw, subject)).requests
    const leave = async (id: string, afterChunks: number) => {
      const controller = new AbortController()
      const res = await stream('m', id, controller.signal)
      const reader = res.body!.getReader()
      for (let n = 0; n < afterChunks; n++) await reader.read()
      controller.abort()
    }
    const ids = Array.from({ length: 10 }, (_, i) => `clients-leave-${i}`)
    await Promise.all(ids.map((id) => leave(id, 2)))
    // Before the first token: a slow start, and a request waiting behind a full batch.
    await simConfig({ ttftMs: 3000, maxBatch: 1 })
    const early = new AbortController()
    const queuedFirst = stream('m', 'clients-ahead', early.signal).catch(() => undefined)
    await sleep(200)
    const queued = new AbortController()
    const waiting = stream('m', 'clients-queued', queued.signal).catch(() => undefined)
    await sleep(300)
    early.abort()
    queued.abort()
    await Promise.all([queuedFirst, waiting])
    const all = await waitUntil(async () => (await simStats(sim.url)).aborted >= abortedBefore + 12, 8000)
    assert.ok(all, `aborted ${(await simStats(sim.url)).aborted - abortedBefore} of 12 replica requests`)
    assert.ok(await waitUntil(async () => (await simStats(sim.url)).running === 0), 'replica slots still held')
    for (const id of ids) assert.equal((await auditLineOf(gw, id)).reason, 'client_gone')
    assert.ok(await waitUntil(async () => (await usageOf(gw, subject)).requests >= usageBefore + 12), 'left streams not settled')
    await simConfig({ itlMs: 0, ttftMs: 0, tokens: 20, maxBatch: 256 })
  })

  it('a client that stops reading: backpressure reaches the replica, memory bounded, replica aborted, socket closed', async () => {
    let sent = 0
    fake.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const event = Buffer.from(`data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(64 * 1024)}"}}]}\n\n`)
      const pump = () => {
        while (sent < 256 * MiB && !res.destroyed) {
          sent += event.length
          if (!res.write(event)) return res.once('drain', pump)
        }
        res.end()
      }
      pump()
    }
    const rssBefore = procSample(gw.proc.pid!).rssKb
    const body = JSON.stringify({ model: 'f', messages: [{ role: 'user', content: 'hi' }], stream: true })
    const client = connect(gw.port, '127.0.0.1')
    client.on('error', () => undefined)
    client.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\n` +
        `X-Request-Id: clients-slow-reader\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
    await new Promise((r) => client.once('data', r))
    client.pause()
    // The replica is held back: it stops being able to write, far short of 256 MiB.
    let last = -1
    assert.ok(await waitUntil(async () => {
      const stalled = sent === last && sent > 0
      last = sent
      await sleep(500)
      return stalled
    }, 10_000), 'the replica was never held back')
    assert.ok(sent < 64 * MiB, `the replica got ${Math.round(sent / MiB)} MiB out through a client that does not read`)
    const grown = (procSample(gw.proc.pid!).rssKb - rssBefore) / 1024
    assert.ok(grown < 80, `RSS grew by ${grown.toFixed(0)} MiB for one stalled reader`)
    assert.ok(await waitUntil(async () => fake.aborted === 1, 8000), 'the stalled stream was not aborted upstream')
    assert.equal((await auditLineOf(gw, 'clients-slow-reader')).reason, 'idle_timeout')
    // Still not reading: the gateway closes the silent connection (node:http suppresses the
    // first idle timeout while the write queue still moved, so this takes up to two periods).
    const holding = held()
    assert.ok(await waitUntil(async () => held() < holding, 30_000), 'the gateway kept the stalled connection open')
    client.destroy()
  })

  it('trickled headers are cut by the header timeout, trickled bodies by the request timeout; descriptors return', async () => {
    const headersCut = await waitUntil(async () => headerTricklers.every((t) => t.closed), 45_000)
    assert.ok(headersCut, `${headerTricklers.filter((t) => !t.closed).length} header tricklers still open`)
    const bodiesCut = await waitUntil(async () => bodyTricklers.every((t) => t.closed), 45_000)
    assert.ok(bodiesCut, `${bodyTricklers.filter((t) => !t.closed).length} body tricklers still open`)
    for (const t of [...headerTricklers, ...bodyTricklers]) assert.match(t.firstLine, /^(HTTP\/1\.1 (408|400)|)/)
    assert.ok(alive(gw), 'the gateway exited')
    const back = await waitUntil(async () => held() <= baseSockets + 2, 5000)
    assert.ok(back, `client connections held: ${held()}, at the start: ${baseSockets}`)
    const res = await stream('m', 'clients-after')
    assert.equal(res.status, 200)
    await res.arrayBuffer()
  })
})
