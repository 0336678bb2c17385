import type { Redis } from 'ioredis'
import type { Logger } from '../log/index.js'
import type { RespConnection } from '../store/resp-connection.js'
import { RespError } from '../store/resp-parser.js'
import { quotaPipeline, type Arg, type QuotaPipeline, type QuotaCommands } from './redis-commands.js'
import { returnOp, type QuotaScriptBatcher, type ReturnArgs, type SettleArgs, type SubjectQuotaKeys } from './script-batch.js'
import type { UsageFields } from './usage.js'

/** One command of a settlement, added to whichever pipeline carries it. */
export type SettleOp = (p: QuotaPipeline) => void

/** A usage counter command, as sent on the quota connection: ['HINCRBY', key, field, n]. */
type CounterCommand = readonly (string | number)[]

/** One attempt at a lane's commands: those that failed, and why the last one did. */
interface Attempt<T> {
  failed: T[]
  error: string
}

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
 * gather for up to `usageFlushMs` and go out summed per field, on the quota connection: at
 * a few thousand requests a second a few commands for hundreds of requests instead of four
 * commands each. A settle
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
    /**
     * The limiter's own connection, for the usage counters: ioredis built a pipeline object
     * per flush and ran its command path in unoptimised code (flushes are too rare for V8 to
     * optimise them), ≈1 µs per request at c=16; here they join the quota scripts' write.
     */
    private readonly wire: RespConnection,
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
      if (!ok) {
        const alone: SettleOp = (p) => p.ghQuotaBatch(keys.windows, keys.leases, keys.creditLeases, this.leaseTtlMs, ...op)
        return this.retrying([alone], [request], (ops) => this.pipelined(ops))
      }
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
    const commands: CounterCommand[] = []
    for (const [key, fields] of b.usage) for (const [field, by] of fields) commands.push(['HINCRBY', key, field, by])
    for (const day of b.days) commands.push(['SADD', this.daysKey, day])
    await this.retrying(commands, b.requests, (cmds) => this.onWire(cmds))
    b.done()
  }

  /** Sends `pending` until all of it is applied, retried after each of `retryDelays`; then logs who is short. */
  private async retrying<T>(pending: T[], requests: Record<string, unknown>[], attempt: (pending: T[]) => Promise<Attempt<T>>): Promise<void> {
    for (let n = 0; ; n++) {
      const { failed, error } = await attempt(pending)
      if (failed.length === 0) return
      if (n >= this.retryDelays.length) {
        // One line per request of the batch: any of them may be short.
        for (const r of requests) {
          if (this.reported.has(r)) continue
          this.reported.add(r)
          this.log.error('quota settlement failed; usage and token counters are short by this request', {
            ...r,
            error,
          })
        }
        return
      }
      await new Promise((r) => setTimeout(r, this.retryDelays[n]))
      pending = failed
    }
  }

  /** One attempt through the shared client's pipeline. */
  private async pipelined(ops: SettleOp[]): Promise<Attempt<SettleOp>> {
    if (this.client.status !== 'ready') return { failed: ops, error: 'store not ready' }
    const p = quotaPipeline(this.client)
    for (const op of ops) op(p)
    try {
      const results = await p.exec()
      if (results === null) return { failed: ops, error: 'pipeline discarded' }
      const failed: SettleOp[] = []
      let error = ''
      results.forEach(([err], i) => {
        if (err) {
          failed.push(ops[i])
          error = err.message
        }
      })
      return { failed, error }
    } catch (err) {
      return { failed: ops, error: err instanceof Error ? err.message : String(err) }
    }
  }

  /** One attempt on the quota connection: the commands join its next write. */
  private async onWire(commands: CounterCommand[]): Promise<Attempt<CounterCommand>> {
    if (!this.wire.isReady()) return { failed: commands, error: 'store not ready' }
    const replies = await Promise.allSettled(commands.map((c) => this.wire.call(c)))
    const failed: CounterCommand[] = []
    let error = ''
    replies.forEach((r, i) => {
      const problem = r.status === 'rejected' ? r.reason : r.value instanceof RespError ? r.value : null
      if (problem !== null) {
        failed.push(commands[i])
        error = problem instanceof Error ? problem.message : String(problem)
      }
    })
    return { failed, error }
  }
}
