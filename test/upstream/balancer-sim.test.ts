import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createBalancer, type UpstreamBalancer } from '../../src/upstream/index.js'
import type { SimHandle } from '../helpers/processes.js'
import { eventually } from './local-replica.js'
import { chatBody, load, send, simFor, type Sent } from './sim-driver.js'

// Balancer-level tests against real simulator processes, with the production health and
// scrape periods. Requests are driven through pick/begin/end as the proxy does (sim-driver.ts).

function balancerOver(sims: SimHandle[], kind: 'vllm' | 'ollama' = 'vllm'): UpstreamBalancer {
  const config = parseConfig({ upstreams: { u: { kind, targets: sims.map((s) => s.url) } } })
  return createBalancer({ config, log: silentLogger })
}

const countBy = (results: Sent[], sim: SimHandle) => results.filter((s) => s.replica?.origin === sim.url).length
const rowOf = (b: UpstreamBalancer, sim: SimHandle) => b.snapshot().find((s) => s.replica === sim.url)

async function chatRequestsServed(sim: SimHandle): Promise<number> {
  const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as { byPath: Record<string, number> }
  return stats.byPath['/v1/chat/completions'] ?? 0
}

test('a replica killed with SIGKILL under load is ejected, and back in rotation after a restart', async (t) => {
  const flags = ['--ttft-ms', '5', '--itl-ms', '1', '--tokens', '8']
  let a = await simFor(t, 'vllm', [...flags, '--id', 'a'])
  const c = await simFor(t, 'vllm', [...flags, '--id', 'c'])
  const b = balancerOver([a, c])
  t.after(() => b.close())
  let killed: Promise<unknown> | null = null
  const results = await load(200, 8, () => send(b, 'u', chatBody(false)), (_s, done) => {
    if (done === 60) killed = a.stop('SIGKILL')
  })
  await killed
  const failed = results.filter((s) => s.status !== 200)
  assert.deepEqual(failed.map((s) => s.error), [], 'requests that failed to connect were retried elsewhere')
  assert.ok(countBy(results, a) > 0 && countBy(results, c) > 0, 'both served before the kill')
  t.diagnostic(`retried: ${results.filter((s) => s.attempts > 1).length}, a: ${countBy(results, a)}, c: ${countBy(results, c)}`)
  await eventually('a ejected', () => rowOf(b, a)?.state === 'ejected')
  assert.ok(rowOf(b, a)?.lastError, 'the ejection says why')
  for (let i = 0; i < 20; i++) assert.equal(b.pick('u')?.origin, c.url)

  a = await simFor(t, 'vllm', [...flags, '--id', 'a2'], '127.0.0.1', a.port)
  await eventually('a re-admitted', () => rowOf(b, a)?.state === 'healthy', 20000)
  const after = await load(40, 4, () => send(b, 'u', chatBody(false)))
  assert.ok(after.every((s) => s.status === 200))
  assert.ok(countBy(after, a) > 0, 'the restarted replica gets traffic again')
  assert.ok((await chatRequestsServed(a)) > 0)
})

test('a replica 20 times slower per token gets a clear minority of concurrent streams', async (t) => {
  const fast = await simFor(t, 'vllm', ['--itl-ms', '2', '--tokens', '20', '--id', 'fast'])
  const slow = await simFor(t, 'vllm', ['--itl-ms', '40', '--tokens', '20', '--id', 'slow'])
  const b = balancerOver([fast, slow])
  t.after(() => b.close())
  const results = await load(300, 16, () => send(b, 'u', chatBody(true, 20)))
  assert.ok(results.every((s) => s.status === 200 && s.text.includes('[DONE]')))
  const nSlow = countBy(results, slow)
  const nFast = countBy(results, fast)
  assert.equal(nSlow + nFast, 300)
  t.diagnostic(`fast ${nFast}, slow ${nSlow}`)
  assert.ok(nSlow < 300 * 0.2, `slow replica got ${nSlow} of 300`)
  assert.ok(nFast > 4 * nSlow, `fast ${nFast} vs slow ${nSlow}`)
})

test('queue counts scraped from a replica steer new requests to the other one', async (t) => {
  const busy = await simFor(t, 'vllm', ['--max-batch', '1', '--ttft-ms', '60000', '--id', 'busy'])
  const idle = await simFor(t, 'vllm', ['--id', 'idle'])
  const b = balancerOver([busy, idle])
  t.after(() => b.close())
  const outside = new AbortController()
  t.after(() => outside.abort())
  // Six requests from outside the gateway (another gateway replica, say): 1 runs, 5 wait.
  for (let i = 0; i < 6; i++) {
    fetch(`${busy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody(true),
      signal: outside.signal,
    }).catch(() => {})
  }
  await eventually('the queue scraped', () => rowOf(b, busy)?.waiting === 5 && rowOf(b, busy)?.running === 1)
  assert.equal(rowOf(b, busy)?.kvCacheUsage, 1)
  const picked = []
  for (let i = 0; i < 6; i++) {
    const r = b.pick('u')!
    b.begin(r)
    picked.push(r)
  }
  assert.deepEqual(new Set(picked.map((r) => r.origin)), new Set([idle.url]))
  for (const r of picked) b.end(r, { status: 200, error: null, durationMs: 1 })
  assert.equal(rowOf(b, idle)?.inFlight, 0)
})

test('all replicas down: pick returns null (the proxy answers 503 no_healthy_upstream)', async (t) => {
  const a = await simFor(t, 'ollama', ['--id', 'o1'])
  const c = await simFor(t, 'ollama', ['--id', 'o2'])
  const b = balancerOver([a, c], 'ollama')
  t.after(() => b.close())
  const ok = await send(b, 'u', chatBody(false))
  assert.equal(ok.status, 200)
  await a.stop('SIGKILL')
  await c.stop('SIGKILL')
  await eventually('both ejected', () => b.healthyReplicas('u').length === 0)
  assert.equal(b.pick('u'), null)
  const refused = await send(b, 'u', chatBody(false))
  assert.equal(refused.replica, null)
  assert.equal(refused.error, 'no_healthy_upstream')
  assert.deepEqual(b.snapshot().map((s) => s.healthy), [false, false])
})
