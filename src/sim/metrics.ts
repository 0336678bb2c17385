// vLLM's `GET /metrics`, in the shape prometheus_client writes it (float values, `_total`
// counters, `engine` and `model_name` labels), limited to what a gateway's balancer reads.
import type { SimState } from './state.js'

function num(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : String(n)
}

function family(lines: string[], name: string, type: 'gauge' | 'counter', help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
}

/** The Prometheus text for one replica; KV-cache use grows with running requests, in 0..1. */
export function vllmMetrics(state: SimState, modelName: string): string {
  const labels = `engine="0",model_name=${JSON.stringify(modelName)}`
  const kv = Math.min(1, state.running / Math.max(1, state.settings.maxBatch))
  const lines: string[] = []
  family(lines, 'vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.')
  lines.push(`vllm:num_requests_running{${labels}} ${num(state.running)}`)
  family(lines, 'vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.')
  lines.push(`vllm:num_requests_waiting{${labels}} ${num(state.waiting)}`)
  family(lines, 'vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage. 1 means 100 percent usage. (deprecated name)')
  lines.push(`vllm:gpu_cache_usage_perc{${labels}} ${num(kv)}`)
  family(lines, 'vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.')
  lines.push(`vllm:kv_cache_usage_perc{${labels}} ${num(kv)}`)
  family(lines, 'vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.')
  lines.push(`vllm:prompt_tokens_total{${labels}} ${num(state.promptTokens)}`)
  family(lines, 'vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.')
  lines.push(`vllm:generation_tokens_total{${labels}} ${num(state.generationTokens)}`)
  family(lines, 'vllm:request_success_total', 'counter', 'Count of successfully processed requests.')
  // The engine only knows stop / length / abort; tool calls end with "stop" there.
  const stop = (state.successByReason.get('stop') ?? 0) + (state.successByReason.get('tool_calls') ?? 0)
  lines.push(`vllm:request_success_total{${labels},finished_reason="stop"} ${num(stop)}`)
  lines.push(`vllm:request_success_total{${labels},finished_reason="length"} ${num(state.successByReason.get('length') ?? 0)}`)
  lines.push(`vllm:request_success_total{${labels},finished_reason="abort"} ${num(state.aborted)}`)
  return lines.join('\n') + '\n'
}
