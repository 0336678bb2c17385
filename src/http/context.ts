import type { HttpBindings } from '@hono/node-server'
import type { Entitlements, Principal } from '../auth/types.js'
import type { Reservation } from '../quota/types.js'

/**
 * What the gateway learns about one request as it moves through the pipeline; the recorder
 * turns it into the audit line and metrics when the request ends, however it ends.
 */
export interface RequestState {
  readonly requestId: string
  readonly startedAt: number
  route: string
  principal: Principal | null
  entitlements: Entitlements | null
  model: string | null
  upstream: string | null
  replica: string | null
  /** Status sent to the client; set by whoever answered (handler, stream, onError). */
  status: number
  promptTokens: number | null
  completionTokens: number | null
  usageSource: 'upstream' | 'estimated' | null
  ttftMs: number | null
  reason: string | null
  reservation: Reservation | null
  /** Rate-limit headers for an authenticated caller (on every response, 429s included). */
  rateLimitHeaders: Readonly<Record<string, string>> | null
  /** Prompt and completion, only collected with audit.includePrompts. */
  prompt: unknown
  completion: unknown
}

export type GatewayEnv = {
  Bindings: HttpBindings
  Variables: { state: RequestState }
}

export function newRequestState(requestId: string, route: string): RequestState {
  return {
    requestId,
    startedAt: performance.now(),
    route,
    principal: null,
    entitlements: null,
    model: null,
    upstream: null,
    replica: null,
    status: 0,
    promptTokens: null,
    completionTokens: null,
    usageSource: null,
    ttftMs: null,
    reason: null,
    reservation: null,
    rateLimitHeaders: null,
    prompt: undefined,
    completion: undefined,
  }
}
