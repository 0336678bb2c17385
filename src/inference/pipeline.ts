import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log/index.js'
import { newRequestState, type RequestState } from '../http/context.js'
import { requestIdFrom } from '../http/request-id.js'
import { authenticateRequest, type AuthenticationDeps } from '../http/authenticate.js'
import { sendErrorReply } from '../http/errors.js'
import { atTurnEnd } from '../http/turn-end.js'
import { finishRequest, type RecorderDeps } from './recorder.js'
import type { InferenceHandler } from './handler.js'
import type { InferenceRoute } from './routes.js'

export interface PipelineDeps {
  recorder: RecorderDeps
  authentication: AuthenticationDeps
  /** Throws while requests must be refused (the audit trail failing closed). */
  admit: () => void
  log: Logger
}

/** Takes a request and returns true, or returns false to leave it to the Hono app. */
export type FastPath = (incoming: IncomingMessage, out: ServerResponse) => boolean

/**
 * The inference POSTs served straight from node:http: the steps the Hono middlewares take for
 * the other /v1 routes (record, admit, authenticate, handle), in the same order and with the
 * same code, without a web Request and a Context per call, which cost more than the rest of
 * the gateway's own work. Only exact paths are taken; anything else (a query string, another
 * method) goes through the app, where the same handlers are mounted.
 */
export function createInferencePipeline(deps: PipelineDeps, handlers: ReadonlyMap<string, InferenceHandler>): FastPath {
  return (incoming, out) => {
    if (incoming.method !== 'POST') return false
    const path = incoming.url ?? ''
    const handler = handlers.get(path)
    if (handler === undefined) return false
    void serveInference(deps, handler, path as InferenceRoute, incoming, out)
    return true
  }
}

async function serveInference(
  deps: PipelineDeps,
  handler: InferenceHandler,
  route: InferenceRoute,
  incoming: IncomingMessage,
  out: ServerResponse,
): Promise<void> {
  const state = newRequestState(requestIdFrom(incoming.headers['x-request-id'] as string | undefined), route)
  deps.recorder.open.begin()
  try {
    deps.admit()
    await authenticateRequest(deps.authentication, state, incoming.headers.authorization)
    await handler(incoming, out, state)
  } catch (err) {
    sendErrorReply(err, state, out, deps.log)
  } finally {
    // A whole reply (or an error) waits in the turn-end queue: the bookkeeping goes after it,
    // in the same batch, so the client reads its reply while the gateway settles, audits and
    // measures, and all of it is done before the next socket is read. A stream was ended by
    // the relay already: its bookkeeping runs now.
    if (out.writableEnded) recordFinished(deps, state, incoming, out)
    else atTurnEnd(() => recordFinished(deps, state, incoming, out))
  }
}

function recordFinished(deps: PipelineDeps, state: RequestState, incoming: IncomingMessage, out: ServerResponse): void {
  if (state.status === 0) state.status = out.statusCode
  try {
    finishRequest(deps.recorder, state, incoming)
  } catch (err) {
    deps.log.error('recording a finished request failed', { requestId: state.requestId, error: String(err) })
  }
  deps.recorder.open.end()
}
