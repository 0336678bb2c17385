import type { UpstreamConfig } from '../config/index.js'
import { NoHealthyUpstream, UpstreamError, UpstreamTimeout } from '../errors/index.js'
import { Exchange, type Cancellation } from './exchange.js'
import type { Balancer, Replica } from './types.js'

/**
 * A replica's answer whose headers have arrived: read its body through `exchange`; the caller
 * must call `done` exactly once.
 */
export interface UpstreamCall {
  readonly replica: Replica
  readonly exchange: Exchange
  done(error: string | null): void
}

export interface SendRequest {
  upstream: string
  config: UpstreamConfig
  path: string
  body: string
  headers: Record<string, string>
  /** The client's departure: cancels the attempt in flight. */
  cancellation: Cancellation
  affinityKey?: string
  /** Longest silence while reading the body; 0 turns the client's own timer off. */
  bodyTimeout: number
}

/** The client went away before the replica answered; nothing is sent to anyone. */
export class ClientGone extends Error {
  readonly code = 'client_gone'
}

const CLIENT_GONE = new ClientGone('client went away')
const RETRIED = new Error('answered 502/503: sent to another replica')

// Errors where the request never reached a replica's application: safe to send elsewhere.
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED',
])

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } }
  if (typeof e?.code === 'string') return e.code
  if (typeof e?.cause?.code === 'string') return e.cause.code
  return 'unknown'
}

/**
 * Sends one request to a replica of `upstream`, retrying on another replica only when
 * nothing reached the client yet and the failure was a connection error or a 502/503.
 * Throws NoHealthyUpstream (503), UpstreamTimeout (504), UpstreamError (502) or ClientGone.
 */
export async function sendWithRetries(balancer: Balancer, req: SendRequest): Promise<UpstreamCall> {
  const tried = new Set<Replica>()
  const { timeouts, maxRetries } = req.config
  let lastError: UpstreamError | null = null
  for (let attempt = 0; attempt <= maxRetries; attempt++) {
    if (req.cancellation.cancelled) throw new ClientGone('client went away')
    const replica = balancer.pick(req.upstream, tried, req.affinityKey)
    if (replica === null) break
    tried.add(replica)
    balancer.begin(replica)
    const startedAt = performance.now()
    const exchange = new Exchange()
    req.cancellation.onCancel(() => exchange.abort(CLIENT_GONE))
    replica.client.dispatch(
      { path: req.path, headers: req.headers, body: req.body, headersTimeout: timeouts.firstByteMs, bodyTimeout: req.bodyTimeout },
      exchange,
    )
    try {
      await exchange.started
    } catch (err) {
      const code = req.cancellation.cancelled ? 'client_gone' : errorCode(err)
      balancer.end(replica, { status: null, error: code, durationMs: performance.now() - startedAt })
      if (req.cancellation.cancelled) throw new ClientGone('client went away')
      if (code === 'UND_ERR_HEADERS_TIMEOUT') {
        throw new UpstreamTimeout(`the replica did not answer within ${timeouts.firstByteMs} ms`, { reason: 'first_byte_timeout' })
      }
      lastError = new UpstreamError('the replica could not be reached', { reason: `connect:${code}` })
      if (CONNECTION_ERRORS.has(code)) continue
      throw lastError
    }
    const status = exchange.status
    if ((status === 502 || status === 503) && attempt < maxRetries) {
      exchange.abort(RETRIED)
      balancer.end(replica, { status, error: null, durationMs: performance.now() - startedAt })
      lastError = new UpstreamError(`the replica answered ${status}`, { reason: `status_${status}` })
      continue
    }
    let ended = false
    return {
      replica,
      exchange,
      done: (error) => {
        if (ended) return
        ended = true
        balancer.end(replica, { status, error, durationMs: performance.now() - startedAt })
      },
    }
  }
  if (lastError) throw lastError
  throw new NoHealthyUpstream(`no healthy replica for this model right now`, {
    reason: 'no_healthy_upstream',
    headers: { 'retry-after': '5' },
  })
}
