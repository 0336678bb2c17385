import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { CounterFamily, HistogramFamily, type Family } from './series.js'
import type { ReplicaStatus } from '../upstream/types.js'

/** Seconds, from a quick refusal to a long generation: 5 ms … 5 min. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300,
]
/** Time to first token: queueing plus prefill, 10 ms … 2 min. */
export const TTFT_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120]

/** Label values that stand in for anything outside the configured sets. */
export const UNKNOWN_MODEL = 'unknown'
export const NO_ROLE = 'none'
export const OTHER_ROUTE = 'other'

export interface MetricsOptions {
  /** Read at scrape time for the gatehouse_upstream_* gauges (the balancer's snapshot). */
  snapshotUpstreams?: () => readonly ReplicaStatus[]
  /** Configured public model names: any other model is recorded as model="unknown". */
  models?: Iterable<string>
  /** Configured role names: any other role is recorded as role="none". */
  roles?: Iterable<string>
  /** Known routes: any other route is recorded as route="other". */
  routes?: Iterable<string>
  /** Node's default process metrics (default true). */
  defaultMetrics?: boolean
}

/** The gateway's recorders over its own registry (never prom-client's global one). */
export interface Metrics {
  readonly registry: Registry
  readonly contentType: string
  requests(route: string, model: string, role: string, status: number): void
  duration(route: string, model: string, seconds: number): void
  ttft(model: string, seconds: number): void
  tokens(model: string, role: string, prompt: number, completion: number): void
  rateLimited(role: string, limit: string): void
  authFailure(reason: string): void
  auditWriteError(events?: number): void
  auditDropped(events?: number): void
  /** The Prometheus text exposition of the registry. */
  render(): Promise<string>
}

/**
 * Creates the registry and its metrics. The per-request ones are series.ts families (a
 * series found by its joined label values, then an addition); every label value is folded
 * into a bounded set first (configured models, roles and routes, or unknown/none/other), so
 * their series stay bounded.
 */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const models = opts.models ? new Set(opts.models) : null
  const roles = opts.roles ? new Set(opts.roles) : null
  const routes = opts.routes ? new Set(opts.routes) : null
  const model = (m: string): string => (models && !models.has(m) ? UNKNOWN_MODEL : m)
  const role = (r: string): string => (roles && !roles.has(r) ? NO_ROLE : r)
  const route = (r: string): string => (routes && !routes.has(r) ? OTHER_ROUTE : r)

  // The per-request families (series.ts): recording is a map lookup and an addition.
  const requestsTotal = new CounterFamily('gatehouse_requests_total', 'Requests answered, by route, public model, role and HTTP status', [
    'route',
    'model',
    'role',
    'status',
  ])
  const durationSeconds = new HistogramFamily(
    'gatehouse_request_duration_seconds',
    'Time from receiving a request to its last byte, in seconds',
    ['route', 'model'],
    LATENCY_BUCKETS,
  )
  const ttftSeconds = new HistogramFamily(
    'gatehouse_time_to_first_token_seconds',
    'Time from receiving a request to the first token sent to the client, in seconds',
    ['model'],
    TTFT_BUCKETS,
  )
  const tokensTotal = new CounterFamily(
    'gatehouse_tokens_total',
    'Tokens counted from replica usage, by public model, role and type (prompt or completion)',
    ['model', 'role', 'type'],
  )
  const rateLimitedTotal = new CounterFamily('gatehouse_rate_limited_total', 'Requests refused with 429, by role and the limit that was exhausted', [
    'role',
    'limit',
  ])
  const authFailuresTotal = new CounterFamily(
    'gatehouse_auth_failures_total',
    'Requests refused for a missing, unknown, expired, revoked or badly signed credential, by reason',
    ['reason'],
  )
  const families: Family[] = [requestsTotal, durationSeconds, ttftSeconds, tokensTotal, rateLimitedTotal, authFailuresTotal]
  const auditWriteErrors = new Counter({
    name: 'gatehouse_audit_write_errors_total',
    help: 'Audit events that met a write error (each counted once, retried until written or dropped)',
    registers,
  })
  const auditDropped = new Counter({
    name: 'gatehouse_audit_events_dropped_total',
    help: 'Audit events lost for good (queue full during an outage, or unwritten at shutdown)',
    registers,
  })
  registerUpstreamGauges(registers, opts.snapshotUpstreams)

  return {
    registry,
    contentType: registry.contentType,
    requests(rt, m, r, status) {
      requestsTotal.get([route(rt), model(m), role(r), String(status)]).inc()
    },
    duration(rt, m, seconds) {
      durationSeconds.get([route(rt), model(m)]).observe(seconds)
    },
    ttft(m, seconds) {
      ttftSeconds.get([model(m)]).observe(seconds)
    },
    tokens(m, r, prompt, completion) {
      const a = model(m)
      const b = role(r)
      tokensTotal.get([a, b, 'prompt']).inc(nonNegative(prompt))
      tokensTotal.get([a, b, 'completion']).inc(nonNegative(completion))
    },
    rateLimited(r, limit) {
      rateLimitedTotal.get([role(r), limit]).inc()
    },
    authFailure(reason) {
      authFailuresTotal.get([reason]).inc()
    },
    auditWriteError(events = 1) {
      auditWriteErrors.inc(nonNegative(events))
    },
    auditDropped(events = 1) {
      auditDropped.inc(nonNegative(events))
    },
    async render() {
      let text = await registry.metrics()
      for (const f of families) text += `\n${f.render()}`
      return text
    },
  }
}

function nonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0
}

type UpstreamLabel = 'upstream' | 'replica'

/** Gauges filled from the balancer's snapshot at scrape time, so they cost nothing per request. */
function registerUpstreamGauges(registers: Registry[], snapshot: (() => readonly ReplicaStatus[]) | undefined): void {
  const gauge = (name: string, help: string, pick: (s: ReplicaStatus) => number | null): void => {
    new Gauge<UpstreamLabel>({
      name,
      help,
      labelNames: ['upstream', 'replica'],
      registers,
      collect() {
        this.reset()
        if (!snapshot) return
        let statuses: readonly ReplicaStatus[]
        try {
          statuses = snapshot()
        } catch {
          return
        }
        for (const s of statuses) {
          const value = pick(s)
          if (value !== null) this.labels(s.upstream, s.replica).set(value)
        }
      },
    })
  }
  gauge('gatehouse_upstream_in_flight', 'Requests in flight from this gateway to each replica', (s) => s.inFlight)
  gauge('gatehouse_upstream_healthy', '1 when the replica passes its health check, else 0', (s) => (s.healthy ? 1 : 0))
  gauge('gatehouse_upstream_queue_waiting', 'Requests waiting in the replica (vLLM num_requests_waiting)', (s) => s.waiting)
  gauge('gatehouse_upstream_queue_running', 'Requests running in the replica (vLLM num_requests_running)', (s) => s.running)
}
