import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Limits } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { NO_HEADERS, hasQuota, quotaExceeded, rateLimitHeaders, storeUnavailable } from './headers.js'
import { RespConnection, endpointOf } from '../store/resp-connection.js'
import { QUOTA_BATCH_SCRIPT, defineQuotaCommands, quotaPipeline, type QuotaCommands } from './redis-commands.js'
import { QuotaScriptBatcher, type SubjectQuotaKeys } from './script-batch.js'
import { SettleBatcher, type SettleCall } from './settle-batch.js'
import type { QuotaLimiter, Reservation, ReserveInput, UsageFilter, UsageReport, UsageRow } from './types.js'
import { dayInRange, rowsFromHash, sortUsage, usageFields, type UsageFields } from './usage.js'
import { DAY_MS, MINUTE_MS, S_EXTRA, S_FLAGS, S_NOW, WAIT_FOR_CREDITS, tokenCount, utcDay, type QuotaState } from './windows.js'
import { AdmissionCredit, BUSY_WITHIN_MS, CREDIT_LIFETIME_MS, FIRST_BLOCK, grantedBlock, nextBlock } from './credit.js'

export interface RedisQuotaOptions {
  /** How long a lease outlives its last renewal (default 30 s); renewed every third of it. */
  leaseTtlMs?: number
  /** Waits between settlement attempts after a store error (default 0.2, 0.5, 1, 2 s). */
  settleRetryDelaysMs?: readonly number[]
}

interface SubjectKeys extends SubjectQuotaKeys {
  subject: string
  usage: Map<string, UsageFields>
  /** performance.now() of this process' previous reserve for the subject. */
  lastReserveAt: number
  /** Requests to ask for in its next admission credit. */
  block: number
  credit: AdmissionCredit | null
  /**
   * A request for credit is on its way: settles once its answer is handled (the credit, if
   * granted, already open). The subject's reserves meanwhile wait for it and draw from the
   * new credit; those it cannot take go on as usual.
   */
  asking: Promise<void> | null
  /** Whether the subject's last answered request for credit got it (near a limit it does not: nobody waits then). */
  askGranted: boolean
}

/** A refusal while credits may still be out is asked again, at most this many times. */
const MAX_CREDIT_WAITS = 3
/** Time after a credit's end for its holder's return to reach Redis (ms). */
const CREDIT_RETURN_SLACK_MS = 25


// Subjects and models are bounded in practice (people, keys, configured models); the caches
// are dropped wholesale past these sizes rather than tracked per entry on the hot path.
const MAX_CACHED_SUBJECTS = 50_000
const MAX_CACHED_MODELS = 1_000

/**
 * Quotas shared exactly by every gateway replica on one Redis: reserve and settle run in one
 * Lua script call per subject and event-loop turn (QuotaScriptBatcher), one round trip; usage
 * counters gather apart (SettleBatcher). Fails closed: while Redis cannot
 * answer, reserve throws ServiceUnavailable.
 */
