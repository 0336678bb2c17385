import assert from 'node:assert/strict'
import { test } from 'node:test'
import { markdown, type BenchReport } from '../../bench/report.js'

// The report says where each process ran, from what the run pinned (not a fixed sentence).

function report(cpus?: BenchReport['cpus']): BenchReport {
  return {
    machine: '2 × test cpu',
    startedAt: '2026-11-24T00:00:00.000Z',
    seconds: 5,
    warmupSeconds: 3,
    rounds: 1,
    ...(cpus ? { cpus } : {}),
    rows: [],
    ttft: {},
    gatewayRssMiB: { idle: 100, peakStreamC64: null },
    soak: null,
  } as BenchReport
}

test('the pinning line follows the CPUs the run used', () => {
  assert.match(markdown(report({ loadGenerator: '0', measured: '1', redis: '1' })), /wrk on CPU 0, simulator \+ gateway \+ Redis on CPU 1;/)
  assert.match(markdown(report({ loadGenerator: '0', measured: '1', redis: '0' })), /wrk on CPU 0, simulator \+ gateway on CPU 1, Redis on CPU 0;/)
  assert.match(markdown(report()), /simulator \+ gateway on CPU 1, Redis on CPU any;/, 'older reports: Redis was not pinned')
})
