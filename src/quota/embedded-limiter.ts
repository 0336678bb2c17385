import type { Limits } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { EmbeddedUsage } from './embedded-usage.js'
import { NO_HEADERS, hasQuota, quotaExceeded, rateLimitHeaders, storeUnavailable } from './headers.js'
import type { QuotaLimiter, Reservation, ReserveInput, UsageFilter, UsageReport, UsageRow } from './types.js'
import {
  DAY_MS,
  HIT_CONCURRENT,
  HIT_RPM,
  HIT_TPD,
  HIT_TPM,
  MINUTE_MS,
  S_DAY_TOKENS,
  S_FLAGS,
  S_IN_FLIGHT,
  S_MINUTE_TOKENS,
  S_NOW,
  S_REQUESTS,
  tokenCount,
  utcDay,
} from './windows.js'

export interface EmbeddedQuotaOptions {
  /** How long a lease outlives its last renewal (default 30 s); renewed every third of it. */
  leaseTtlMs?: number
  /** How often usage.json is rewritten while usage changed (default 2 s). */
  persistIntervalMs?: number
  /** The time source (tests move it across window boundaries). */
  clock?: () => number
}

/** One subject's windows, the same fields the Redis hash holds, plus its leases (id → expiry). */
interface SubjectState {
  m: number
  r: number
  tm: number
  d: number
  td: number
  leases: Map<string, number>
}

/**
 * The Redis limiter's semantics in one process's memory (the store when `store.redis` is
 * empty): the same fixed windows, leases, headers and refusals; usage persisted in dataDir.
 */
export class EmbeddedQuotaLimiter implements QuotaLimiter {
  private readonly subjects = new Map<string, SubjectState>()
  /** In-flight leases: lease id → the state holding it (renewed by one timer). */
  private readonly leases = new Map<string, SubjectState>()
  private leaseSeq = 0
  private readonly leaseTtlMs: number
  private readonly clock: () => number
  private readonly usage: EmbeddedUsage
  private readonly renewTimer: NodeJS.Timeout
  /** Scratch QuotaState: read synchronously by the header builders, then reused. */
  private readonly state = [0, 0, 0, 0, 0, 0]
  private closed = false

