import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseVllmMetrics } from '../../src/upstream/index.js'

const VLLM_TEXT = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="/models/mistral"} 3.0
vllm:num_requests_running{engine="0",model_name="lora-a"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="/models/mistral"} 7.0
vllm:num_requests_waiting{engine="0",model_name="lora-a"} 1.0
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 99.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="/models/mistral"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="/models/mistral"} 0.75
vllm:gpu_cache_usage_perc{engine="0",model_name="/models/mistral"} 0.1
vllm:request_success_total{engine="0",finished_reason="stop",model_name="/models/mistral"} 1234.0
`

test('sums running and waiting over series and ignores longer names sharing the prefix', () => {
  const load = parseVllmMetrics(VLLM_TEXT)
  assert.equal(load.running, 5)
  assert.equal(load.waiting, 8)
})

test('KV-cache usage is the fullest engine, preferring kv_cache_usage_perc over the old name', () => {
  assert.equal(parseVllmMetrics(VLLM_TEXT).kvUsage, 0.75)
  const old = 'vllm:gpu_cache_usage_perc{model_name="m"} 0.4\nvllm:gpu_cache_usage_perc{model_name="n"} 0.2\n'
  assert.equal(parseVllmMetrics(old).kvUsage, 0.4)
})

test('families that are absent are null, not zero', () => {
  const load = parseVllmMetrics('# nothing here\nprocess_cpu_seconds_total 12.5\n')
  assert.deepEqual(load, { running: null, waiting: null, kvUsage: null })
  assert.deepEqual(parseVllmMetrics(''), { running: null, waiting: null, kvUsage: null })
})

test('label values with spaces, braces and escaped quotes do not confuse it', () => {
  const text =
    'vllm:num_requests_running{model_name="a } b \\" {c} d",engine="0"} 4 1700000000000\n' +
    'vllm:num_requests_waiting{model_name="x y"} 2\r\n' +
    'vllm:num_requests_waiting 3\n'
  const load = parseVllmMetrics(text)
  assert.equal(load.running, 4)
  assert.equal(load.waiting, 5)
})

test('samples that are not finite numbers and broken lines are skipped', () => {
  const text =
    'vllm:num_requests_running{model_name="a"} NaN\n' +
    'vllm:num_requests_running{model_name="b"} +Inf\n' +
    'vllm:num_requests_running{model_name="c"} 6\n' +
    'vllm:num_requests_waiting{model_name="unterminated 9\n' +
    'vllm:num_requests_waiting{model_name="d"}\n' +
    'vllm:kv_cache_usage_perc{model_name="e"} 1e-1'
  const load = parseVllmMetrics(text)
  assert.equal(load.running, 6)
  assert.equal(load.waiting, null)
  assert.equal(load.kvUsage, 0.1)
})
