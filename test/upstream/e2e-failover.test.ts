import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startGateway, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { simFor } from './sim-driver.js'

// Through the gateway, as clients see it: the official SDK (its own retries off, so only
// the gateway's count), simulator processes as replicas, /admin/upstreams for the state.

const ADMIN = 'e2e-upstream-admin-token'

function configFor(sims: SimHandle[], timeouts = '{ connectMs: 1000, firstByteMs: 60000, idleMs: 60000 }'): string {
  return `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: ${ADMIN} }
roles:
  dev: { models: ["*"] }
models:
  sim-model: { upstream: pool }
upstreams:
  pool:
    kind: vllm
    targets: [${sims.map((s) => s.url).join(', ')}]
    timeouts: ${timeouts}
audit: { sink: file, path: $DIR/audit.jsonl }
`
}

async function clientFor(gw: GatewayHandle): Promise<{ client: OpenAI; key: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'e2e-upstream', roles: ['dev'] }),
  })
  assert.equal(res.status, 201)
  const { key } = (await res.json()) as { key: string }
  return { client: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 }), key }
}

interface UpstreamRow {
  replica: string
  healthy: boolean
  inFlight: number
}

async function upstreams(gw: GatewayHandle): Promise<UpstreamRow[]> {
  const res = await fetch(`${gw.url}/admin/upstreams`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return ((await res.json()) as { data: UpstreamRow[] }).data
}

async function until(what: string, cond: () => Promise<boolean>, ms = 20000): Promise<void> {
  let ok = false
  const poll = async () => {
    ok = await cond()
  }
  await poll()
  const deadline = Date.now() + ms
  while (!ok) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 100))
    await poll()
  }
}

async function chatServed(sim: SimHandle): Promise<number> {
  const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as { byPath: Record<string, number> }
  return stats.byPath['/v1/chat/completions'] ?? 0
}

const ask = (client: OpenAI) =>
  client.chat.completions.create({ model: 'sim-model', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] })

test('200 requests with a replica SIGKILLed mid-way: no client error; ejected; back after restart', async (t) => {
  const flags = ['--ttft-ms', '5', '--itl-ms', '1', '--tokens', '8']
  let a = await simFor(t, 'vllm', [...flags, '--id', 'a'])
  const c = await simFor(t, 'vllm', [...flags, '--id', 'c'])
  const gw = await startGateway(configFor([a, c]))
  t.after(() => gw.stop())
  const { client } = await clientFor(gw)
  let done = 0
  let killed: Promise<unknown> | null = null
  const errors: string[] = []
  let next = 0
  const worker = async () => {
    while (next < 200) {
      next++
      try {
        const reply = await ask(client)
        assert.equal(reply.model, 'sim-model')
      } catch (err) {
        errors.push(String(err))
      }
      if (++done === 60) killed = a.stop('SIGKILL')
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  await killed
  assert.deepEqual(errors, [])
  await until('a unhealthy', async () => (await upstreams(gw)).find((r) => r.replica === a.url)?.healthy === false)

  a = await simFor(t, 'vllm', [...flags, '--id', 'a2'], '127.0.0.1', a.port)
  await until('a healthy again', async () => (await upstreams(gw)).find((r) => r.replica === a.url)?.healthy === true)
  for (let i = 0; i < 30; i++) await ask(client)
  assert.ok((await chatServed(a)) > 0, 'the restarted replica is back in rotation')
})

test('all replicas down: 503 no_healthy_upstream with retry-after', async (t) => {
  const a = await simFor(t, 'vllm', ['--id', 'a'])
  const c = await simFor(t, 'vllm', ['--id', 'c'])
  const gw = await startGateway(configFor([a, c]))
  t.after(() => gw.stop())
  const { key } = await clientFor(gw)
  await a.stop('SIGKILL')
  await c.stop('SIGKILL')
  await until('both unhealthy', async () => (await upstreams(gw)).every((r) => !r.healthy))
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-model', messages: [{ role: 'user', content: 'hi' }] }),
  })
  assert.equal(res.status, 503)
  assert.ok(Number(res.headers.get('retry-after')) > 0)
  const body = (await res.json()) as { error: { code: string } }
  assert.equal(body.error.code, 'no_healthy_upstream')
})

test('a replica slower than firstByteMs gives 504 upstream_timeout', async (t) => {
  const slow = await simFor(t, 'vllm', ['--ttft-ms', '5000', '--id', 'slow'])
  const gw = await startGateway(configFor([slow], '{ connectMs: 1000, firstByteMs: 400, idleMs: 2000 }'))
  t.after(() => gw.stop())
  const { client } = await clientFor(gw)
  await assert.rejects(ask(client), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError)
    assert.equal(err.status, 504)
    assert.equal(err.code, 'upstream_timeout')
    return true
  })
})

test('a stream cut by a dying replica ends cleanly for the client, with an error event', async (t) => {
  const dropping = await simFor(t, 'vllm', ['--drop-rate', '1', '--drop-after', '2', '--tokens', '10', '--id', 'drop'])
  const gw = await startGateway(configFor([dropping]))
  t.after(() => gw.stop())
  const { key } = await clientFor(gw)
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  })
  assert.equal(res.status, 200)
  // text() rejects if the gateway's side of the connection breaks instead of ending.
  const text = await res.text()
  const events = text.split('\n\n').filter((e) => e.startsWith('data: '))
  assert.ok(events.some((e) => e.includes('"delta"')), 'some content arrived before the cut')
  assert.match(events[events.length - 1], /"error"/)
  assert.ok(!text.includes('[DONE]'))
  // The proxy reported the end of the cut stream to the balancer (end exactly once).
  await until('in flight back to 0', async () => (await upstreams(gw))[0]?.inFlight === 0, 5000)
})
