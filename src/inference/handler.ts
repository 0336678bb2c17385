import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Config } from '../config/index.js'
import type { RequestState } from '../http/context.js'
import { readBody } from '../http/body.js'
import { PermissionDenied } from '../errors/index.js'
import type { QuotaLimiter } from '../quota/types.js'
import type { Balancer } from '../upstream/types.js'
import { sendWithRetries } from '../upstream/proxy.js'
import { Cancellation } from '../upstream/exchange.js'
import type { Telemetry } from '../telemetry/index.js'
import { resolveModel, type ModelCatalog } from './models.js'
import { completionBudget, parseInferenceBody, upstreamBody } from './request-body.js'
import { clientHeaders, relayJson, relayStream } from './respond.js'
import type { InferenceRoute } from './routes.js'
import { affinityKeyFor } from './affinity.js'
import { replyAtTurnEnd } from '../http/turn-end.js'

export interface InferenceDeps {
  config: Config
  catalog: ModelCatalog
  quota: QuotaLimiter
  balancer: Balancer
  tracing: Telemetry
}

/** Answers one authenticated inference request by writing to `out`, or throws a GatehouseError. */
export type InferenceHandler = (incoming: IncomingMessage, out: ServerResponse, state: RequestState) => Promise<void>

/**
 * The inference endpoints: parse the body once, check the model, reserve quota, forward to
 * a replica and relay the reply. Settlement, audit and metrics happen in the recorder, which
 * runs however this ends.
 */
export function createInferenceHandler(deps: InferenceDeps, route: InferenceRoute): InferenceHandler {
  const includePrompts = deps.config.audit.includePrompts
  return async (incoming, out, state) => {
    const entitlements = state.entitlements
    if (!entitlements || !state.principal) throw new PermissionDenied('not authorized')
    const raw = await readBody(incoming, deps.config.maxBodyBytes)
    const body = parseInferenceBody(raw, route)
    state.model = body.model
    const target = resolveModel(deps.catalog, body.model, entitlements)
    state.upstream = target.upstream
    if (includePrompts) state.prompt = body.json[route === '/v1/chat/completions' ? 'messages' : route === '/v1/completions' ? 'prompt' : 'input']

    const cap = entitlements.limits.maxTokensPerRequest
    const reservation = await deps.quota.reserve({
      requestId: state.requestId,
      subject: state.principal.subject,
      limits: entitlements.limits,
      reservedTokens: body.promptEstimate + completionBudget(body, cap),
    })
    state.reservation = reservation
    state.rateLimitHeaders = reservation.headers

    const upstreamConfig = target.upstreamConfig
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': state.requestId }
    if (upstreamConfig.apiKey) headers.authorization = `Bearer ${upstreamConfig.apiKey}`
    const incomingTrace = incoming.headers.traceparent
    const span = deps.tracing.startRequestSpan(route, typeof incomingTrace === 'string' ? incomingTrace : null)
    if (span.traceparent) headers.traceparent = span.traceparent
    const cancellation = new Cancellation()
    const onClientGone = () => {
      if (!out.writableFinished) cancellation.cancel()
    }
    out.once('close', onClientGone)
    try {
      const call = await sendWithRetries(deps.balancer, {
        upstream: target.upstream,
        config: upstreamConfig,
        path: route,
        body: upstreamBody(body, target.upstreamModel, cap),
        headers,
        cancellation,
        affinityKey: affinityKeyFor(state.principal.subject, body),
        // Streams time their events themselves (first event, then idle gaps).
        bodyTimeout: body.stream ? 0 : upstreamConfig.timeouts.idleMs,
      })
      state.replica = call.replica.id
      span.setAttributes({ model: body.model, upstream: target.upstream, replica: call.replica.id })
      const status = call.exchange.status
      if (body.stream && status < 300) {
        await relayStream(call, out, state, target, body, upstreamConfig.timeouts)
        span.setAttributes({ status: state.status })
        return
      }
      const reply = await relayJson(call, state, target, includePrompts)
      state.status = reply.status
      span.setAttributes({ status: reply.status })
      // Written straight to the socket (building a web Response only to convert it back
      // costs more than the rest of the proxying), with the turn's other replies.
      const replyHeaders = clientHeaders(state, reply.contentType)
      const bytes = reply.body
      replyHeaders['content-length'] = String(typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length)
      replyAtTurnEnd(out, reply.status, replyHeaders, bytes)
    } finally {
      out.off('close', onClientGone)
      span.end()
    }
  }
}
