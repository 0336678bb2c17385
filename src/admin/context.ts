import type { Context, Env, MiddlewareHandler } from 'hono'
import type { AuditEvent } from '../audit/types.js'
import type { Authenticator, Principal } from '../auth/index.js'
import { GatehouseError, PermissionDenied } from '../errors/index.js'
import { KEY_ID_PATTERN } from '../store/index.js'

/** What the admin API hands to the audit sink: the app fills in the remaining fields. */
export type AdminAuditEvent = Partial<AuditEvent> & { action: string; target: string | null; status: number }

/** The facts of one admin request, gathered for its audit event. */
export interface AdminCall {
  action: string
  /** A key id, only once it is known to be well formed (never raw path input). */
  target: string | null
  route: string
  principal: Principal | null
}

/**
 * The routes use no context variables of their own, so they mount into any app whatever its
 * Env (the gateway's is `GatewayEnv`); per-request admin facts live in this map instead.
 */
const calls = new WeakMap<Context, AdminCall>()

/** The admin call being served on `c` (set by `requireAdmin`). */
export function adminCallOf(c: Context): AdminCall | undefined {
  return calls.get(c)
}

/** The gateway's request id, when the routes run inside the gateway app (its `state` variable). */
function requestIdOf(c: Context): string | undefined {
  const state = (c.var as unknown as { state?: { requestId?: unknown } }).state
  return typeof state?.requestId === 'string' ? state.requestId : undefined
}

/** A well-formed key id from the path, or null. */
export function keyIdParam(raw: string | undefined): string | null {
  return raw !== undefined && KEY_ID_PATTERN.test(raw) ? raw : null
}

/**
 * Writes one audit event per admin request when it ends, whatever the outcome: refused (401,
 * 403), invalid (400), missing (404) or done. The credential is never part of the event.
 */
export function auditAdminCalls<E extends Env>(audit: (event: AdminAuditEvent) => void): MiddlewareHandler<E> {
  return async (c, next) => {
    const started = performance.now()
    let thrown: unknown
    try {
      await next()
    } catch (err) {
      thrown = err
      throw err
    } finally {
      // Hono's compose hands a handler's error to onError and records it on the context.
      const err = thrown ?? c.error
      const call = calls.get(c)
      const principal = call?.principal ?? null
      const status = err instanceof GatehouseError ? err.status : err ? 500 : c.res.status
      const requestId = requestIdOf(c)
      if (requestId && !thrown) c.header('x-request-id', requestId)
      audit({
        type: 'admin',
        ...(requestId ? { requestId } : {}),
        action: call?.action ?? 'unknown',
        target: call?.target ?? null,
        route: call?.route ?? '/admin/*',
        status,
        subject: principal?.subject ?? null,
        authMethod: principal?.authMethod ?? 'none',
        keyId: principal?.keyId ?? null,
        roles: principal?.roles ?? null,
        reason: err instanceof GatehouseError ? (err.reason ?? err.code) : err ? 'internal_error' : null,
        durationMs: Math.round(performance.now() - started),
      })
    }
  }
}

/**
 * Names the action, then admits only admins: the bootstrap token or an OIDC role listed in
 * `auth.adminRoles` (401 without a valid credential, 403 with a non-admin one).
 */
export function requireAdmin<E extends Env>(authenticator: Authenticator, action: string): MiddlewareHandler<E> {
  return async (c, next) => {
    const call: AdminCall = { action, target: keyIdParam(c.req.param('id')), route: c.req.routePath, principal: null }
    calls.set(c, call)
    call.principal = await authenticator.authenticate(c.req.header('authorization'))
    if (!call.principal.isAdmin) {
      throw new PermissionDenied('the admin API needs the admin token or an admin role', { reason: 'not_admin' })
    }
    await next()
  }
}