  constructor(dataDir: string, log: Logger, opts: EmbeddedQuotaOptions = {}) {
    this.leaseTtlMs = opts.leaseTtlMs ?? 30_000
    this.clock = opts.clock ?? Date.now
    this.usage = new EmbeddedUsage(dataDir, log, opts.persistIntervalMs)
    this.renewTimer = setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.leaseTtlMs / 3)))
    this.renewTimer.unref()
  }

  async reserve(input: ReserveInput): Promise<Reservation> {
    const { requestId, subject, limits } = input
    const tokens = tokenCount(input.reservedTokens)
    if (this.closed) throw storeUnavailable()
    if (!hasQuota(limits)) return { requestId, subject, limits, reservedTokens: tokens, headers: NO_HEADERS }
    const now = this.clock()
    const s = this.current(subject, now)
    const rpm = limits.requestsPerMinute
    const tpm = limits.tokensPerMinute
    const tpd = limits.tokensPerDay
    const maxc = limits.maxConcurrent
    let inFlight = 0
    if (maxc !== undefined) {
      for (const [id, expiry] of s.leases) if (expiry <= now) s.leases.delete(id)
      inFlight = s.leases.size
    }
    let flags = 0
    if (rpm !== undefined && s.r + 1 > rpm) flags |= HIT_RPM
    if (tpm !== undefined && s.tm + tokens > tpm) flags |= HIT_TPM
    if (tpd !== undefined && s.td + tokens > tpd) flags |= HIT_TPD
    if (maxc !== undefined && inFlight >= maxc) flags |= HIT_CONCURRENT
    let leaseId: string | undefined
    if (flags === 0) {
      s.r += 1
      s.tm += tokens
      s.td += tokens
      if (maxc !== undefined) {
        leaseId = `l${++this.leaseSeq}`
        s.leases.set(leaseId, now + this.leaseTtlMs)
        this.leases.set(leaseId, s)
        inFlight += 1
      }
    }
    const st = this.state
    st[S_FLAGS] = flags
    st[S_NOW] = now
    st[S_REQUESTS] = s.r
    st[S_MINUTE_TOKENS] = s.tm
    st[S_DAY_TOKENS] = s.td
    st[S_IN_FLIGHT] = inFlight
    if (flags !== 0) throw quotaExceeded(limits, flags, st, tokens)
    return {
      requestId,
      subject,
      limits,
      reservedTokens: tokens,
      headers: rateLimitHeaders(limits, st),
      minuteWindow: s.m,
      dayWindow: s.d,
      leaseId,
    }
  }

  async settle(resv: Reservation, usage: UsageReport): Promise<void> {
    const prompt = tokenCount(usage.promptTokens)
    const completion = tokenCount(usage.completionTokens)
    const now = this.clock()
    if (resv.leaseId !== undefined) {
      this.leases.get(resv.leaseId)?.leases.delete(resv.leaseId)
      this.leases.delete(resv.leaseId)
    }
    const delta = prompt + completion - resv.reservedTokens
    if (resv.minuteWindow !== undefined && delta !== 0) {
      // As QUOTA_BATCH_LUA's settlement: correct a current window in place; after it ended, drop a refund but
      // charge an overrun to the window that is current now.
      const s = this.current(resv.subject, now)
      if (resv.minuteWindow === s.m) s.tm = Math.max(0, s.tm + delta)
      else if (delta > 0) s.tm += delta
      if (resv.dayWindow === s.d) s.td = Math.max(0, s.td + delta)
      else if (delta > 0) s.td += delta
    }
    this.usage.add(utcDay(Math.floor(now / DAY_MS)), resv.subject, usage.model, prompt, completion)
  }

  async peekHeaders(subject: string, limits: Limits): Promise<Record<string, string>> {
    if (!hasQuota(limits)) return {}
    if (this.closed) throw storeUnavailable()
    const now = this.clock()
    const s = this.subjects.get(subject)
    const st = this.state
    st[S_FLAGS] = 0
    st[S_NOW] = now
    const minuteCurrent = s !== undefined && s.m === Math.floor(now / MINUTE_MS)
    st[S_REQUESTS] = minuteCurrent ? s.r : 0
    st[S_MINUTE_TOKENS] = minuteCurrent ? s.tm : 0
    st[S_DAY_TOKENS] = s !== undefined && s.d === Math.floor(now / DAY_MS) ? s.td : 0
    let inFlight = 0
    if (s !== undefined) for (const expiry of s.leases.values()) if (expiry > now) inFlight++
    st[S_IN_FLIGHT] = inFlight
    return rateLimitHeaders(limits, st)
  }

  async queryUsage(filter: UsageFilter): Promise<UsageRow[]> {
    return this.usage.query(filter)
  }

  isReady(): boolean {
    return !this.closed
  }

  /** Stops the timers and writes usage.json one last time. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.renewTimer)
    await this.usage.close()
  }

  /** The subject's state with windows that ended reset to zero (what Lua does on read). */
  private current(subject: string, now: number): SubjectState {
    const minute = Math.floor(now / MINUTE_MS)
    const day = Math.floor(now / DAY_MS)
    let s = this.subjects.get(subject)
    if (s === undefined) {
      s = { m: minute, r: 0, tm: 0, d: day, td: 0, leases: new Map() }
      this.subjects.set(subject, s)
      return s
    }
    if (s.m !== minute) {
      s.m = minute
      s.r = 0
      s.tm = 0
    }
    if (s.d !== day) {
      s.d = day
      s.td = 0
    }
    return s
  }

  private renewLeases(): void {
    const expiry = this.clock() + this.leaseTtlMs
    for (const [id, s] of this.leases) if (s.leases.has(id)) s.leases.set(id, expiry)
    // Forget idle subjects from past days so the map does not grow with every subject ever seen.
    if (this.subjects.size > 10_000) {
      const today = Math.floor(this.clock() / DAY_MS)
      for (const [subject, s] of this.subjects) if (s.d !== today && s.leases.size === 0) this.subjects.delete(subject)
    }
  }
}
