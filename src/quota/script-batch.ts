import { RespError, type RespValue } from '../store/resp-parser.js'
import type { RespConnection } from '../store/resp-connection.js'
import { QUOTA_BATCH_SCRIPT, type Arg } from './redis-commands.js'
import { RESERVE_REPLY_LENGTH } from './scripts.js'
import type { QuotaState } from './windows.js'

/** The keys of one subject (one cluster slot): windows hash, leases zset, credit leases zset. */
export interface SubjectQuotaKeys {
  windows: string
  leases: string
  creditLeases: string
}

/** A reserve's limits and amount, as QUOTA_BATCH_LUA reads them. */
export interface ReserveArgs {
  requestsPerMinute: number
  tokensPerMinute: number
  tokensPerDay: number
  maxConcurrent: number
  tokens: number
  leaseId: string
  /** Above 1: ask for an admission credit of this many requests first (see QUOTA_BATCH_LUA). */
  block: number
  /** How long a granted credit lives (ms). */
  creditLifetimeMs: number
}

/** A settlement: the reservation's minute and day numbers, the token correction, its lease. */
export type SettleArgs = readonly [minuteWindow: number, dayWindow: number, delta: number, leaseId: string]

/**
 * A credit return: its minute and day numbers, requests and tokens it did not use, its
 * leases' member of the credit leases zset ('' without maxConcurrent), and the leases its
 * requests still in flight hold.
 */
export interface ReturnArgs {
  minuteWindow: number
  dayWindow: number
  unusedRequests: number
  unusedTokens: number
  leasesMember: string
  heldLeases: readonly string[]
}

/** QUOTA_BATCH_LUA's 'x' operation for `a`. */
export function returnOp(a: ReturnArgs): Arg[] {
  return ['x', a.minuteWindow, a.dayWindow, a.unusedRequests, a.unusedTokens, a.leasesMember, a.heldLeases.length, ...a.heldLeases]
}

interface Waiter {
  /** A reserve gets its QuotaState; a settlement only learns that the call was applied. */
  isReserve: boolean
  resolve: (value: QuotaState | null) => void
  reject: (err: Error) => void
}

interface SubjectOps {
  keys: SubjectQuotaKeys
  argv: Arg[]
  waiters: Waiter[]
}

/** One script call carries at most this many operations (Lua's `unpack` has a stack limit). */
export const MAX_OPS_PER_CALL = 256

/**
 * Gathers the reserves and settlements issued during one event-loop turn and sends them, at
 * the quota connection's write at the end of the turn, as one QUOTA_BATCH_LUA call per
 * subject: under load from one caller (a batch job on one key) Redis reads and writes that
 * subject's state once for all of them instead of once per request. Operations keep their
 * order, so a settlement issued before a reserve of the same subject is applied first.
 * Across subjects order does not matter (their keys are disjoint).
 */
export class QuotaScriptBatcher {
  /** Windows key → what this turn gathered for that subject. */
  private gathered = new Map<string, SubjectOps>()

  constructor(
    private readonly wire: RespConnection,
    private readonly leaseTtlMs: number,
  ) {
    wire.onWrite(() => this.send())
  }

  /** Resolves with the QuotaState; rejects when the store did not answer (admit nothing). */
  reserve(keys: SubjectQuotaKeys, a: ReserveArgs): Promise<QuotaState> {
    // A reserve's waiter is always resolved with its state (see call()).
    const op = ['r', a.requestsPerMinute, a.tokensPerMinute, a.tokensPerDay, a.maxConcurrent, a.tokens, a.leaseId, a.block, a.creditLifetimeMs]
    return this.add(keys, true, op) as Promise<QuotaState>
  }

  /**
   * An operation that answers nothing (a settlement, `['s', ...SettleArgs]`, or a credit
   * return, `returnOp(...)`): resolves true once applied, false when the store did not
   * answer (the caller retries).
   */
  apply(keys: SubjectQuotaKeys, op: Arg[]): Promise<boolean> {
    return this.add(keys, false, op).then(
      () => true,
      () => false,
    )
  }

  /** A settlement (see apply). */
  settle(keys: SubjectQuotaKeys, a: SettleArgs): Promise<boolean> {
    return this.apply(keys, ['s', ...a])
  }

  private add(keys: SubjectQuotaKeys, isReserve: boolean, op: Arg[]): Promise<QuotaState | null> {
    let ops = this.gathered.get(keys.windows)
    if (ops === undefined || ops.waiters.length >= MAX_OPS_PER_CALL) {
      // A full call goes out now, before the next one of the same subject: order is kept.
      if (ops !== undefined) this.call(ops)
      ops = { keys, argv: [keys.windows, keys.leases, keys.creditLeases, this.leaseTtlMs], waiters: [] }
      this.gathered.set(keys.windows, ops)
      this.wire.scheduleWrite()
    }
    for (let i = 0; i < op.length; i++) ops.argv.push(op[i])
    return new Promise((resolve, reject) => ops.waiters.push({ isReserve, resolve, reject }))
  }

  private send(): void {
    if (this.gathered.size === 0) return
    const all = this.gathered
    this.gathered = new Map()
    for (const ops of all.values()) this.call(ops)
  }

  private call(ops: SubjectOps): void {
    this.wire.evalsha(QUOTA_BATCH_SCRIPT, 3, ops.argv).then(
      (reply) => {
        const states = reply instanceof RespError ? null : splitStates(reply, ops.waiters)
        if (states === null) {
          const err = reply instanceof RespError ? reply : new Error('unexpected quota script reply')
          for (const w of ops.waiters) w.reject(err)
          return
        }
        let s = 0
        for (const w of ops.waiters) w.resolve(w.isReserve ? states[s++] : null)
      },
      (err: Error) => {
        for (const w of ops.waiters) w.reject(err)
      },
    )
  }
}

/** The flat reply cut into one QuotaState per reserve, or null when its length does not fit. */
function splitStates(reply: RespValue, waiters: readonly Waiter[]): QuotaState[] | null {
  if (!Array.isArray(reply)) return null
  let reserves = 0
  for (const w of waiters) if (w.isReserve) reserves++
  if (reply.length !== reserves * RESERVE_REPLY_LENGTH) return null
  const states: QuotaState[] = []
  for (let i = 0; i < reply.length; i += RESERVE_REPLY_LENGTH) states.push(reply.slice(i, i + RESERVE_REPLY_LENGTH) as QuotaState)
  return states
}
