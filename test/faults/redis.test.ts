import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { ADMIN_TOKEN, createKey, simStats } from '../e2e/helpers.js'
import { alive, assertOpenAIError, auditLineOf, faultConfig, keyList, mapLimit, sleep, usageOf, waitUntil } from './harness.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// Redis killed, restarted, slowed down and cut, through a TCP proxy between the gateway and a
// real redis-server (append-only): nothing reaches the replica unmetered, refusals are clear
// 503s, service resumes without a restart, and no API key is lost.

describe('Redis faults', () => {
  let redis: RedisHandle
  let proxy: TcpProxy
  let sim: SimHandle
  let gw: GatewayHandle
  const keys: { id: string; key: string; subject: string }[] = []
  let keysBefore = ''
  let seq = 0

  before(async () => {
    redis = await startRedis()
    proxy = await startTcpProxy(redis.port)
    sim = await startSim('vllm', ['--model', 'm', '--tokens', '8'])
    const yaml = faultConfig({ redis: `redis://127.0.0.1:${proxy.port}`, models: { m: 'sim' }, upstreams: { sim: { targets: [sim.url] } } })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN }, { waitReady: true })
    for (const n of [1, 2, 3]) {
      const subject = `redis-faults-${n}`
      keys.push({ ...(await createKey(gw, { name: `k${n}`, roles: ['user'], subject })), subject })
    }
    keysBefore = await keyList(gw)
  })
  after(async () => {
    await gw?.stop()
    await sim?.stop()
    await proxy?.close()
    await redis?.stop()
  })

  const chat = async (key: string, stream = false) => {
    const id = `faults-redis-${++seq}`
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream }),
    })
    return { id, status: res.status, text: await res.text(), retryAfter: res.headers.get('retry-after') }
  }
  const upstreamCount = async () => ((await simStats(sim.url)).byPath as unknown as Record<string, number>)['/v1/chat/completions'] ?? 0
  const servedAgain = (ms = 10_000) => waitUntil(async () => (await chat(keys[0].key)).status === 200, ms)

  /** While Redis is unusable: every request a clear 503, audited, none reaching the replica. */
  async function refusedWhileDown(n: number): Promise<void> {
    const before = await upstreamCount()
    const results = await mapLimit(Array.from({ length: n }, (_, i) => i), 4, (i) => chat(keys[i % 3].key, i % 2 === 1))
    for (const r of results) {
      assert.equal(r.status, 503, `status ${r.status} while Redis is unusable: ${r.text.slice(0, 200)}`)
      assertOpenAIError(r.text, 'service_unavailable')
    }
    assert.equal(await upstreamCount(), before, 'a request reached the replica while Redis was unusable (unmetered)')
    const line = await auditLineOf(gw, results[0].id)
    assert.equal(line.status, 503)
    assert.ok(alive(gw), 'the gateway exited')
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200)
  }

  it('killed (SIGKILL) and restarted: 503s, /readyz 503, then served again and every key still valid', async () => {
    assert.equal((await chat(keys[0].key)).status, 200)
    await redis.stop('SIGKILL')
    await refusedWhileDown(8)
    assert.equal((await fetch(`${gw.url}/readyz`)).status, 503)
    const list = await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    assert.equal(list.status, 503)
    assertOpenAIError(await list.text())
    redis = await redis.restart()
    assert.ok(await servedAgain(), 'not served again after Redis restarted')
    for (const k of keys) assert.equal((await chat(k.key)).status, 200, `key ${k.id} lost with the Redis restart`)
    assert.equal(await keyList(gw), keysBefore, 'the key list changed across the Redis restart')
    assert.equal((await fetch(`${gw.url}/readyz`)).status, 200)
  })

  it('slowed down (every packet held 150 ms): served, and every admitted request is metered', async () => {
    const k = keys[1]
    const usageBefore = await usageOf(gw, k.subject)
    const before = await upstreamCount()
    proxy.setMode({ kind: 'delay', ms: 150 })
    try {
      const results = await mapLimit([0, 1, 2, 3, 4, 5], 3, (i) => chat(k.key, i % 2 === 0))
      const answers = results.map((r) => `${r.status} ${r.status === 200 ? '' : r.text.slice(0, 120)}`)
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200], answers.join('\n'))
    } finally {
      proxy.setMode({ kind: 'pass' })
    }
    const sent = (await upstreamCount()) - before
    assert.equal(sent, 6)
    const metered = await waitUntil(async () => (await usageOf(gw, k.subject)).requests === usageBefore.requests + sent)
    assert.ok(metered, 'a request that reached the replica was not metered')
  })

  it('slowed past the command timeout (3 s per packet): 503, nothing unmetered, served again once fast', async () => {
    proxy.setMode({ kind: 'delay', ms: 3000 })
    try {
      await refusedWhileDown(4)
    } finally {
      proxy.setMode({ kind: 'pass' })
    }
    assert.ok(await servedAgain(), 'not served again once Redis was fast again')
  })

  it('cut (every connection reset and refused): 503 at once, served again when it is reachable', async () => {
    proxy.setMode({ kind: 'refuse' })
    try {
      await sleep(200)
      await refusedWhileDown(6)
      assert.equal((await fetch(`${gw.url}/readyz`)).status, 503)
    } finally {
      proxy.setMode({ kind: 'pass' })
    }
    assert.ok(await servedAgain(), 'not served again after the cut ended')
    assert.equal(await keyList(gw), keysBefore)
  })

  it('partitioned (open connections go silent for good, new ones work): 503, then served again on a new connection', async () => {
    proxy.setMode({ kind: 'blackhole' })
    try {
      await refusedWhileDown(4)
    } finally {
      // The old path stays dead (like a Redis that moved to another node); new connections pass.
      proxy.setMode({ kind: 'pass' })
    }
    assert.ok(await servedAgain(20_000), 'still refusing: the gateway kept using its dead connection')
    for (const k of keys) assert.equal((await chat(k.key)).status, 200)
  })

  it('a stream in flight while Redis blinks is still settled (settlement retried)', async () => {
    const k = keys[2]
    await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 100, tokens: 15 }) })
    try {
      const usageBefore = await usageOf(gw, k.subject)
      const streaming = chat(k.key, true)
      await sleep(300)
      proxy.setMode({ kind: 'refuse' })
      await sleep(800)
      proxy.setMode({ kind: 'pass' })
      const r = await streaming
      assert.equal(r.status, 200)
      assert.match(r.text, /\[DONE\]/)
      const settled = await waitUntil(async () => (await usageOf(gw, k.subject)).completion === usageBefore.completion + 15, 10_000)
      assert.ok(settled, 'the stream that ended during the blink was not settled')
    } finally {
      await fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 0, tokens: 8 }) })
    }
  })
})
