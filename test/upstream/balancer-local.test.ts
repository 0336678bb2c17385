import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createBalancer, type Replica, type UpstreamBalancer } from '../../src/upstream/index.js'
import { eventually, startLocalReplica, type LocalReplica } from './local-replica.js'

// Short periods so state changes show within a fraction of a second; the rules are the same.
const FAST = {
  health: { checkIntervalMs: 100, backoffBaseMs: 100, backoffMaxMs: 400 },
  timing: { tickMs: 20, scrapeIntervalMs: 100 },
}

function balancerFor(upstreams: Record<string, unknown>): UpstreamBalancer {
  return createBalancer({ config: parseConfig({ upstreams }), log: silentLogger, ...FAST })
}

const stateOf = (b: UpstreamBalancer, r: LocalReplica) => b.snapshot().find((s) => s.replica === r.origin)?.state

async function get(r: Replica, path: string): Promise<string> {
  const res = await r.dispatcher.request({ origin: r.origin, path, method: 'GET' })
  return res.body.text()
}

test('static targets can be picked at once, before any check answered', async (t) => {
  const a = await startLocalReplica()
  t.after(() => a.close())
  const b = createBalancer({ config: parseConfig({ upstreams: { u: { kind: 'vllm', targets: [`${a.origin}/v1`] } } }), log: silentLogger })
  t.after(() => b.close())
  const r = b.pick('u')
  assert.ok(r)
  assert.equal(r.origin, a.origin)
  assert.equal(b.pick('nope'), null)
  assert.equal(b.hasReplicas('u'), true)
  assert.equal(b.hasReplicas('nope'), false)
})

test('a failing /health ejects the replica; answering again re-admits it', async (t) => {
  const a = await startLocalReplica()
  t.after(() => a.close())
  const b = balancerFor({ u: { kind: 'vllm', targets: [a.origin] } })
  t.after(() => b.close())
  await eventually('the first check answered', () => a.paths.includes('/health'))
  a.healthStatus = 500
  await eventually('ejected', () => stateOf(b, a) === 'ejected')
  assert.equal(b.pick('u'), null)
  assert.equal(b.snapshot()[0].healthy, false)
  assert.match(b.snapshot()[0].lastError ?? '', /status_500/)
  a.healthStatus = 200
  await eventually('re-admitted', () => stateOf(b, a) === 'healthy')
  assert.equal(b.pick('u')?.origin, a.origin)
})

test('a connection error reported by the proxy ejects at once; the server returning re-admits', async (t) => {
  const a = await startLocalReplica()
  t.after(() => a.close())
  const c = await startLocalReplica()
  t.after(() => c.close())
  const b = balancerFor({ u: { kind: 'ollama', targets: [a.origin, c.origin] } })
  t.after(() => b.close())
  const ra = b.healthyReplicas('u').find((r) => r.origin === a.origin)!
  b.begin(ra)
  b.end(ra, { status: null, error: 'ECONNREFUSED', durationMs: 3 })
  assert.deepEqual(b.healthyReplicas('u').map((r) => r.origin), [c.origin])
  for (let i = 0; i < 50; i++) assert.equal(b.pick('u')?.origin, c.origin)
  const row = b.snapshot().find((s) => s.replica === a.origin)!
  assert.equal(row.lastError, 'ECONNREFUSED')
  assert.ok(row.lastErrorAt && !Number.isNaN(Date.parse(row.lastErrorAt)))
  // Nothing is wrong with the server, so the next active check brings it back.
  await eventually('re-admitted', () => stateOf(b, a) === 'healthy')
  // Ollama is checked on /api/version and never scraped.
  assert.ok(a.paths.includes('/api/version'))
  assert.ok(!a.paths.includes('/health') && !a.paths.includes('/metrics'))
})

test('all replicas down: pick returns null, and a replica that comes back is used again', async (t) => {
  const a = await startLocalReplica()
  t.after(() => a.close())
  const c = await startLocalReplica()
  t.after(() => c.close())
  const b = balancerFor({ u: { kind: 'vllm', targets: [a.origin, c.origin] } })
  t.after(() => b.close())
  await a.close()
  await c.close()
  await eventually('both ejected', () => b.healthyReplicas('u').length === 0)
  assert.equal(b.pick('u'), null)
  assert.equal(b.hasReplicas('u'), true)
  await c.reopen()
  await eventually('c back', () => stateOf(b, c) === 'healthy')
  const r = b.pick('u')!
  assert.equal(await get(r, '/x'), `ok from ${c.origin}`)
})

test('pick draws from a precomputed array that is replaced on change, never rebuilt per call', async (t) => {
  const servers = await Promise.all([1, 2, 3].map(() => startLocalReplica()))
  t.after(() => Promise.all(servers.map((s) => s.close())))
  const b = balancerFor({ u: { kind: 'openai', targets: servers.map((s) => s.origin) } })
  t.after(() => b.close())
  const healthy = b.healthyReplicas('u')
  assert.equal(healthy.length, 3)
  for (let i = 0; i < 1000; i++) {
    const r = b.pick('u', undefined, i % 3 === 0 ? `k${i}` : undefined)!
    assert.ok(healthy.includes(r))
  }
  assert.equal(b.healthyReplicas('u'), healthy, 'picking must not rebuild the array')
  b.end(healthy[0], { status: null, error: 'UND_ERR_SOCKET', durationMs: 1 })
  const after = b.healthyReplicas('u')
  assert.notEqual(after, healthy)
  assert.equal(after.length, 2)
  assert.equal(healthy.length, 3, 'the old array is replaced, not mutated under a running pick')
})

test('scraped vLLM metrics move traffic away from a replica with a queue', async (t) => {
  const busy = await startLocalReplica()
  t.after(() => busy.close())
  const idle = await startLocalReplica()
  t.after(() => idle.close())
  busy.metricsText = 'vllm:num_requests_running{model_name="m"} 8\nvllm:num_requests_waiting{model_name="m"} 4\nvllm:kv_cache_usage_perc{model_name="m"} 0.9\n'
  idle.metricsText = 'vllm:num_requests_running{model_name="m"} 0\nvllm:num_requests_waiting{model_name="m"} 0\n'
  const b = balancerFor({ u: { kind: 'vllm', targets: [busy.origin, idle.origin] } })
  t.after(() => b.close())
  await eventually('busy scraped', () => b.snapshot().find((s) => s.replica === busy.origin)?.waiting === 4)
  const row = b.snapshot().find((s) => s.replica === busy.origin)!
  assert.equal(row.running, 8)
  assert.equal(row.kvCacheUsage, 0.9)
  // The idle one takes the next requests until its own in-flight count catches up (12).
  const picked: string[] = []
  for (let i = 0; i < 12; i++) {
    const r = b.pick('u')!
    b.begin(r)
    picked.push(r.origin)
  }
  assert.deepEqual(new Set(picked), new Set([idle.origin]))
  assert.equal(b.snapshot().find((s) => s.replica === idle.origin)!.inFlight, 12)
})
