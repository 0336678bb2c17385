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
export const MAX_BLOCK = 1024

/**
 * A block of admissions this process reserved in Redis in one call for a busy subject
 * (QUOTA_BATCH_LUA's credit): requests, tokens and, with maxConcurrent, leases, already
 * counted there, so drawing from it admits exactly as many as Redis allowed and never more.
 * Requests drawn from a live credit settle into it, without a Redis call; the rest goes
 * back at the end of its life, or as soon as a request does not fit in it. Its leases are
 * one member of the credit leases zset in Redis (`leasesMember`, counted as `block`); the
 * lease ids handed to its requests exist only here until the return, when those still held
 * become members of their own.
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
  /** Lease ids held by requests drawn from it, and ids given back for reuse. */
  private readonly held = new Set<string>()
  private spare: string[] = []
  /** Lease ids made so far (`{leaseBase}.1` ...). */
  private issued = 0

  constructor(
    readonly limits: Limits,
    readonly block: number,
    readonly blockTokens: number,
    /** Redis' answer to the grant: the windows with the whole block counted. */
    private readonly granted: QuotaState,
    /** performance.now() when the grant was sent (no later than Redis read its clock). */
    private readonly sentAt: number,
    /** The lease id of the request that asked for it: the block's lease ids derive from it. */
    private readonly leaseBase: string,
    /** Its leases' member of the credit leases zset, '' when no lease is counted (no maxConcurrent). */
    readonly leasesMember: string,
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
      (!needsLease || this.held.size < this.block)
    )
  }

  /** A lease of the block for a request drawn from it: one given back earlier, else a new id. */
  takeLease(): string {
    const id = this.spare.pop() ?? `${this.leaseBase}.${++this.issued}`
    this.held.add(id)
    return id
  }

  /** A request drawn from it settled while it is live: its lease is free for the next one. */
  putLease(id: string): void {
    if (this.held.delete(id)) this.spare.push(id)
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
      g[S_IN_FLIGHT] - (this.block - this.held.size),
      0,
    ]
  }

  /** What goes back to Redis, with the leases its requests still hold (they leave with it). */
  takeReturn(): ReturnArgs {
    const heldLeases = [...this.held]
    this.held.clear()
    this.spare = []
    return {
      minuteWindow: this.minuteWindow,
      dayWindow: this.dayWindow,
      unusedRequests: this.block - this.usedRequests,
      unusedTokens: this.blockTokens - this.usedTokens,
      leasesMember: this.leasesMember,
      heldLeases,
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
