import type { Limits } from '../config/index.js'
import { QuotaExceeded, ServiceUnavailable } from '../errors/index.js'
import {
  HIT_CONCURRENT,
  HIT_RPM,
  HIT_TPD,
  HIT_TPM,
  S_DAY_TOKENS,
  S_MINUTE_TOKENS,
  S_NOW,
  S_REQUESTS,
  dayResetMs,
  formatReset,
  minuteResetMs,
  retryAfterSeconds,
  type QuotaState,
} from './windows.js'

export const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** True when at least one limit needs the store on reserve. */
export function hasQuota(limits: Limits): boolean {
  return (
    limits.requestsPerMinute !== undefined ||
    limits.tokensPerMinute !== undefined ||
    limits.tokensPerDay !== undefined ||
    limits.maxConcurrent !== undefined
  )
}

/**
 * The `x-ratelimit-*` headers for the limits that apply. Tokens: `limit` is tokensPerMinute
 * where set, else tokensPerDay (SPEC); `remaining` is what can really be spent now (the lower
 * of the two), and `reset` belongs to the window that bounds it. With both set, the day limit
 * is also reported on its own as `x-ratelimit-*-tokens-day`.
 */
export function rateLimitHeaders(limits: Limits, state: QuotaState): Record<string, string> {
  const h: Record<string, string> = {}
  const now = state[S_NOW]
  const rpm = limits.requestsPerMinute
  if (rpm !== undefined) {
    h['x-ratelimit-limit-requests'] = String(rpm)
    h['x-ratelimit-remaining-requests'] = String(Math.max(0, rpm - state[S_REQUESTS]))
    h['x-ratelimit-reset-requests'] = formatReset(minuteResetMs(now))
  }
  const tpm = limits.tokensPerMinute
  const tpd = limits.tokensPerDay
  if (tpm === undefined && tpd === undefined) return h
  const leftMinute = tpm === undefined ? Infinity : Math.max(0, tpm - state[S_MINUTE_TOKENS])
  const leftDay = tpd === undefined ? Infinity : Math.max(0, tpd - state[S_DAY_TOKENS])
  const dayBinds = leftDay < leftMinute
  h['x-ratelimit-limit-tokens'] = String(tpm ?? tpd)
  h['x-ratelimit-remaining-tokens'] = String(dayBinds ? leftDay : leftMinute)
  h['x-ratelimit-reset-tokens'] = formatReset(dayBinds ? dayResetMs(now) : minuteResetMs(now))
  if (tpm !== undefined && tpd !== undefined) {
    h['x-ratelimit-limit-tokens-day'] = String(tpd)
    h['x-ratelimit-remaining-tokens-day'] = String(leftDay)
    h['x-ratelimit-reset-tokens-day'] = formatReset(dayResetMs(now))
  }
  return h
}

interface Hit {
  name: 'requestsPerMinute' | 'tokensPerMinute' | 'tokensPerDay' | 'maxConcurrent'
  waitMs: number
  message: string
}

function describeHit(bit: number, limits: Limits, state: QuotaState, tokens: number): Hit {
  const now = state[S_NOW]
  if (bit === HIT_RPM) {
    const waitMs = minuteResetMs(now)
    const msg = `${limits.requestsPerMinute} per minute`
    return { name: 'requestsPerMinute', waitMs, message: msg }
  }
  if (bit === HIT_CONCURRENT) {
    // A slot frees when one of the subject's requests ends, which no clock predicts.
    return { name: 'maxConcurrent', waitMs: 1000, message: `${limits.maxConcurrent} requests in flight` }
  }
  const perMinute = bit === HIT_TPM
  const limit = (perMinute ? limits.tokensPerMinute : limits.tokensPerDay) ?? 0
  const used = state[perMinute ? S_MINUTE_TOKENS : S_DAY_TOKENS]
  const per = perMinute ? 'minute' : 'day'
  const waitMs = perMinute ? minuteResetMs(now) : dayResetMs(now)
  const name = perMinute ? 'tokensPerMinute' : 'tokensPerDay'
  if (tokens > limit) {
    return { name, waitMs, message: `${limit} per ${per}, but this request alone reserves ${tokens} (lower max_tokens)` }
  }
  return { name, waitMs, message: `${limit} per ${per}, ${used} used, this request reserves ${tokens}` }
}

/**
 * The 429 for a refused reserve. When several limits refused, the message names the one that
 * frees up last, so `retry-after` is when the request can really succeed.
 */
export function quotaExceeded(limits: Limits, flags: number, state: QuotaState, tokens: number): QuotaExceeded {
  let worst: Hit | null = null
  for (const bit of [HIT_RPM, HIT_TPM, HIT_TPD, HIT_CONCURRENT]) {
    if ((flags & bit) === 0) continue
    const hit = describeHit(bit, limits, state, tokens)
    if (worst === null || hit.waitMs > worst.waitMs) worst = hit
  }
  const hit = worst ?? { name: 'requestsPerMinute', waitMs: 1000, message: 'limit reached' }
  const retryAfter = retryAfterSeconds(hit.waitMs)
  const headers = rateLimitHeaders(limits, state)
  headers['retry-after'] = String(retryAfter)
  return new QuotaExceeded(`Rate limit reached for ${hit.name}: ${hit.message}; retry after ${retryAfter} s`, {
    reason: hit.name,
    headers,
  })
}

/** The fail-closed 503 when the quota store cannot answer. */
export function storeUnavailable(): ServiceUnavailable {
  return new ServiceUnavailable('The quota store is unavailable; retry shortly', {
    reason: 'store_unavailable',
    headers: { 'retry-after': '1' },
  })
}
