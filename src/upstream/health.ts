import type { RequestOutcome } from './types.js'

/** When replicas are ejected and re-admitted; every duration in milliseconds. */
export interface HealthPolicy {
  /** Active check period while a replica is healthy. */
  checkIntervalMs: number
  /** First re-check after an ejection; doubles on every failed re-check... */
  backoffBaseMs: number
  /** ...up to this. */
  backoffMaxMs: number
  /** Consecutive 5xx / timeouts / dropped streams that eject a replica. */
  maxFailures: number
  /** Consecutive failed active checks (timeout, bad status) that eject a confirmed replica. */
  maxCheckFailures: number
  /** Ejected again this soon after a re-admission: the backoff resumes where it was (flapping). */
  flapWindowMs: number
}

export const DEFAULT_HEALTH_POLICY: Readonly<HealthPolicy> = Object.freeze({
  checkIntervalMs: 2000,
  backoffBaseMs: 1000,
  backoffMaxMs: 10000,
  maxFailures: 3,
  maxCheckFailures: 2,
  flapWindowMs: 30000,
})

// The request never got a working connection to the replica: one is enough to eject it,
// since every following request would fail the same way until it is back.
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED',
])

// The caller gave up, not the replica: says nothing about its health.
const CALLER_ERRORS: ReadonlySet<string> = new Set(['client_gone', 'UND_ERR_ABORTED', 'AbortError', 'ABORT_ERR'])

/** True for error codes meaning the replica could not be reached at all. */
export function isConnectionError(code: string): boolean {
  return CONNECTION_ERRORS.has(code)
}

/** What an active check saw: an answer (with its status) or an error code. */
export type CheckResult = { status: number; error: null } | { status: null; error: string }

export type HealthChange = 'ejected' | 'admitted' | null

/**
 * One replica's health as a small state machine, driven by request outcomes (passive) and
 * active checks. `now` is a monotonic clock in ms (performance.now()), passed in so the rules
 * can be tested without waiting. A replica starts healthy and unconfirmed: the first request
 * may go to it before any check has answered, but a failing first check ejects it at once.
 */
export class HealthTracker {
  healthy = true
  /** At least one active check has answered well. */
  confirmed = false
  /** Consecutive passive failures (5xx, timeouts, dropped streams). */
  failures = 0
  checkFailures = 0
  /** Index into the backoff sequence for the next re-check while ejected. */
  backoffStep = 0
  admittedAt = -Infinity
  /** When the next active check is due; 0: at once. */
  nextCheckAt = 0
  lastError: string | null = null
  /** Wall-clock ms of lastError, for people reading /admin/upstreams. */
  lastErrorAt: number | null = null

  constructor(private readonly policy: Readonly<HealthPolicy> = DEFAULT_HEALTH_POLICY) {}

  /** A request ended (RequestOutcome from the proxy). Returns 'ejected' when it just tipped. */
  onOutcome(outcome: RequestOutcome, now: number): HealthChange {
    const { error, status } = outcome
    if (error !== null) {
      if (CALLER_ERRORS.has(error)) return null
      this.noteError(error)
      if (CONNECTION_ERRORS.has(error)) return this.eject(now)
      return ++this.failures >= this.policy.maxFailures ? this.eject(now) : null
    }
    if (status !== null && status >= 500) {
      this.noteError(`status_${status}`)
      return ++this.failures >= this.policy.maxFailures ? this.eject(now) : null
    }
    // A 4xx is the client's problem; the replica answered, so it counts as alive.
    this.failures = 0
    return null
  }

  /**
   * An active check finished. For vllm and ollama only 2xx is an answer; `anyBelow500` (kind
   * openai) accepts any status below 500, since such a server may have no /health at all.
   */
  onCheck(result: CheckResult, now: number, anyBelow500 = false): HealthChange {
    const status = result.status
    const ok = status !== null && (anyBelow500 ? status < 500 : status >= 200 && status < 300)
    if (ok) {
      this.checkFailures = 0
      this.confirmed = true
      this.nextCheckAt = now + this.policy.checkIntervalMs
      if (this.healthy) return null
      this.healthy = true
      this.failures = 0
      this.admittedAt = now
      return 'admitted'
    }
    this.noteError(result.error === null ? `health:status_${status}` : `health:${result.error}`)
    if (!this.healthy) {
      this.backoffStep++
      this.nextCheckAt = now + this.backoffDelay()
      return null
    }
    this.checkFailures++
    // A slow or erroring check on a replica that has answered before gets one more chance
    // (a busy engine can be late once); refused connections and first checks do not.
    if (result.error !== null && CONNECTION_ERRORS.has(result.error)) return this.eject(now)
    if (!this.confirmed || this.checkFailures >= this.policy.maxCheckFailures) return this.eject(now)
    this.nextCheckAt = now + this.policy.backoffBaseMs
    return null
  }

  /** The wait before the next re-check while ejected: base · 2^step, capped. */
  backoffDelay(): number {
    const { backoffBaseMs, backoffMaxMs } = this.policy
    return Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(this.backoffStep, 30))
  }

  private eject(now: number): HealthChange {
    if (!this.healthy) return null
    this.healthy = false
    this.failures = 0
    this.checkFailures = 0
    // Flapping (ejected again soon after coming back) continues the backoff instead of
    // restarting it, so a replica that fails under load is not hammered every second.
    const flapping = now - this.admittedAt < this.policy.flapWindowMs
    this.backoffStep = flapping ? this.backoffStep + 1 : 0
    this.nextCheckAt = now + this.backoffDelay()
    return 'ejected'
  }

  private noteError(error: string): void {
    this.lastError = error
    this.lastErrorAt = Date.now()
  }
}
