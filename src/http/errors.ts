import type { ServerResponse } from 'node:http'
import type { Context } from 'hono'
import { GatehouseError, errorJson, internalErrorBody } from '../errors/index.js'
import { ClientGone } from '../upstream/proxy.js'
import type { Logger } from '../log/index.js'
import type { GatewayEnv, RequestState } from './context.js'
import { replyAtTurnEnd } from './turn-end.js'

/** What the client is told about an error: status, headers and body (OpenAI's shape). */
export interface ErrorReply {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * A GatehouseError becomes OpenAI's error shape with its status; anything else a generic 500
 * whose detail goes to the log with the request id. Notes status and reason on `state`.
 */
export function errorReply(err: Error, state: RequestState | undefined, log: Logger): ErrorReply {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (state) {
    headers['x-request-id'] = state.requestId
    const rl = state.rateLimitHeaders
    if (rl) for (const k in rl) headers[k] = rl[k]
  }
  let status: number
  let body: string
  if (err instanceof GatehouseError) {
    status = err.status
    body = errorJson(err)
    for (const k in err.headers) headers[k] = err.headers[k]
    if (state) state.reason = err.reason ?? err.code
    if (status >= 500) log.error('request failed', { requestId: state?.requestId, status, reason: err.reason ?? err.code })
  } else if (err instanceof ClientGone) {
    // Nobody is listening; 499 (nginx's "client closed request") is for the audit line only.
    status = 499
    body = ''
    if (state) state.reason = 'client_gone'
  } else {
    status = 500
    body = JSON.stringify(internalErrorBody())
    if (state) state.reason = 'internal_error'
    log.error('unhandled error', { requestId: state?.requestId, error: err.stack ?? String(err) })
  }
  if (state) state.status = status
  return { status, headers, body }
}

/** The Hono app's one error handler. */
export function createErrorHandler(log: Logger) {
  return (err: Error, c: Context<GatewayEnv>): Response => {
    const reply = errorReply(err, c.var.state, log)
    return c.body(reply.body, reply.status as 500, reply.headers)
  }
}

/** Writes an error to a node response (at the turn's end); one already under way is cut instead. */
export function sendErrorReply(err: unknown, state: RequestState, out: ServerResponse, log: Logger): void {
  const reply = errorReply(err instanceof Error ? err : new Error(String(err)), state, log)
  if (out.headersSent) {
    out.destroy()
    return
  }
  if (out.destroyed || reply.status === 499) return
  reply.headers['content-length'] = String(Buffer.byteLength(reply.body))
  // With the turn's other replies: a flood of refused requests costs as little as it can.
  replyAtTurnEnd(out, reply.status, reply.headers, reply.body)
}
