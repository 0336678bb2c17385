import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { createAdminRoutes, type AdminAuditEvent } from '../../src/admin/index.js'
import { createAuthenticator, type Authenticator } from '../../src/auth/index.js'
import { parseConfig, type Config } from '../../src/config/index.js'
import { GatehouseError, errorBody } from '../../src/errors/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createEmbeddedKeyStore, type KeyStore } from '../../src/store/index.js'
import type { UsageFilter, UsageRow } from '../../src/quota/types.js'
import type { ReplicaStatus } from '../../src/upstream/types.js'

export const ADMIN_TOKEN = 'admin-token-for-admin-tests-0123456789'

type HarnessEnv = { Variables: { state: { requestId: string } } }

export interface Harness {
  app: Hono<HarnessEnv>
  config: Config
  auth: Authenticator
  store: KeyStore
  events: AdminAuditEvent[]
  usageCalls: UsageFilter[]
  close(): Promise<void>
}

export const REPLICAS: ReplicaStatus[] = [
  {
    upstream: 'vllm', replica: 'http://10.0.0.1:8000', healthy: true, inFlight: 2, waiting: 0, running: 2,
    kvCacheUsage: 0.1, latencyMsP50: 120, lastError: null, lastErrorAt: null,
  },
]

/** The admin routes mounted at /admin on a small app with an onError like the gateway's. */
export function adminHarness(oidcIssuers: string[] = []): Harness {
  const config = parseConfig(
    {
      store: { dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-admin-')) },
      auth: {
        adminToken: ADMIN_TOKEN,
        adminRoles: ['gatehouse-admin'],
        oidc: oidcIssuers.map((issuer) => ({ issuer, audience: 'gatehouse', rolesClaim: 'realm_access.roles' })),
      },
      roles: {
        analyst: { models: ['llama-*'], requestsPerMinute: 60, tokensPerMinute: 40000 },
        batch: { models: ['qwen2.5'], requestsPerMinute: 10 },
      },
    },
    {},
  )
  const store = createEmbeddedKeyStore({ dataDir: config.store.dataDir, log: silentLogger })
  const auth = createAuthenticator({ config, keyStore: store, log: silentLogger })
  const events: AdminAuditEvent[] = []
  const usageCalls: UsageFilter[] = []
  const app = new Hono<HarnessEnv>()
  // Like the gateway: a request id in the `state` variable before the admin routes run.
  let n = 0
  app.use('*', async (c, next) => {
    c.set('state', { requestId: `req-${++n}` })
    await next()
  })
  app.onError((err, c) => {
    if (err instanceof GatehouseError) return c.json(errorBody(err), err.status as 400)
    return c.json({ error: { message: 'internal', type: 'api_error', param: null, code: 'internal_error' } }, 500)
  })
  app.route(
    '/admin',
    createAdminRoutes<HarnessEnv>({
      config,
      authenticator: auth,
      keyStore: store,
      audit: (e) => events.push(e),
      usage: async (filter): Promise<UsageRow[]> => {
        usageCalls.push(filter)
        return [{ subject: 'u', model: 'llama-3', day: '2025-01-02', requests: 3, promptTokens: 30, completionTokens: 40 }]
      },
      upstreams: () => REPLICAS,
    }),
  )
  return {
    app, config, auth, store, events, usageCalls,
    async close() {
      await auth.close()
      await store.close()
    },
  }
}
