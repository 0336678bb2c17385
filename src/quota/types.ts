import type { Limits } from '../config/index.js'
import type { AdmissionCredit } from './credit.js'

/** What the gateway asks of the limiter before forwarding one inference request. */
export interface ReserveInput {
  requestId: string
  subject: string
  limits: Limits
  /** Prompt estimate + max_tokens (already clamped by maxTokensPerRequest). */
  reservedTokens: number
}

/** An admitted request's hold on the quotas; settle it exactly once. */
export interface Reservation {
  readonly requestId: string
  readonly subject: string
  readonly limits: Limits
  readonly reservedTokens: number
  /** `x-ratelimit-*` headers for the limits that apply (empty when none do). */
  readonly headers: Readonly<Record<string, string>>
  /**
   * The fixed windows the tokens were reserved in (UTC minute and UTC day numbers since the
   * epoch), so settlement corrects the right windows even after one has rolled over.
   * Absent when the store was not consulted (a subject without limits).
   */
  readonly minuteWindow?: number
  readonly dayWindow?: number
  /** The concurrency lease held until settlement; absent when maxConcurrent does not apply. */
  readonly leaseId?: string
  /** Redis limiter: the admission credit this request was admitted from, if any. */
  readonly credit?: AdmissionCredit
}

export interface UsageReport {
  model: string
  promptTokens: number
  completionTokens: number
}

export interface UsageFilter {
  subject?: string
  model?: string
  /** Inclusive UTC days, `YYYY-MM-DD`. */
  from?: string
  to?: string
}

export interface UsageRow {
  subject: string
  model: string
  day: string
  requests: number
  promptTokens: number
  completionTokens: number
}

/**
 * Exact per-subject quotas. `reserve` is one atomic check-and-reserve (one store round trip);
 * it throws QuotaExceeded (429, with `retry-after` and the `x-ratelimit-*` headers) or
 * ServiceUnavailable (store unreachable: fail closed). `settle` corrects the token reservation
 * to the real usage, releases the concurrency slot and records usage, in one round trip.
 */
export interface QuotaLimiter {
  reserve(input: ReserveInput): Promise<Reservation>
  settle(reservation: Reservation, usage: UsageReport): Promise<void>
  /** `x-ratelimit-*` headers for a subject without reserving (e.g. GET /v1/models). */
  peekHeaders(subject: string, limits: Limits): Promise<Record<string, string>>
  queryUsage(filter: UsageFilter): Promise<UsageRow[]>
  /** True while the store answers (drives /readyz). */
  isReady(): boolean
  close(): Promise<void>
}
