import type { Logger } from '../log/index.js'
import { quotaPipeline, type QuotaPipeline, type QuotaCommands } from './redis-commands.js'
import type { Redis } from 'ioredis'

/** One command of a settlement, added to whichever pipeline carries it. */
export type SettleOp = (p: QuotaPipeline) => void

interface Batch {
  ops: SettleOp[]
  /** usage hash key → field → increment, summed over the batch */
  usage: Map<string, Map<string, number>>
  days: Set<string>
  /** Who is settled in this batch, for the error line if it is lost. */
  requests: Record<string, unknown>[]
  waiters: (() => void)[]
}

/**
 * Gathers the settlements of concurrent requests and sends them together on the next turn of
 * the event loop: one pipeline, usage increments summed per field. Settling never delays a
 * reply, so waiting a tick costs nothing and saves a round trip per request. Failed commands
 * are retried (only those), then logged at error: never silently lost.
 */
export class SettleBatcher {
  private batch: Batch | null = null

  constructor(
    private readonly client: Redis & QuotaCommands,
    private readonly daysKey: string,
    private readonly log: Logger,
    private readonly retryDelays: readonly number[],
  ) {}

  add(
    op: SettleOp | null,
    usageKey: string,
    day: string,
    increments: readonly (readonly [string, number])[],
    request: Record<string, unknown>,
  ): Promise<void> {
    let b = this.batch
    if (b === null) {
      b = this.batch = { ops: [], usage: new Map(), days: new Set(), requests: [], waiters: [] }
      setImmediate(() => void this.flush())
    }
    if (op) b.ops.push(op)
    let fields = b.usage.get(usageKey)
    if (fields === undefined) b.usage.set(usageKey, (fields = new Map()))
    for (const [field, by] of increments) if (by > 0) fields.set(field, (fields.get(field) ?? 0) + by)
    b.days.add(day)
    b.requests.push(request)
    return new Promise((resolve) => b.waiters.push(resolve))
  }

  private async flush(): Promise<void> {
    const b = this.batch
    this.batch = null
    if (b === null) return
    const ops = b.ops
    for (const [key, fields] of b.usage) for (const [field, by] of fields) ops.push((p) => p.hincrby(key, field, by))
    for (const day of b.days) ops.push((p) => p.sadd(this.daysKey, day))
    await this.run(ops, b.requests)
    for (const w of b.waiters) w()
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
