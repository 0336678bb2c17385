import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createBalancer, type Replica } from '../../src/upstream/index.js'
import { eventually, startLocalReplica } from './local-replica.js'

// How tests control DNS: the balancer takes a `resolver` (name → IPv4 addresses); the test
// answers from a variable it changes. Replicas listen on distinct loopback addresses
// (127.0.0.2, 127.0.0.3, ...) on one port, as pods behind a headless Service do.
function dnsBalancer(port: number, answer: () => Promise<string[]>) {
  const asked: string[] = []
  const config = parseConfig({
    upstreams: { u: { kind: 'vllm', dns: { name: 'replicas.test.internal', port, refreshMs: 50 } } },
  })
  const balancer = createBalancer({
    config,
    log: silentLogger,
    resolver: (name) => {
      asked.push(name)
      return answer()
    },
    timing: { tickMs: 20 },
  })
  return { balancer, asked }
}

test('replicas join and leave with the A records; one that leaves finishes its requests first', async (t) => {
  const a = await startLocalReplica('127.0.0.2')
  t.after(() => a.close())
  const c = await startLocalReplica('127.0.0.3', a.port)
  t.after(() => c.close())
  let records = ['127.0.0.2']
  const { balancer: b, asked } = dnsBalancer(a.port, async () => records)
  t.after(() => b.close())
  await b.ready()
  assert.equal(asked[0], 'replicas.test.internal')
  assert.deepEqual(b.healthyReplicas('u').map((r) => r.origin), [a.origin])

  records = ['127.0.0.3', '127.0.0.2']
  await eventually('c joined', () => b.healthyReplicas('u').length === 2)
  const seen = new Set<string>()
  for (let i = 0; i < 100; i++) seen.add(b.pick('u')!.origin)
  assert.deepEqual([...seen].sort(), [a.origin, c.origin])

  // A slow request is running on a when a leaves the records.
  const ra = b.healthyReplicas('u').find((r) => r.origin === a.origin)!
  b.begin(ra)
  const started = performance.now()
  const slow = ra.dispatcher.request({ origin: ra.origin, path: '/slow?ms=600', method: 'GET' }).then((res) => res.body.text())
  records = ['127.0.0.3']
  await eventually('a draining', () => b.snapshot().find((s) => s.replica === a.origin)?.state === 'draining')
  assert.deepEqual(b.healthyReplicas('u').map((r) => r.origin), [c.origin])
  for (let i = 0; i < 20; i++) assert.equal(b.pick('u')?.origin, c.origin)
  assert.equal(await slow, 'slow done', 'the request in flight on the leaving replica completes')
  b.end(ra, { status: 200, error: null, durationMs: performance.now() - started })
  await eventually('a removed', () => !b.snapshot().some((s) => s.replica === a.origin))
  await eventually('its pool closed', () => (ra.dispatcher as Replica['dispatcher'] & { closed: boolean }).closed)
})

test('a resolver failure keeps the replicas; "no such name" empties the upstream', async (t) => {
  const a = await startLocalReplica('127.0.0.2')
  t.after(() => a.close())
  let mode: 'ok' | 'servfail' | 'nxdomain' = 'ok'
  let calls = 0
  const { balancer: b } = dnsBalancer(a.port, async () => {
  t.after(() => b.close())
    calls++
    if (mode === 'servfail') throw Object.assign(new Error('queryA ESERVFAIL'), { code: 'ESERVFAIL' })
    if (mode === 'nxdomain') throw Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' })
    return ['127.0.0.2']
  })
  await b.ready()
  assert.equal(b.healthyReplicas('u').length, 1)
  mode = 'servfail'
  const before = calls
  await eventually('a few failed resolutions', () => calls >= before + 3)
  assert.equal(b.healthyReplicas('u').length, 1)
  mode = 'nxdomain'
  await eventually('emptied', () => !b.hasReplicas('u'))
  assert.equal(b.pick('u'), null)
  mode = 'ok'
  await eventually('back', () => b.healthyReplicas('u').length === 1)
})

test('a replica that leaves and comes back while draining is revived, not duplicated', async (t) => {
  const a = await startLocalReplica('127.0.0.2')
  t.after(() => a.close())
  let records = ['127.0.0.2']
  const { balancer: b } = dnsBalancer(a.port, async () => records)
  t.after(() => b.close())
  await b.ready()
  const ra = b.pick('u')!
  b.begin(ra)
  records = []
  await eventually('draining', () => b.snapshot()[0]?.state === 'draining')
  records = ['127.0.0.2']
  await eventually('healthy again', () => b.snapshot()[0]?.state === 'healthy')
  assert.equal(b.snapshot().length, 1)
  assert.equal(b.pick('u'), ra, 'the same replica, with its pool and counters')
  b.end(ra, { status: 200, error: null, durationMs: 1 })
  assert.equal(b.snapshot()[0].inFlight, 0)
})
