import type { Context } from 'hono'
import { GatehouseError, errorJson, internalErrorBody } from '../errors/index.js'
import { ClientGone } from '../upstream/proxy.js'
import type { Logger } from '../log/index.js'
import type { GatewayEnv } from './context.js'

/**
 * The app's one error handler: a GatehouseError becomes OpenAI's error shape with its
 * status; anything else a generic 500 whose detail goes to the log with the request id.
 */
export function createErrorHandler(log: Logger) {
  return (err: Error, c: Context<GatewayEnv>): Response => {
    const state = c.var.state
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
      if (status === 413) headers.connection = 'close'
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
    return c.body(body, status as 500, headers)
  }
}
