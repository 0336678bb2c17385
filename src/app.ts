import { Hono } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Config } from './config/index.js'
import type { Authenticator, Entitlements, Principal } from './auth/types.js'
import type { AuditSink } from './audit/types.js'
import type { QuotaLimiter } from './quota/types.js'
import type { Balancer } from './upstream/types.js'
import type { Logger } from './log/index.js'
import { NotFound, ServiceUnavailable } from './errors/index.js'
import { newRequestState, type GatewayEnv } from './http/context.js'
import { requestIdFrom } from './http/request-id.js'
import { createAuthentication } from './http/authenticate.js'
import { createErrorHandler } from './http/errors.js'
import { createInferenceHandler, type InferenceHandler } from './inference/handler.js'
import { createRecorder, type RequestMetrics } from './inference/recorder.js'
import { createInferencePipeline, type FastPath } from './inference/pipeline.js'
import { OpenRequests } from './http/open-requests.js'
import { buildModelCatalog, modelObject, resolveModel } from './inference/models.js'
import type { Telemetry } from './telemetry/index.js'
import type { InferenceRoute } from './inference/routes.js'

/** Everything the app needs, created by main.ts (or a test) and passed in: no singletons. */
export interface AppDeps {
  config: Config
  log: Logger
  authenticator: Authenticator
  resolveEntitlements: (principal: Principal) => Entitlements
  quota: QuotaLimiter
  balancer: Balancer
  audit: AuditSink
  metrics: RequestMetrics
  tracing: Telemetry
  /** The admin API, mounted at /admin. */
  admin?: Hono<GatewayEnv>
}

const INFERENCE_ROUTES: readonly InferenceRoute[] = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses']

/**
 * The gateway's HTTP surface (SPEC section 3), the order of the steps reading top to bottom:
 * the Hono app, and the fast path that serves the inference POSTs with the same steps
 * straight from node:http (main.ts puts it in front of the app).
 */
export function buildApp(deps: AppDeps): { app: Hono<GatewayEnv>; fastPath: FastPath; openRequests: OpenRequests } {
  const { config } = deps
  const app = new Hono<GatewayEnv>()
  const catalog = buildModelCatalog(config)
  const startedAt = Math.floor(Date.now() / 1000)

  app.use('*', async (c, next) => {
    c.set('state', newRequestState(requestIdFrom(c.env.incoming.headers['x-request-id'] as string | undefined), 'other'))
    await next()
  })

  app.get('/healthz', (c) => c.json({ status: 'ok' }, 200, { 'x-request-id': c.var.state.requestId }))
  app.get('/readyz', (c) => {
    const storeReady = deps.quota.isReady()
    const auditReady = !config.audit.failClosed || deps.audit.isHealthy()
    const ready = storeReady && auditReady
    return c.json({ status: ready ? 'ready' : 'unavailable', store: storeReady, audit: auditReady }, ready ? 200 : 503, {
      'x-request-id': c.var.state.requestId,
    })
  })

  if (deps.admin) app.route('/admin', deps.admin)

  // /v1: record → (fail closed on audit) → authenticate → route
  app.use('/v1/*', async (c, next) => {
    c.var.state.route = routeLabel(c.req.path)
    await next()
  })
  const openRequests = new OpenRequests()
  const recorder = { catalog, quota: deps.quota, audit: deps.audit, metrics: deps.metrics, log: deps.log, open: openRequests }
  app.use('/v1/*', createRecorder(recorder))
  const admit = () => {
    if (config.audit.failClosed && !deps.audit.isHealthy()) {
      throw new ServiceUnavailable('the audit trail cannot be written; requests are refused until it can', {
        reason: 'audit_unavailable',
        headers: { 'retry-after': '5' },
      })
    }
  }
  app.use('/v1/*', async (_c, next) => {
    admit()
    await next()
  })
  const authentication = {
    authenticator: deps.authenticator,
    resolveEntitlements: deps.resolveEntitlements,
    onAuthFailure: (reason: string) => deps.metrics.authFailure(reason),
  }
  app.use('/v1/*', createAuthentication(authentication))

  app.get('/v1/models', async (c) => {
    const state = c.var.state
    const ent = state.entitlements!
    state.rateLimitHeaders = await deps.quota.peekHeaders(state.principal!.subject, ent.limits)
    const data = [...catalog.values()].filter((m) => ent.allowsModel(m.publicName)).map((m) => modelObject(m, startedAt))
    state.status = 200
    return c.json({ object: 'list', data }, 200, { 'x-request-id': state.requestId, ...state.rateLimitHeaders })
  })
  app.get('/v1/models/:model{.+}', async (c) => {
    const state = c.var.state
    const ent = state.entitlements!
    state.rateLimitHeaders = await deps.quota.peekHeaders(state.principal!.subject, ent.limits)
    const name = c.req.param('model')
    state.model = name
    const route = resolveModel(catalog, name, ent)
    state.status = 200
    return c.json(modelObject(route, startedAt), 200, { 'x-request-id': state.requestId, ...state.rateLimitHeaders })
  })

  const inferenceDeps = { config, catalog, quota: deps.quota, balancer: deps.balancer, tracing: deps.tracing }
  const handlers = new Map<string, InferenceHandler>()
  for (const route of INFERENCE_ROUTES) {
    const handle = createInferenceHandler(inferenceDeps, route)
    handlers.set(route, handle)
    app.post(route, async (c) => {
      await handle(c.env.incoming, c.env.outgoing, c.var.state)
      return RESPONSE_ALREADY_SENT
    })
  }

  const onError = createErrorHandler(deps.log)
  app.notFound((c) => onError(new NotFound(`no route for ${c.req.method} ${c.req.path.slice(0, 200)}`, { reason: 'unknown_route' }), c))
  app.onError(onError)
  const fastPath = createInferencePipeline({ recorder, authentication, admit, log: deps.log }, handlers)
  return { app, fastPath, openRequests }
}

const KNOWN_ROUTES = new Set<string>([...INFERENCE_ROUTES, '/v1/models'])

/** A bounded `route` label: a known route, `/v1/models/{model}`, or `other`. */
function routeLabel(path: string): string {
  if (KNOWN_ROUTES.has(path)) return path
  if (path.startsWith('/v1/models/')) return '/v1/models/{model}'
  return 'other'
}
