import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Limits } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { NO_HEADERS, hasQuota, quotaExceeded, rateLimitHeaders, storeUnavailable } from './headers.js'
import { RespConnection, endpointOf } from '../store/resp-connection.js'
import { QUOTA_BATCH_SCRIPT, defineQuotaCommands, quotaPipeline, type QuotaCommands } from './redis-commands.js'
import { QuotaScriptBatcher } from './script-batch.js'
import { SettleBatcher, type SettleCall } from './settle-batch.js'
import type { QuotaLimiter, Reservation, ReserveInput, UsageFilter, UsageReport, UsageRow } from './types.js'
import { dayInRange, rowsFromHash, sortUsage, usageFields, type UsageFields } from './usage.js'
import { DAY_MS, MINUTE_MS, S_FLAGS, S_NOW, tokenCount, utcDay, type QuotaState } from './windows.js'

export interface RedisQuotaOptions {
  /** How long a lease outlives its last renewal (default 30 s); renewed every third of it. */
  leaseTtlMs?: number
  /** Waits between settlement attempts after a store error (default 0.2, 0.5, 1, 2 s). */
  settleRetryDelaysMs?: readonly number[]
}

interface SubjectKeys {
  windows: string
  leases: string
  usage: Map<string, UsageFields>
}


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
  /** In-flight leases of this process: lease id → lease zset key. */
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
    this.settler = new SettleBatcher(this.client, this.scripts, this.leaseTtlMs, this.daysKey, log, this.retryDelays)
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
    const leaseId = maxc > 0 ? this.leasePrefix + (++this.leaseSeq).toString(36) : ''
    let state: QuotaState
    try {
      // Joins this loop turn's script call of the subject, behind its settlements.
      state = await this.scripts.reserve(k, {
        requestsPerMinute: limits.requestsPerMinute ?? 0,
        tokensPerMinute: limits.tokensPerMinute ?? 0,
        tokensPerDay: limits.tokensPerDay ?? 0,
        maxConcurrent: maxc,
        tokens,
        leaseId,
      })
    } catch {
      // No answer, or an error reply (out of memory, a read-only replica): admit nothing.
      throw storeUnavailable()
    }
    if (state[S_FLAGS] !== 0) throw quotaExceeded(limits, state[S_FLAGS], state, tokens)
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

  /** Never rejects: a settlement the store refused after every retry is logged at error. */
  async settle(resv: Reservation, usage: UsageReport): Promise<void> {
    if (resv.leaseId !== undefined) this.leases.delete(resv.leaseId)
    const prompt = tokenCount(usage.promptTokens)
    const completion = tokenCount(usage.completionTokens)
    const delta = prompt + completion - resv.reservedTokens
    const k = this.keysFor(resv.subject)
    let call: SettleCall | null = null
    if (resv.minuteWindow !== undefined && (delta !== 0 || resv.leaseId !== undefined)) {
      call = { keys: k, args: [resv.minuteWindow, resv.dayWindow ?? -1, delta, resv.leaseId ?? ''] }
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
      const state = await this.client.ghQuotaPeek(k.windows, k.leases, limits.maxConcurrent ? 1 : 0)
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
    await this.settler.flush()
    await this.wire.close()
  }

  private keysFor(subject: string): SubjectKeys {
    let k = this.keys.get(subject)
    if (k === undefined) {
      if (this.keys.size >= MAX_CACHED_SUBJECTS) this.keys.clear()
      // The braces make the subject the hash tag: one cluster slot for all its keys.
      const base = `${this.prefix}q:{${subject}}:`
      k = { windows: `${base}w`, leases: `${base}c`, usage: new Map() }
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
