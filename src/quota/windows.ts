// Fixed windows: a UTC minute for requestsPerMinute and tokensPerMinute, a UTC day for
// tokensPerDay. Both limiters (Lua in Redis, Map in memory) keep the same per-subject state
// and answer with the same six numbers, laid out as a `QuotaState` array.

export const MINUTE_MS = 60_000
export const DAY_MS = 86_400_000

/** Bits of `QuotaState[S_FLAGS]`: which limits refused the request (0 = admitted). */
export const HIT_RPM = 1
export const HIT_TPM = 2
export const HIT_TPD = 4
export const HIT_CONCURRENT = 8
/** Redis limiter only: refused while an admission credit may still be out; ask again after S_EXTRA ms. */
export const WAIT_FOR_CREDITS = 16

/** Indexes into a QuotaState (the reserve and peek scripts return exactly this array). */
export const S_FLAGS = 0
export const S_NOW = 1
export const S_REQUESTS = 2
export const S_MINUTE_TOKENS = 3
export const S_DAY_TOKENS = 4
export const S_IN_FLIGHT = 5
/** Redis limiter only: the admission credit granted (its block of requests, 0 for none), or with WAIT_FOR_CREDITS the ms to wait. */
export const S_EXTRA = 6

/**
 * [flags, nowMs, requests this minute, tokens this minute, tokens today, leases in flight],
 * after admission when admitted, unchanged when refused.
 */
export type QuotaState = readonly number[]

/** Milliseconds until the current UTC minute ends (never 0: at :00.000 a full minute is left). */
export function minuteResetMs(now: number): number {
  return MINUTE_MS - (now % MINUTE_MS)
}

/** Milliseconds until the current UTC day ends. */
export function dayResetMs(now: number): number {
  return DAY_MS - (now % DAY_MS)
}

/**
 * OpenAI's `x-ratelimit-reset-*` format: `450ms` below a second, else a Go-style duration
 * rounded up to whole seconds (`12s`, `6m0s`, `23h59m59s`), so a client that waits this long
 * always finds the window reset.
 */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`
  const total = Math.ceil(ms / 1000)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}

/** `retry-after` in whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

let cachedDayId = -1
let cachedDay = ''

/** `YYYY-MM-DD` of a UTC day number (cached: consecutive calls almost always share a day). */
export function utcDay(dayId: number): string {
  if (dayId !== cachedDayId) {
    cachedDay = new Date(dayId * DAY_MS).toISOString().slice(0, 10)
    cachedDayId = dayId
  }
  return cachedDay
}

/** A non-negative integer token count from whatever a caller passed. */
export function tokenCount(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0
}
