import { Hono, type Context, type Env } from 'hono'
import type { Config } from '../config/index.js'
import { newApiKey, type Authenticator } from '../auth/index.js'
import { InvalidRequest, NotFound, ServiceUnavailable } from '../errors/index.js'
import type { UsageFilter, UsageRow } from '../quota/types.js'
import type { ApiKeyRecord, KeyStore } from '../store/index.js'
import type { ReplicaStatus } from '../upstream/types.js'
import { adminCallOf, auditAdminCalls, keyIdParam, requireAdmin, type AdminAuditEvent } from './context.js'
import { checkKeyAgainstConfig, createKeyBody, parseIsoDate, parseOrThrow, parseUsageQuery } from './validation.js'

export interface AdminDeps {
  config: Config
  authenticator: Authenticator
  keyStore: KeyStore
  /** Receives one event per admin request (refusals included); never sees a credential. */
  audit: (event: AdminAuditEvent) => void
  usage?: (filter: UsageFilter) => Promise<UsageRow[]>
  upstreams?: () => ReplicaStatus[]
}

/** A key as the admin API shows it: everything but the secret and its hash. */
export function keyView(record: ApiKeyRecord) {
  return {
    object: 'api_key' as const,
    id: record.id,
    name: record.name,
    subject: record.subject,
    roles: record.roles,
    models: record.models,
    limits: record.limits,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    lastUsedAt: record.lastUsedAt,
  }
}

function keyId(c: Context): string {
  // Ids are `key_` + base64url: anything else (dots, slashes, encoded tricks) does not exist.
  const id = keyIdParam(c.req.param('id'))
  if (!id) throw new NotFound('no API key with that id', { reason: 'not_found' })
  return id
}

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json()
  } catch {
    throw new InvalidRequest('the body must be a JSON object', { reason: 'invalid_json' })
  }
}

/**
 * The admin API (SPEC section 4), to be mounted with `app.route('/admin', ...)`. Errors are
 * thrown and shaped by the app's onError; body size limits are the app's as well. `E` is the
 * mounting app's Env (e.g. `createAdminRoutes<GatewayEnv>(deps)`); the routes need nothing of it.
 */
export function createAdminRoutes<E extends Env = Env>(deps: AdminDeps): Hono<E> {
  const { config, keyStore } = deps
  const admin = new Hono<E>()
  const guard = (action: string) => requireAdmin<E>(deps.authenticator, action)
  const notFound = () => new NotFound('no API key with that id', { reason: 'not_found' })

  admin.use('*', auditAdminCalls<E>(deps.audit))

  admin.post('/keys', guard('keys.create'), async (c) => {
    const body = parseOrThrow(createKeyBody, await jsonBody(c), 'field')
    checkKeyAgainstConfig(config, body, new Date())
    const { key, hash } = newApiKey()
    const record = await keyStore.create({
      name: body.name,
      subject: body.subject ?? null,
      roles: [...new Set(body.roles)],
      models: body.models ?? null,
      limits: body.limits && Object.keys(body.limits).length > 0 ? body.limits : null,
      expiresAt: body.expiresAt ? parseIsoDate(body.expiresAt)!.toISOString() : null,
      hash,
    })
    adminCallOf(c)!.target = record.id
    return c.json({ ...keyView(record), key }, 201)
  })

  admin.get('/keys', guard('keys.list'), async (c) => {
    const records = await keyStore.list()
    return c.json({ object: 'list', data: records.map(keyView) })
  })

  admin.get('/keys/:id', guard('keys.get'), async (c) => {
    const record = await keyStore.get(keyId(c))
    if (!record) throw notFound()
    return c.json(keyView(record))
  })

  admin.delete('/keys/:id', guard('keys.revoke'), async (c) => {
    const record = await keyStore.revoke(keyId(c))
    if (!record) throw notFound()
    return c.json(keyView(record))
  })

  admin.post('/keys/:id/rotate', guard('keys.rotate'), async (c) => {
    const { key, hash } = newApiKey()
    const outcome = await keyStore.rotate(keyId(c), hash)
    if (!outcome.ok && outcome.reason === 'not_found') throw notFound()
    if (!outcome.ok) throw new InvalidRequest('a revoked key cannot be rotated', { param: 'id', reason: 'revoked' })
    return c.json({ ...keyView(outcome.record), key })
  })

  admin.get('/usage', guard('usage.read'), async (c) => {
    const filter = parseUsageQuery(c.req.query())
    if (!deps.usage) throw new ServiceUnavailable('usage reporting is not available', { reason: 'no_usage' })
    return c.json({ object: 'list', data: await deps.usage(filter) })
  })

  admin.get('/upstreams', guard('upstreams.read'), (c) => {
    return c.json({ object: 'list', data: deps.upstreams ? deps.upstreams() : [] })
  })

  // Unknown admin paths still demand an admin first: outsiders learn nothing about the API.
  admin.all('*', guard('unknown'), () => {
    throw new NotFound('no such admin endpoint', { reason: 'not_found' })
  })

  return admin
}
