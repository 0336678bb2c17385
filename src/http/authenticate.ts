import type { MiddlewareHandler } from 'hono'
import type { Authenticator, Entitlements, Principal } from '../auth/types.js'
import { GatehouseError } from '../errors/index.js'
import type { GatewayEnv, RequestState } from './context.js'

export interface AuthenticationDeps {
  authenticator: Authenticator
  resolveEntitlements: (principal: Principal) => Entitlements
  onAuthFailure: (reason: string) => void
}

/**
 * Establishes who is calling (401 when the credential is missing or bad) and what they may
 * do (403 without a configured role). Sets `state.principal` and `state.entitlements`.
 */
export function createAuthentication(deps: AuthenticationDeps): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    await authenticateRequest(deps, c.var.state, c.env.incoming.headers.authorization)
    await next()
  }
}

/** The step itself, for the inference routes served without Hono (see inference/pipeline.ts). */
export async function authenticateRequest(deps: AuthenticationDeps, state: RequestState, authorization: string | undefined): Promise<void> {
  try {
    const principal = await deps.authenticator.authenticate(authorization)
    state.principal = principal
    state.entitlements = deps.resolveEntitlements(principal)
  } catch (err) {
    if (err instanceof GatehouseError && (err.status === 401 || err.status === 403)) {
      deps.onAuthFailure(err.reason ?? err.code)
    }
    throw err
  }
}