export class RedisQuotaLimiter implements QuotaLimiter {
  private readonly client: Redis & QuotaCommands
  /** Its own connection for reserve and settle (the two calls per request); the rest uses `client`. */
  private readonly wire: RespConnection
  private readonly keys = new Map<string, SubjectKeys>()
  /** Leases this process holds, renewed together: lease id (or a credit's leases member) → its zset key. */
  private readonly leases = new Map<string, string>()
  private readonly leasePrefix = `${randomBytes(6).toString('hex')}:`
  private leaseSeq = 0
  private readonly leaseTtlMs: number
  private readonly retryDelays: readonly number[]
  private readonly renewTimer: NodeJS.Timeout
  private readonly daysKey: string
  private readonly scripts: QuotaScriptBatcher
  private readonly settler: SettleBatcher
  private closed = false
  private usageDayId = -1
  private usageDay: readonly [key: string, day: string] = ['', '']

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
    opts: RedisQuotaOptions = {},
  ) {
    this.client = defineQuotaCommands(redis)
    this.wire = new RespConnection(endpointOf(redis), log, {
      name: 'gatehouse-quota',
      scripts: [QUOTA_BATCH_SCRIPT],
      // A silent path (Redis moved, a partition) would otherwise go unnoticed by the shared
      // client until its next command waits out its own timeout: replace its socket too.
      // Destroyed, not ended: a FIN on a dead path is never answered, so `disconnect()`
      // would leave the client "ready" on it.
      onTimeout: () => redis.stream?.destroy(),
    })
    this.leaseTtlMs = opts.leaseTtlMs ?? 30_000
    this.retryDelays = opts.settleRetryDelaysMs ?? [200, 500, 1000, 2000]
    this.daysKey = `${prefix}u:days`
    this.scripts = new QuotaScriptBatcher(this.wire, this.leaseTtlMs)
    this.settler = new SettleBatcher(this.client, this.scripts, this.wire, this.leaseTtlMs, this.daysKey, log, this.retryDelays)
    // One timer and one pipelined call renew every lease this process holds.
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(10, Math.floor(this.leaseTtlMs / 3)))
    this.renewTimer.unref()
  }

  async reserve(input: ReserveInput): Promise<Reservation> {
    const { requestId, subject, limits } = input
    const tokens = tokenCount(input.reservedTokens)
    if (!this.isReady()) throw storeUnavailable()
    // No limit to check: nothing to ask the store now; usage is still recorded at settle.
    if (!hasQuota(limits)) return { requestId, subject, limits, reservedTokens: tokens, headers: NO_HEADERS }
    const k = this.keysFor(subject)
    const maxc = limits.maxConcurrent ?? 0
    const at = performance.now()
    const busy = at - k.lastReserveAt < BUSY_WITHIN_MS
    k.lastReserveAt = at
    if (k.credit === null && k.asking !== null && k.askGranted) {
      // A grant is on its way (sent this turn or earlier): its answer comes no later than
      // this request's own would.
      await k.asking
      if (!this.isReady()) throw storeUnavailable()
    }
    if (k.credit !== null) {
      const now = performance.now()
      if (k.credit.fits(limits, tokens, now, maxc > 0)) return this.drawFrom(k.credit, input, tokens, now)
      // It cannot take this request: what it did not use goes back ahead of the reserve.
      this.returnCredit(k, k.credit)
    }
    const leaseId = maxc > 0 ? this.leasePrefix + (++this.leaseSeq).toString(36) : ''
    let state: QuotaState
    for (let waits = 0; ; waits++) {
      const sentAt = performance.now()
      const block = busy && waits === 0 && k.credit === null && k.asking === null ? k.block : 1
      try {
        // Joins this loop turn's script call of the subject, behind its settlements.
        const answer = this.scripts.reserve(k, {
          requestsPerMinute: limits.requestsPerMinute ?? 0,
          tokensPerMinute: limits.tokensPerMinute ?? 0,
          tokensPerDay: limits.tokensPerDay ?? 0,
          maxConcurrent: maxc,
          tokens,
          leaseId,
          block,
          creditLifetimeMs: CREDIT_LIFETIME_MS,
        })
        // Registered before this request's own await, so it settles after this request has
        // opened the credit (promise reactions run in the order they were registered).
        if (block > 1) k.asking = answer.then(noop, noop)
        state = await answer
      } catch {
        // No answer, or an error reply (out of memory, a read-only replica): admit nothing.
        throw storeUnavailable()
      } finally {
        if (block > 1) k.asking = null
      }
      const flags = state[S_FLAGS]
      const granted = flags === 0 ? grantedBlock(state) : 0
      if (block > 1) k.askGranted = granted > 0
      if (flags === 0) {
        if (granted > 0) return this.openCredit(k, input, tokens, state, leaseId, granted, sentAt)
        break
      }
      // Refused while some replica may hold unused credit: decide again once it is back.
      if ((flags & WAIT_FOR_CREDITS) !== 0 && waits < MAX_CREDIT_WAITS && !aloneTooBig(limits, tokens)) {
        await new Promise((r) => setTimeout(r, Math.min(state[S_EXTRA], CREDIT_LIFETIME_MS) + CREDIT_RETURN_SLACK_MS))
        if (!this.isReady()) throw storeUnavailable()
        continue
      }
      throw quotaExceeded(limits, flags & ~WAIT_FOR_CREDITS, state, tokens)
    }
    if (maxc > 0) this.leases.set(leaseId, k.leases)
    const now = state[S_NOW]
    return {
      requestId,
      subject,
      limits,
      reservedTokens: tokens,
      headers: rateLimitHeaders(limits, state),
      minuteWindow: Math.floor(now / MINUTE_MS),
      dayWindow: Math.floor(now / DAY_MS),
      leaseId: maxc > 0 ? leaseId : undefined,
    }
  }

  /** Holds a granted credit for the subject and admits the request that asked for it from it. */
  private openCredit(k: SubjectKeys, input: ReserveInput, tokens: number, state: QuotaState, leaseId: string, block: number, sentAt: number): Reservation {
    // QUOTA_BATCH_LUA names the block's leases so in the credit leases zset.
    const leasesMember = (input.limits.maxConcurrent ?? 0) > 0 ? `${leaseId}*${block}` : ''
    if (leasesMember !== '') this.leases.set(leasesMember, k.creditLeases)
    const credit = new AdmissionCredit(input.limits, block, block * tokens, state, sentAt, leaseId, leasesMember)
    if (k.credit !== null) this.returnCredit(k, k.credit)
    k.credit = credit
    credit.timer = setTimeout(() => this.returnCredit(k, credit), CREDIT_LIFETIME_MS)
    credit.timer.unref()
    return this.drawFrom(credit, input, tokens, performance.now())
  }

  private drawFrom(credit: AdmissionCredit, input: ReserveInput, tokens: number, at: number): Reservation {
    const leaseId = (input.limits.maxConcurrent ?? 0) > 0 ? credit.takeLease() : undefined
    credit.usedRequests++
    credit.usedTokens += tokens
    return {
      requestId: input.requestId,
      subject: input.subject,
      limits: input.limits,
      reservedTokens: tokens,
      headers: rateLimitHeaders(input.limits, credit.stateNow(at)),
      minuteWindow: credit.minuteWindow,
      dayWindow: credit.dayWindow,
      leaseId,
      credit,
    }
  }

  /** Gives back what `credit` did not use (its spare leases too); requests still in flight from it settle as usual. */
  private returnCredit(k: SubjectKeys, credit: AdmissionCredit): void {
    if (credit.returned) return
    credit.returned = true
    if (credit.timer) clearTimeout(credit.timer)
    if (k.credit === credit) k.credit = null
    k.block = nextBlock(k.block, credit)
    const args = credit.takeReturn()
    // The leases still held become members of their own, renewed until their requests settle.
    if (args.leasesMember !== '') this.leases.delete(args.leasesMember)
    for (const id of args.heldLeases) this.leases.set(id, k.leases)
    this.settler.returnCredit(k, args, { subject: k.subject, creditRequestsUnused: args.unusedRequests, creditTokensUnused: args.unusedTokens })
  }

  /** Never rejects: a settlement the store refused after every retry is logged at error. */
  async settle(resv: Reservation, usage: UsageReport): Promise<void> {
    const prompt = tokenCount(usage.promptTokens)
    const completion = tokenCount(usage.completionTokens)
    const delta = prompt + completion - resv.reservedTokens
    const k = this.keysFor(resv.subject)
    let call: SettleCall | null = null
    const credit = resv.credit
    if (credit !== undefined && !credit.returned) {
      // Still held: the correction and the lease stay in the credit, and go back with it.
      credit.usedTokens += delta
      if (resv.leaseId !== undefined) credit.putLease(resv.leaseId)
    } else {
      if (resv.leaseId !== undefined) this.leases.delete(resv.leaseId)
      if (resv.minuteWindow !== undefined && (delta !== 0 || resv.leaseId !== undefined)) {
        call = { keys: k, args: [resv.minuteWindow, resv.dayWindow ?? -1, delta, resv.leaseId ?? ''] }
      }
    }
    const [usageKey, day] = this.usageKeyOfToday()
    const fields = this.usageFieldsFor(k, resv.subject, usage.model)
    await this.settler.add(call, usageKey, day, { fields, prompt, completion }, {
      requestId: resv.requestId,
      subject: resv.subject,
      model: usage.model,
      promptTokens: prompt,
      completionTokens: completion,
      reservedTokens: resv.reservedTokens,
    })
  }

  /** Today's usage hash key and UTC day, worked out once a day. */
  private usageKeyOfToday(): readonly [key: string, day: string] {
    const dayId = Math.floor(Date.now() / DAY_MS)
    if (dayId !== this.usageDayId) {
      const day = utcDay(dayId)
      this.usageDay = [`${this.prefix}u:${day}`, day]
      this.usageDayId = dayId
    }
    return this.usageDay
  }

  async peekHeaders(subject: string, limits: Limits): Promise<Record<string, string>> {
    if (!hasQuota(limits)) return {}
    if (!this.isReady()) throw storeUnavailable()
    const k = this.keysFor(subject)
    try {
      const state = await this.client.ghQuotaPeek(k.windows, k.leases, k.creditLeases, limits.maxConcurrent ? 1 : 0)
      return rateLimitHeaders(limits, state)
    } catch {
      throw storeUnavailable()
    }
  }

  async queryUsage(filter: UsageFilter): Promise<UsageRow[]> {
    if (!this.isReady()) throw storeUnavailable()
    // This replica's own requests are in the report, however recent.
    await this.settler.flush()
    try {
      const days = (await this.client.smembers(this.daysKey)).filter((d) => dayInRange(d, filter)).sort()
      if (days.length === 0) return []
      const p = this.client.pipeline()
      for (const day of days) p.hgetall(`${this.prefix}u:${day}`)
      const results = (await p.exec()) ?? []
      const rows: UsageRow[] = []
      results.forEach(([err, hash], i) => {
        if (err) throw err
        rows.push(...rowsFromHash(days[i], hash as Record<string, string>, filter))
      })
      return sortUsage(rows)
    } catch {
      throw storeUnavailable()
    }
  }

  isReady(): boolean {
    return !this.closed && this.client.status === 'ready' && this.wire.isReady()
  }

  /** Sends what is still gathered and stops renewing leases; the Redis client belongs to the caller and stays open. */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.renewTimer)
    for (const k of this.keys.values()) if (k.credit !== null) this.returnCredit(k, k.credit)
    await this.settler.flush()
    await this.wire.close()
  }

  private keysFor(subject: string): SubjectKeys {
    let k = this.keys.get(subject)
    if (k === undefined) {
      if (this.keys.size >= MAX_CACHED_SUBJECTS) this.keys.clear()
      // The braces make the subject the hash tag: one cluster slot for all its keys.
      const base = `${this.prefix}q:{${subject}}:`
      k = { subject, windows: `${base}w`, leases: `${base}c`, creditLeases: `${base}b`, usage: new Map(), lastReserveAt: -Infinity, block: FIRST_BLOCK, credit: null, asking: null, askGranted: true }
      this.keys.set(subject, k)
    }
    return k
  }

  private usageFieldsFor(k: SubjectKeys, subject: string, model: string): UsageFields {
    let f = k.usage.get(model)
    if (f === undefined) {
      if (k.usage.size >= MAX_CACHED_MODELS) k.usage.clear()
      f = usageFields(subject, model)
      k.usage.set(model, f)
    }
    return f
  }

  private async renewLeases(): Promise<void> {
    if (this.leases.size === 0 || this.client.status !== 'ready') return
    const p = quotaPipeline(this.client)
    for (const [leaseId, key] of this.leases) p.ghQuotaRenew(key, leaseId, this.leaseTtlMs)
    try {
      const results = (await p.exec()) ?? []
      const failed = results.filter(([err]) => err !== null).length
      if (failed > 0) this.log.warn('quota lease renewal failed', { failed })
    } catch (err) {
      this.log.warn('quota lease renewal failed', { error: err instanceof Error ? err.message : String(err) })
    }
  }
}

function noop(): void {}

/** A reservation no window could ever hold: waiting for credit to come back cannot help it. */
function aloneTooBig(limits: Limits, tokens: number): boolean {
  return tokens > (limits.tokensPerMinute ?? Infinity) || tokens > (limits.tokensPerDay ?? Infinity)
}
