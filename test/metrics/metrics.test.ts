import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics, startMetricsServer, LATENCY_BUCKETS } from '../../src/metrics/index.js'
import type { ReplicaStatus } from '../../src/upstream/types.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the Prometheus text format's sample lines (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    assert.ok(m, `unparseable line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return samples
}

const replica = (upstream: string, id: string, healthy: boolean, inFlight: number): ReplicaStatus => ({
  upstream,
  replica: id,
  healthy,
  inFlight,
  waiting: 2,
  running: 1,
  kvCacheUsage: null,
  latencyMsP50: null,
  lastError: null,
  lastErrorAt: null,
})

async function scrape(port: number): Promise<{ status: number; type: string | null; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  const text = await res.text()
  return { status: res.status, type: res.headers.get('content-type'), samples: parseExposition(text) }
}

test('every SPEC metric is served over HTTP with its label names, plus Node defaults', async (t) => {
  let snapshot = [replica('vllm-mistral', 'http://10.0.0.11:8000', true, 3), replica('vllm-mistral', 'http://10.0.0.12:8000', false, 0)]
  const metrics = createMetrics({
    snapshotUpstreams: () => snapshot,
    models: ['mistral-7b-instruct'],
    roles: ['analyst'],
  })
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, metrics)
  t.after(() => server.close())

  metrics.requests('/v1/chat/completions', 'mistral-7b-instruct', 'analyst', 200)
  metrics.requests('/v1/chat/completions', 'mistral-7b-instruct', 'analyst', 200)
  metrics.requests('/v1/chat/completions', 'some-random-model-x9', 'intruder', 404)
  metrics.duration('/v1/chat/completions', 'mistral-7b-instruct', 1.7)
  metrics.ttft('mistral-7b-instruct', 0.3)
  metrics.tokens('mistral-7b-instruct', 'analyst', 12, 34)
  metrics.rateLimited('analyst', 'tokensPerMinute')
  metrics.authFailure('expired')
  metrics.auditWriteError(3)

  const { status, type, samples } = await scrape(server.port)
  assert.equal(status, 200)
  assert.match(type ?? '', /^text\/plain/)
  const labelSets = (name: string): string[] => [
    ...new Set(samples.filter((s) => s.name === name).map((s) => Object.keys(s.labels).filter((k) => k !== 'le').sort().join(','))),
  ]
  const expected: Record<string, string> = {
    gatehouse_requests_total: 'model,role,route,status',
    gatehouse_request_duration_seconds_bucket: 'model,route',
    gatehouse_time_to_first_token_seconds_bucket: 'model',
    gatehouse_tokens_total: 'model,role,type',
    gatehouse_rate_limited_total: 'limit,role',
    gatehouse_auth_failures_total: 'reason',
    gatehouse_upstream_in_flight: 'replica,upstream',
    gatehouse_upstream_healthy: 'replica,upstream',
    gatehouse_audit_write_errors_total: '',
  }
  for (const [name, labels] of Object.entries(expected)) assert.deepEqual(labelSets(name), [labels], name)

  const find = (name: string, labels: Record<string, string>): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  assert.equal(find('gatehouse_requests_total', { model: 'mistral-7b-instruct', role: 'analyst', status: '200' }), 2)
  assert.equal(find('gatehouse_requests_total', { model: 'unknown', role: 'none', status: '404' }), 1)
  assert.equal(find('gatehouse_tokens_total', { type: 'prompt' }), 12)
  assert.equal(find('gatehouse_tokens_total', { type: 'completion' }), 34)
  assert.equal(find('gatehouse_audit_write_errors_total', {}), 3)
  assert.equal(find('gatehouse_upstream_in_flight', { replica: 'http://10.0.0.11:8000' }), 3)
  assert.equal(find('gatehouse_upstream_healthy', { replica: 'http://10.0.0.12:8000' }), 0)
  assert.equal(find('gatehouse_request_duration_seconds_count', { model: 'mistral-7b-instruct' }), 1)
  assert.equal(find('gatehouse_request_duration_seconds_bucket', { le: '2.5' }), 1)
  assert.equal(find('gatehouse_request_duration_seconds_bucket', { le: '1' }), 0)
  const les = samples
    .filter((s) => s.name === 'gatehouse_request_duration_seconds_bucket')
    .map((s) => s.labels.le)
  assert.deepEqual(les, [...LATENCY_BUCKETS.map(String), '+Inf'])
  assert.ok(samples.some((s) => s.name === 'process_cpu_user_seconds_total'))
  assert.ok(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes'))

  const values = new Set(samples.flatMap((s) => Object.values(s.labels)))
  for (const unbounded of ['some-random-model-x9', 'intruder']) assert.ok(!values.has(unbounded), unbounded)

  // Gauges follow the balancer: a replica that is gone disappears at the next scrape.
  snapshot = [replica('vllm-mistral', 'http://10.0.0.11:8000', true, 1)]
  const again = await scrape(server.port)
  assert.equal(again.samples.filter((s) => s.name === 'gatehouse_upstream_in_flight').length, 1)
})

test('the metrics server answers GET /metrics only', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, metrics)
  t.after(() => server.close())
  const base = `http://127.0.0.1:${server.port}`
  assert.equal((await fetch(`${base}/metrics?x=1`)).status, 200)
  for (const [path, method] of [['/', 'GET'], ['/v1/models', 'GET'], ['/metrics', 'POST']] as const) {
    const res = await fetch(`${base}${path}`, { method })
    await res.arrayBuffer()
    assert.equal(res.status, 404, `${method} ${path}`)
  }
})

test('two instances in one process keep separate registries', async () => {
  const a = createMetrics()
  const b = createMetrics()
  a.authFailure('expired')
  a.authFailure('expired')
  b.authFailure('expired')
  const count = async (m: typeof a): Promise<number | undefined> =>
    parseExposition(await m.render()).find((s) => s.name === 'gatehouse_auth_failures_total')?.value
  assert.equal(await count(a), 2)
  assert.equal(await count(b), 1)
})
