import type { Redis } from 'ioredis'
import type { Logger } from '../log/index.js'
import { quotaPipeline, type Arg, type QuotaPipeline, type QuotaCommands } from './redis-commands.js'
import { returnOp, type QuotaScriptBatcher, type ReturnArgs, type SettleArgs, type SubjectQuotaKeys } from './script-batch.js'
import type { UsageFields } from './usage.js'

/** One command of a settlement, added to whichever pipeline carries it. */
export type SettleOp = (p: QuotaPipeline) => void

interface Batch {
  /** usage hash key → field → increment, summed over the batch */
  usage: Map<string, Map<string, number>>
  days: Set<string>
  /** Who is settled in this batch, for the error line if it is lost. */
  requests: Record<string, unknown>[]
  /** Settles once the batch is written or given up (one promise for all its requests). */
  written: Promise<void>
  done: () => void
}

function newBatch(): Batch {
  let done!: () => void
  const written = new Promise<void>((resolve) => (done = resolve))
  return { usage: new Map(), days: new Set(), requests: [], written, done }
}

/** The usage hash fields of one (subject, model) pair and what one request adds to them. */
export interface UsageIncrement {
  fields: UsageFields
  prompt: number
  completion: number
}

/** How long usage counters gather before they are sent (default). */
export const USAGE_FLUSH_MS = 20

/** Lease release and token correction of one request. */
export interface SettleCall {
  keys: SubjectQuotaKeys
  args: SettleArgs
}

/**
 * Sends settlements in two lanes. The settlement proper (lease release, token correction)
 * changes what the next request may do: it joins this event-loop turn's quota script call
 * of its subject (QuotaScriptBatcher), ahead of any reserve issued after it, so Redis applies
 * it first (a client calling one request after the other never finds its previous lease
 * still held; a request to another gateway replica finds it released within one loop turn
 * plus the write). Usage counters (the report behind /admin/usage) only add up, so they
 * gather for up to `usageFlushMs` and go out summed per field: at a few thousand requests a
 * second one pipeline for hundreds of requests instead of four commands each. A settle
 * resolves once both its lanes are written. Failed commands are retried (only those), then
 * logged at error per request: never silently lost.
 */
export class SettleBatcher {
  private usage: Batch | null = null
  private usageTimer: NodeJS.Timeout | null = null
  /** Settlements not yet applied or given up (their retries included). */
  private readonly settling = new Set<Promise<void>>()
  /** Requests already logged as lost: when both lanes fail, one line per request is enough. */
  private readonly reported = new WeakSet<Record<string, unknown>>()

  constructor(
    private readonly client: Redis & QuotaCommands,
    /** Where settlements go first: the reserves' script calls, so they keep their order. */
    private readonly scripts: QuotaScriptBatcher,
    private readonly leaseTtlMs: number,
    private readonly daysKey: string,
    private readonly log: Logger,
    private readonly retryDelays: readonly number[],
    private readonly usageFlushMs = USAGE_FLUSH_MS,
  ) {}

  add(call: SettleCall | null, usageKey: string, day: string, inc: UsageIncrement, request: Record<string, unknown>): Promise<void> {
    const u = this.usageBatch()
    let fields = u.usage.get(usageKey)
    if (fields === undefined) u.usage.set(usageKey, (fields = new Map()))
    const [fRequests, fPrompt, fCompletion] = inc.fields
    fields.set(fRequests, (fields.get(fRequests) ?? 0) + 1)
    if (inc.prompt > 0) fields.set(fPrompt, (fields.get(fPrompt) ?? 0) + inc.prompt)
    if (inc.completion > 0) fields.set(fCompletion, (fields.get(fCompletion) ?? 0) + inc.completion)
    u.days.add(day)
    u.requests.push(request)
    if (call === null) return u.written

    const written = u.written
    return this.apply(call.keys, ['s', ...call.args], request).then(() => written)
  }

  /**
   * Gives an admission credit's unused part back, in this loop turn's script call of its
   * subject (ahead of the reserve that did not fit in it); retried like a settlement.
   */
  returnCredit(keys: SubjectQuotaKeys, args: ReturnArgs, request: Record<string, unknown>): void {
    void this.apply(keys, returnOp(args), request)
  }

  /**
   * `op` in this loop turn's script call of its subject; if that call fails, alone through
   * the shared client, retried and logged like the usage counters. Held in `settling` until
   * done, so `flush()` waits for it.
   */
  private apply(keys: SubjectQuotaKeys, op: Arg[], request: Record<string, unknown>): Promise<void> {
    const applied = this.scripts.apply(keys, op).then((ok) => {
      if (!ok) return this.run([(p) => p.ghQuotaBatch(keys.windows, keys.leases, keys.creditLeases, this.leaseTtlMs, ...op)], [request])
    })
    this.settling.add(applied)
    return applied.then(() => {
      this.settling.delete(applied)
    })
  }

  /** Sends everything gathered now and waits for it, retries included (before a usage report, and at shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.settling, this.flushUsage()])
  }

  private usageBatch(): Batch {
    if (this.usage === null) {
      this.usage = newBatch()
      this.usageTimer = setTimeout(() => void this.flushUsage(), this.usageFlushMs)
    }
    return this.usage
  }

  private async flushUsage(): Promise<void> {
    const b = this.usage
    this.usage = null
    if (this.usageTimer) clearTimeout(this.usageTimer)
    this.usageTimer = null
    if (b === null) return
    const ops: SettleOp[] = []
    for (const [key, fields] of b.usage) for (const [field, by] of fields) ops.push((p) => p.hincrby(key, field, by))
    for (const day of b.days) ops.push((p) => p.sadd(this.daysKey, day))
    await this.run(ops, b.requests)
    b.done()
  }

  private async run(ops: SettleOp[], requests: Record<string, unknown>[]): Promise<void> {
    let pending = ops
    let lastError = 'store not ready'
    for (let attempt = 0; ; attempt++) {
      const failed: SettleOp[] = []
      if (this.client.status !== 'ready') {
        failed.push(...pending)
      } else {
        const p = quotaPipeline(this.client)
        for (const op of pending) op(p)
        try {
          const results = await p.exec()
          if (results === null) failed.push(...pending)
          else
            results.forEach(([err], i) => {
              if (err) {
                failed.push(pending[i])
                lastError = err.message
              }
            })
        } catch (err) {
          failed.push(...pending)
          lastError = err instanceof Error ? err.message : String(err)
        }
      }
      if (failed.length === 0) return
      if (attempt >= this.retryDelays.length) {
        // One line per request of the batch: any of them may be short.
        for (const r of requests) {
          if (this.reported.has(r)) continue
          this.reported.add(r)
          this.log.error('quota settlement failed; usage and token counters are short by this request', {
            ...r,
            error: lastError,
          })
        }
        return
      }
      await new Promise((r) => setTimeout(r, this.retryDelays[attempt]))
      pending = failed
    }
  }
}
