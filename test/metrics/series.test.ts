import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CounterFamily, HistogramFamily } from '../../src/metrics/series.js'

// The per-request metric families the gateway keeps outside prom-client, rendered in the
// Prometheus text format (a live Prometheus scrapes them in test/deploy/observability.test.ts).

test('counter: one series per label set, values added, label values escaped', () => {
  const c = new CounterFamily('t_requests_total', 'Requests\nby model', ['model', 'status'])
  c.get(['m"1', '200']).inc()
  c.get(['m"1', '200']).inc(2)
  c.get(['back\\slash\nline', '404']).inc()
  assert.equal(
    c.render(),
    '# HELP t_requests_total Requests\\nby model\n' +
      '# TYPE t_requests_total counter\n' +
      't_requests_total{model="m\\"1",status="200"} 3\n' +
      't_requests_total{model="back\\\\slash\\nline",status="404"} 1\n',
  )
})

test('counter: label values that would join to the same key stay apart', () => {
  const c = new CounterFamily('t_total', 'x', ['a', 'b'])
  c.get(['x', 'yz']).inc()
  c.get(['xy', 'z']).inc(5)
  assert.match(c.render(), /t_total\{a="x",b="yz"\} 1\n/)
  assert.match(c.render(), /t_total\{a="xy",b="z"\} 5\n/)
})

test('histogram: le is inclusive, buckets cumulative, +Inf, sum and count', () => {
  const h = new HistogramFamily('t_seconds', 'Time', ['route'], [0.1, 1, 10])
  const s = h.get(['/v1/x'])
  for (const v of [0.05, 0.1, 0.5, 1, 3, 50]) s.observe(v)
  const lines = h.render().split('\n')
  assert.deepEqual(lines, [
    '# HELP t_seconds Time',
    '# TYPE t_seconds histogram',
    't_seconds_bucket{route="/v1/x",le="0.1"} 2',
    't_seconds_bucket{route="/v1/x",le="1"} 4',
    't_seconds_bucket{route="/v1/x",le="10"} 5',
    't_seconds_bucket{route="/v1/x",le="+Inf"} 6',
    't_seconds_sum{route="/v1/x"} 54.65',
    't_seconds_count{route="/v1/x"} 6',
    '',
  ])
})

test('a family without series renders only its HELP and TYPE lines', () => {
  assert.equal(new HistogramFamily('t_h', 'h', ['m'], [1]).render(), '# HELP t_h h\n# TYPE t_h histogram\n')
})
