/** What the balancer reads from a vLLM replica's `/metrics`; null where the family is absent. */
export interface VllmLoad {
  /** `vllm:num_requests_running`, summed over series (model_name, engine labels). */
  running: number | null
  /** `vllm:num_requests_waiting`, summed likewise. */
  waiting: number | null
  /**
   * `vllm:kv_cache_usage_perc` (newer vLLM) or else `vllm:gpu_cache_usage_perc`, in 0..1; the
   * highest series, since one full engine preempts even when its siblings have room.
   */
  kvUsage: number | null
}

const RUNNING = 'vllm:num_requests_running'
const WAITING = 'vllm:num_requests_waiting'
const KV = 'vllm:kv_cache_usage_perc'
const KV_OLD = 'vllm:gpu_cache_usage_perc'
const FAMILIES: readonly string[] = [RUNNING, WAITING, KV, KV_OLD]

/**
 * Reads the few families the balancer needs out of Prometheus text exposition, without a
 * general parser: one pass over the lines, looking only at those starting with `vllm:`.
 * Label values may hold spaces, braces and escaped quotes; samples that are not finite
 * numbers (NaN, +Inf) are ignored.
 */
export function parseVllmMetrics(text: string): VllmLoad {
  let running: number | null = null
  let waiting: number | null = null
  let kv: number | null = null
  let kvOld: number | null = null
  const len = text.length
  let pos = 0
  while (pos < len) {
    let end = text.indexOf('\n', pos)
    if (end < 0) end = len
    if (text.startsWith('vllm:', pos)) {
      let which = -1
      for (let f = 0; f < FAMILIES.length; f++) {
        if (startsWithName(text, pos, FAMILIES[f])) {
          which = f
          break
        }
      }
      if (which >= 0) {
        const v = sampleValue(text, pos + FAMILIES[which].length, end)
        if (Number.isFinite(v)) {
          if (which === 0) running = (running ?? 0) + v
          else if (which === 1) waiting = (waiting ?? 0) + v
          else if (which === 2) kv = kv === null ? v : Math.max(kv, v)
          else kvOld = kvOld === null ? v : Math.max(kvOld, v)
        }
      }
    }
    pos = end + 1
  }
  return { running, waiting, kvUsage: kv ?? kvOld }
}

/** `name` at `pos`, followed by labels or the value: not merely a prefix of a longer name. */
function startsWithName(text: string, pos: number, name: string): boolean {
  if (!text.startsWith(name, pos)) return false
  const next = text.charCodeAt(pos + name.length)
  return next === 0x7b /* { */ || next === 0x20 /* space */ || next === 0x09 /* tab */
}

/** The sample value after the metric name (at `at`) on the line ending at `end`; NaN if none. */
function sampleValue(text: string, at: number, end: number): number {
  let i = at
  if (text.charCodeAt(i) === 0x7b) {
    // Skip the label set; a `}` inside a quoted value does not close it.
    let quoted = false
    for (i++; i < end; i++) {
      const c = text.charCodeAt(i)
      if (quoted) {
        if (c === 0x5c /* \ */) i++
        else if (c === 0x22 /* " */) quoted = false
      } else if (c === 0x22) quoted = true
      else if (c === 0x7d /* } */) break
    }
    if (i >= end) return NaN
    i++
  }
  while (i < end && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i++
  let j = i
  while (j < end) {
    const c = text.charCodeAt(j)
    if (c === 0x20 || c === 0x09 || c === 0x0d) break
    j++
  }
  if (j === i) return NaN
  return Number(text.slice(i, j))
}
