import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { ADMIN_TOKEN, createKey, waitUntil } from './helpers.js'

// Quotas through two real gateway processes sharing one real Redis: exact admission,
// streamed usage settled, aborted streams counted, and fail-closed while Redis is away.

const config = (redis: string, sim: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store:
  redis: ${redis}
  dataDir: $DIR/data
  keyPrefix: "e2eq:"
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  rpm: { models: ["*"], requestsPerMinute: 7 }
  conc: { models: ["*"], maxConcurrent: 2 }
  tokens: { models: ["*"], tokensPerDay: 100000, maxTokensPerRequest: 64 }
models:
  m: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: ["${sim}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

/** Waits until at least `margin` ms remain in the current UTC minute (fixed windows). */
async function awayFromMinuteEdge(margin = 4000): Promise<void> {
  const left = 60000 - (Date.now() % 60000)
  if (left < margin) await new Promise((r) => setTimeout(r, left + 50))
}

describe('quotas across two gateway processes on one Redis', () => {
  let redis: RedisHandle
  let sim: SimHandle
  let gw1: GatewayHandle
  let gw2: GatewayHandle

  before(async () => {
    redis = await startRedis()
    sim = await startSim('vllm', ['--model', 'm', '--tokens', '10'])
    const env = { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN }
    gw1 = await startGateway(config(redis.url, sim.url), env, { waitReady: true })
    gw2 = await startGateway(config(redis.url, sim.url), env, { waitReady: true })
  })
  after(async () => {
    await gw1?.stop()
    await gw2?.stop()
    await sim?.stop()
    await redis?.stop()
  })

  const chat = (gw: GatewayHandle, key: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      signal,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], ...extra }),
    })

  it('requestsPerMinute: 30 parallel requests over both gateways admit exactly 7', async () => {
    const { key } = await createKey(gw1, { name: 'rpm', roles: ['rpm'] })
    await awayFromMinuteEdge()
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(i % 2 ? gw1 : gw2, key)))
    const statuses = results.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 7)
    assert.equal(statuses.filter((s) => s === 429).length, 23)
    const refused = results.find((r) => r.status === 429)!
    assert.ok(Number(refused.headers.get('retry-after')) >= 1)
    assert.equal(refused.headers.get('x-ratelimit-limit-requests'), '7')
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0')
    const body = (await refused.json()) as { error: { code: string; message: string } }
    assert.equal(body.error.code, 'rate_limit_exceeded')
    assert.match(body.error.message, /requestsPerMinute/)
    const ok = results.find((r) => r.status === 200)!
    assert.equal(ok.headers.get('x-ratelimit-limit-requests'), '7')
    await Promise.all(results.map((r) => r.arrayBuffer().catch(() => undefined)))
  })

  it('maxConcurrent: slots held by streams for their whole life, then freed', async () => {
    const { key } = await createKey(gw1, { name: 'conc', roles: ['conc'] })
    await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 100, tokens: 10 }) })
    try {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(i % 2 ? gw1 : gw2, key, { stream: true })))
      assert.equal(results.filter((r) => r.status === 200).length, 2)
      assert.equal(results.filter((r) => r.status === 429).length, 8)
      await Promise.all(results.map((r) => r.text()))
      const after = await chat(gw2, key)
      assert.equal(after.status, 200, 'a slot was not released when its stream ended')
      await after.text()
    } finally {
      await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 0, tokens: 10 }) })
    }
  })

  const usageOf = async (gw: GatewayHandle, subject: string) => {
    const res = await fetch(`${gw.url}/admin/usage?subject=${encodeURIComponent(subject)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const { data } = (await res.json()) as { data: { requests: number; promptTokens: number; completionTokens: number }[] }
    return data.reduce((a, r) => ({ requests: a.requests + r.requests, completion: a.completion + r.completionTokens }), { requests: 0, completion: 0 })
  }

  it('a stream is settled to the replica usage, and an aborted stream is never free', async () => {
    const { key } = await createKey(gw1, { name: 'tok', roles: ['tokens'], subject: 'stream-user' })
    const done = await chat(gw1, key, { stream: true })
    const text = await done.text()
    assert.ok(!text.includes('"usage":{'), 'usage chunk reached a client that did not ask')
    assert.ok(await waitUntil(async () => (await usageOf(gw2, 'stream-user')).completion === 10))

    await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 30, tokens: 60 }) })
    try {
      const controller = new AbortController()
      const res = await chat(gw2, key, { stream: true }, controller.signal)
      const reader = res.body!.getReader()
      let seen = ''
      while ((seen.match(/"content"/g) ?? []).length < 4) seen += new TextDecoder().decode((await reader.read()).value)
      controller.abort()
      const counted = await waitUntil(async () => (await usageOf(gw1, 'stream-user')).requests === 2)
      assert.ok(counted)
      const usage = await usageOf(gw1, 'stream-user')
      assert.ok(usage.completion > 10, `aborted stream settled ${usage.completion - 10} tokens`)
      const audit = await waitUntil(async () =>
        readFileSync(join(gw2.dir, 'audit.jsonl'), 'utf8').includes('"usageSource":"estimated"'),
      )
      assert.ok(audit, 'the aborted stream was not audited as estimated')
    } finally {
      await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 0, tokens: 10 }) })
    }
  })

  it('fails closed while Redis is down (503, /readyz 503) and serves again once it is back', async () => {
    const { key } = await createKey(gw1, { name: 'down', roles: ['tokens'] })
    assert.equal((await chat(gw1, key)).status, 200)
    // Chat requests only: the balancer's health checks and /metrics scrapes go on meanwhile.
    const chats = async () =>
      ((await (await fetch(`${sim.url}/sim/stats`)).json()) as { byPath: Record<string, number> }).byPath['/v1/chat/completions'] ?? 0
    const simBefore = await chats()
    await redis.stop()
    const refused = await chat(gw1, key)
    assert.equal(refused.status, 503)
    assert.equal((await fetch(`${gw1.url}/readyz`)).status, 503)
    const simAfter = await chats()
    assert.equal(simAfter, simBefore, 'a request went upstream unmetered')
    redis = await redis.restart()
    const back = await waitUntil(async () => (await chat(gw1, key)).status === 200, 5000)
    assert.ok(back, 'not serving within 5 s of Redis returning')
    assert.equal((await fetch(`${gw2.url}/readyz`)).status, 200)
  })
})
