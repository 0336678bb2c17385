import type { Limits } from '../config/index.js'
import type { ReturnArgs } from './script-batch.js'
import { DAY_MS, MINUTE_MS, S_DAY_TOKENS, S_EXTRA, S_IN_FLIGHT, S_MINUTE_TOKENS, S_NOW, S_REQUESTS, type QuotaState } from './windows.js'

/** How long an admission credit lives before its unused part goes back (ms). */
export const CREDIT_LIFETIME_MS = 250
/** A subject whose previous reserve in this process was this recent asks for credit. */
export const BUSY_WITHIN_MS = 50
/** Credit sizes (requests per block): the first, and the bounds it adapts within. */
export const FIRST_BLOCK = 8
export const MIN_BLOCK = 4
export const MAX_BLOCK = 256

/**
 * A block of admissions this process reserved in Redis in one call for a busy subject
 * (QUOTA_BATCH_LUA's credit): requests, tokens and, with maxConcurrent, leases, already
 * counted there, so drawing from it admits exactly as many as Redis allowed and never more.
 * Requests drawn from a live credit settle into it, without a Redis call; the rest goes
 * back at the end of its life, or as soon as a request does not fit in it.
 */
export class AdmissionCredit {
  usedRequests = 0
  /** Tokens reserved by the requests drawn, corrected to their real usage as they settle. */
  usedTokens = 0
  returned = false
  timer: NodeJS.Timeout | null = null
  readonly minuteWindow: number
  readonly dayWindow: number
  /** performance.now() by which it must be given back: before its minute ends by Redis' clock. */
  readonly expiresAt: number

  constructor(
    readonly limits: Limits,
    readonly block: number,
    readonly blockTokens: number,
    /** Redis' answer to the grant: the windows with the whole block counted. */
    private readonly granted: QuotaState,
    /** performance.now() when the grant was sent (no later than Redis read its clock). */
    private readonly sentAt: number,
    /** Leases of the block not held by a request, to take from the end. */
    readonly freeLeases: string[],
  ) {
    const now = granted[S_NOW]
    this.minuteWindow = Math.floor(now / MINUTE_MS)
    this.dayWindow = Math.floor(now / DAY_MS)
    this.expiresAt = sentAt + CREDIT_LIFETIME_MS
  }

  /** True when a request of `tokens` under `limits` can be admitted from it now. */
  fits(limits: Limits, tokens: number, now: number, needsLease: boolean): boolean {
    return (
      !this.returned &&
      now < this.expiresAt &&
      sameLimits(limits, this.limits) &&
      this.usedRequests < this.block &&
      this.usedTokens + tokens <= this.blockTokens &&
      (!needsLease || this.freeLeases.length > 0)
    )
  }

  /** The windows as Redis would show them with only what was drawn counted (for the headers). */
  stateNow(now: number): QuotaState {
    const g = this.granted
    const unusedRequests = this.block - this.usedRequests
    const unusedTokens = Math.max(0, this.blockTokens - this.usedTokens)
    return [
      0,
      g[S_NOW] + Math.max(0, now - this.sentAt),
      g[S_REQUESTS] - unusedRequests,
      g[S_MINUTE_TOKENS] - unusedTokens,
      g[S_DAY_TOKENS] - unusedTokens,
      g[S_IN_FLIGHT] - this.freeLeases.length,
      0,
    ]
  }

  /** What goes back to Redis; the spare leases leave with it. */
  takeReturn(): ReturnArgs {
    const freeLeases = this.freeLeases.splice(0)
    return {
      minuteWindow: this.minuteWindow,
      dayWindow: this.dayWindow,
      unusedRequests: this.block - this.usedRequests,
      unusedTokens: this.blockTokens - this.usedTokens,
      freeLeases,
    }
  }
}

/** The limits a credit was granted under still apply (compared by value: entitlements may be rebuilt). */
function sameLimits(a: Limits, b: Limits): boolean {
  return (
    a === b ||
    (a.requestsPerMinute === b.requestsPerMinute &&
      a.tokensPerMinute === b.tokensPerMinute &&
      a.tokensPerDay === b.tokensPerDay &&
      a.maxConcurrent === b.maxConcurrent)
  )
}

/** The next block for a subject after `c`: doubled when it ran out, halved when it mostly idled. */
export function nextBlock(current: number, c: AdmissionCredit): number {
  if (c.usedRequests >= c.block) return Math.min(MAX_BLOCK, current * 2)
  if (c.usedRequests * 4 < c.block) return Math.max(MIN_BLOCK, Math.floor(current / 2))
  return current
}

/** The block a grant reply gave (0: none, the request was checked alone). */
export function grantedBlock(state: QuotaState): number {
  return state[S_EXTRA] > 1 ? state[S_EXTRA] : 0
}
