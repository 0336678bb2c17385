import type { IncomingMessage } from 'node:http'
import type { MiddlewareHandler } from 'hono'
import type { AuditEvent, AuditSink } from '../audit/types.js'
import type { Logger } from '../log/index.js'
import type { QuotaLimiter } from '../quota/types.js'
import type { GatewayEnv, RequestState } from '../http/context.js'
import type { ModelCatalog } from './models.js'
import type { Metrics } from '../metrics/index.js'
import { isoTimestamp } from '../audit/timestamp.js'
import type { OpenRequests } from '../http/open-requests.js'

/** The recorders the request path uses (from the metrics module). */
export type RequestMetrics = Pick<Metrics, 'requests' | 'duration' | 'ttft' | 'tokens' | 'rateLimited' | 'authFailure'>

export interface RecorderDeps {
  catalog: ModelCatalog
  quota: QuotaLimiter
  audit: AuditSink
  metrics: RequestMetrics
  log: Logger
  /** Every request is counted here from its start until it is recorded. */
  open: OpenRequests
}

/** The audit line for a finished /v1 request (SPEC section 5): every field, null when absent. */
export function requestAuditEvent(state: RequestState, incoming: IncomingMessage, durationMs: number): AuditEvent {
  const p = state.principal
  const ua = incoming.headers['user-agent']
  const event: AuditEvent = {
    ts: isoTimestamp(Date.now()),
    type: 'request',
    requestId: state.requestId,
    subject: p ? p.subject : null,
    authMethod: p ? p.authMethod : 'none',
    keyId: p ? p.keyId : null,
    roles: state.entitlements ? state.entitlements.roles : p ? p.roles : null,
    route: state.route,
    model: state.model,
    upstream: state.upstream,
    replica: state.replica,
    status: state.status,
    promptTokens: state.promptTokens,
    completionTokens: state.completionTokens,
    usageSource: state.usageSource,
    durationMs: Math.round(durationMs * 1000) / 1000,
    ttftMs: state.ttftMs === null ? null : Math.round(state.ttftMs * 1000) / 1000,
    clientIp: incoming.socket.remoteAddress ?? null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 256) : null,
    reason: state.reason,
  }
  if (state.prompt !== undefined) event.prompt = state.prompt
  if (state.completion !== undefined) event.completion = state.completion
  return event
}

/**
 * Wraps every /v1 request: when it ends — answered, refused, failed or abandoned — settle
 * its reservation, write its audit line and record its metrics, in this one place.
 */
export function createRecorder(deps: RecorderDeps): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    deps.open.begin()
    try {
      await next()
    } finally {
      const state = c.var.state
      if (state.status === 0) state.status = c.res.status
      try {
        finishRequest(deps, state, c.env.incoming)
      } finally {
        deps.open.end()
      }
    }
  }
}

/** Settles, audits and measures one finished /v1 request (`state.status` already set). */
export function finishRequest(deps: RecorderDeps, state: RequestState, incoming: IncomingMessage): void {
  const durationMs = performance.now() - state.startedAt
  const modelLabel = state.model !== null && deps.catalog.has(state.model) ? state.model : 'unknown'
  const role = state.entitlements ? state.entitlements.primaryRole : 'none'
  const reservation = state.reservation
  if (reservation) {
    // The limiter retries and logs on its own; a failure here must not break the reply.
    deps.quota
      .settle(reservation, {
        model: modelLabel,
        promptTokens: state.promptTokens ?? 0,
        completionTokens: state.completionTokens ?? 0,
      })
      .catch((err: unknown) => deps.log.error('quota settlement failed', { requestId: state.requestId, error: String(err) }))
  }
  deps.audit.write(requestAuditEvent(state, incoming, durationMs))
  const m = deps.metrics
  m.requests(state.route, modelLabel, role, state.status)
  m.duration(state.route, modelLabel, durationMs / 1000)
  if (state.status === 429) m.rateLimited(role, state.reason ?? 'unknown')
  if (state.ttftMs !== null) m.ttft(modelLabel, state.ttftMs / 1000)
  if (state.promptTokens !== null || state.completionTokens !== null) {
    m.tokens(modelLabel, role, state.promptTokens ?? 0, state.completionTokens ?? 0)
  }
}
