import type { UsageFilter, UsageRow } from './types.js'

// Usage is counted per (UTC day, subject, model). In Redis each day is one hash
// `{prefix}u:{day}` whose fields are `r`, `p` or `c` (requests, prompt, completion tokens)
// followed by the JSON pair [subject, model]: any subject or model name is safe in it, and one
// HGETALL per day in the asked range answers GET /admin/usage. `{prefix}u:days` lists the days.

export const USAGE_REQUESTS = 'r'
export const USAGE_PROMPT = 'p'
export const USAGE_COMPLETION = 'c'

/** The three hash fields of one (subject, model) pair. */
export type UsageFields = readonly [requests: string, prompt: string, completion: string]

export function usageFields(subject: string, model: string): UsageFields {
  const pair = JSON.stringify([subject, model])
  return [USAGE_REQUESTS + pair, USAGE_PROMPT + pair, USAGE_COMPLETION + pair]
}

/** True when `day` (YYYY-MM-DD) is inside the filter's inclusive range. */
export function dayInRange(day: string, filter: UsageFilter): boolean {
  return (filter.from === undefined || day >= filter.from) && (filter.to === undefined || day <= filter.to)
}

export function rowMatches(subject: string, model: string, filter: UsageFilter): boolean {
  return (filter.subject === undefined || subject === filter.subject) && (filter.model === undefined || model === filter.model)
}

/** Rows of one day's usage hash that pass the filter, merged per (subject, model). */
export function rowsFromHash(day: string, hash: Record<string, string>, filter: UsageFilter): UsageRow[] {
  const rows = new Map<string, UsageRow>()
  for (const [field, value] of Object.entries(hash)) {
    const kind = field[0]
    const pairText = field.slice(1)
    let pair: unknown
    try {
      pair = JSON.parse(pairText)
    } catch {
      continue
    }
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') continue
    const [subject, model] = pair as [string, string]
    if (!rowMatches(subject, model, filter)) continue
    let row = rows.get(pairText)
    if (!row) {
      row = { subject, model, day, requests: 0, promptTokens: 0, completionTokens: 0 }
      rows.set(pairText, row)
    }
    const n = Number(value)
    if (kind === USAGE_REQUESTS) row.requests += n
    else if (kind === USAGE_PROMPT) row.promptTokens += n
    else if (kind === USAGE_COMPLETION) row.completionTokens += n
  }
  return [...rows.values()]
}

/** Stable report order: day, then subject, then model. */
export function sortUsage(rows: UsageRow[]): UsageRow[] {
  return rows.sort(
    (a, b) =>
      cmp(a.day, b.day) || cmp(a.subject, b.subject) || cmp(a.model, b.model),
  )
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
