import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer as createHttpServer, type RequestListener, type ServerOptions } from 'node:http'
import { serve, type ServerType } from '@hono/node-server'
import type { Config } from './config/index.js'
import { createLogger, type Logger } from './log/index.js'
import { createRedisClient } from './store/index.js'
import { createKeyStore, createAuthenticator, resolveEntitlements } from './auth/index.js'
import { createAdminRoutes } from './admin/index.js'
import { createQuotaLimiter } from './quota/index.js'
import { createBalancer } from './upstream/index.js'
import { createAuditSink } from './audit/index.js'
import { createMetrics, startMetricsServer } from './metrics/index.js'
import { initTelemetry } from './telemetry/index.js'
import { buildApp } from './app.js'
import type { FastPath } from './inference/pipeline.js'
import { InvalidRequest, errorJson } from './errors/index.js'
import type { AuditEvent } from './audit/types.js'
import type { GatewayEnv } from './http/context.js'

/** A running gateway: its addresses and a graceful stop. */
export interface RunningGateway {
  url: string
  port: number
  metricsPort: number
  /** Stop accepting, let requests in flight finish (up to `graceMs`), flush the audit trail. */
  close(graceMs?: number): Promise<void>
  /** Reopen the audit file after logrotate moved it (SIGHUP). */
  reopenAudit(): Promise<void>
}

/** Creates every part (store, auth, quotas, balancer, audit, metrics) and starts listening. */
export async function startGateway(config: Config, log: Logger = createLogger()): Promise<RunningGateway> {
  const telemetry = initTelemetry(process.env)
  const redis = config.store.redis ? createRedisClient(config.store.redis, log) : null
  const keyStore = createKeyStore(config, redis, log)
  const authenticator = createAuthenticator({ config, keyStore, log })
  const quota = createQuotaLimiter({ config, redis, log })
  const balancer = createBalancer({ config, log })
  const metrics = createMetrics({
    snapshotUpstreams: () => balancer.snapshot(),
    models: Object.keys(config.models),
    roles: Object.keys(config.roles),
  })
  const audit = createAuditSink(config.audit, {
    log,
    onWriteError: (n?: number) => metrics.auditWriteError(n),
    onDrop: (n?: number) => metrics.auditDropped(n),
  })
  const writeAdminAudit = (e: Partial<AuditEvent> & { action: string; target: string | null; status: number }) =>
    audit.write(adminAuditEvent(e))
  const admin = createAdminRoutes<GatewayEnv>({
    config,
    authenticator,
    keyStore,
    audit: writeAdminAudit,
    usage: (filter) => quota.queryUsage(filter),
    upstreams: () => balancer.snapshot(),
  })
  const { app, fastPath, openRequests } = buildApp({
    config,
    log,
    authenticator,
    resolveEntitlements: (p) => resolveEntitlements(config, p),
    quota,
    balancer,
    audit,
    metrics,
    tracing: telemetry,
    admin,
  })

  // dns upstreams know their replicas only after a first resolution: wait for it (bounded),
  // so the first requests do not all get 503.
  await Promise.race([balancer.ready(), new Promise((r) => setTimeout(r, 5000).unref())])
  const server = await listen(app.fetch, fastPath, config.listen.host, config.listen.port)
  limitConnections(server, config)
  const metricsServer = await startMetricsServer(config.metrics, metrics)
  const port = (server.address() as AddressInfo).port
  log.info('gatehouse listening', { url: `http://${config.listen.host}:${port}`, metricsPort: metricsServer.port })

  let closing: Promise<void> | null = null
  return {
    url: `http://${config.listen.host}:${port}`,
    port,
    metricsPort: metricsServer.port,
    reopenAudit: () => audit.reopen(),
    close: (graceMs = 30_000) =>
      (closing ??= (async () => {
        await closeServer(server, graceMs)
        await metricsServer.close()
        await balancer.close()
        // Requests cut above are recorded on a later turn: settle and audit them before the store and trail close.
        await openRequests.idle(5000)
        await authenticator.close()
        await quota.close()
        await keyStore.close()
        await audit.close()
        await telemetry.shutdown()
        if (redis) redis.disconnect()
      })()),
  }
}

/**
 * Bounds what a slow or hostile client can hold: time to send headers and body, silence on a
 * connection, and the answer to a request node:http cannot parse (in the OpenAI error shape
 * instead of node's empty 400).
 */
function limitConnections(server: import('node:http').Server, config: Config): void {
  // Longer than common load balancers' idle timeouts, so they close first (no reset races).
  server.keepAliveTimeout = 75_000
  server.headersTimeout = 30_000
  // The whole request (headers and body) must arrive within this: a body trickled a byte at a
  // time would otherwise hold its connection forever. It does not limit the response, so
  // streams may still last as long as the replica keeps sending.
  server.requestTimeout = REQUEST_TIMEOUT_MS
  // A connection silent both ways for longer than any upstream wait is a client that stopped
  // reading (its stream is paused on backpressure) or vanished: close it, freeing its socket.
  server.timeout = socketIdleTimeout(config)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Never write into a response already under way on this connection.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (socket.writable && !inFlight?.headersSent) {
      const [status, message] = CLIENT_ERRORS[err.code ?? ''] ?? ['400 Bad Request', 'the request is not valid HTTP']
      const body = errorJson(new InvalidRequest(message, { reason: 'bad_http' }))
      socket.write(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy()
  })
}

const CLIENT_ERRORS: Record<string, [string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: ['408 Request Timeout', 'the request did not arrive in time'],
  HPE_HEADER_OVERFLOW: ['431 Request Header Fields Too Large', 'the request headers are too large'],
}

/** Headers and body of a request must have arrived this long after it began (else 408). */
export const REQUEST_TIMEOUT_MS = 60_000
// How often node:http looks for requests past headersTimeout / requestTimeout (default 30 s,
// which would let a slow request live up to 30 s past its limit).
const CONNECTIONS_CHECK_MS = 5_000

/**
 * The longest a client connection may be silent both ways: longer than every upstream's
 * first-byte and idle timeouts (the gateway answers, or cuts the stream, before it), plus slack.
 */
export function socketIdleTimeout(config: Config): number {
  let longest = 0
  for (const u of Object.values(config.upstreams)) longest = Math.max(longest, u.timeouts.firstByteMs, u.timeouts.idleMs)
  return longest + 10_000
}

function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  fastPath: FastPath,
  hostname: string,
  port: number,
): Promise<ServerType & import('node:http').Server> {
  return new Promise((resolve, reject) => {
    const serverOptions = { connectionsCheckingInterval: CONNECTIONS_CHECK_MS }
    // The inference POSTs take the fast path; everything else goes to the Hono app.
    const createServer = ((options: ServerOptions, appListener: RequestListener) =>
      createHttpServer(options, (req, res) => {
        if (!fastPath(req, res)) void appListener(req, res)
      })) as unknown as typeof createHttpServer
    const server = serve({ fetch, hostname, port, serverOptions, createServer }, () =>
      resolve(server as ServerType & import('node:http').Server),
    )
    server.once('error', reject)
  })
}

/** Stops accepting connections and waits for requests in flight, up to `graceMs`. */
function closeServer(server: import('node:http').Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections()
      resolve()
    }, graceMs)
    timer.unref()
    server.close(() => {
      clearTimeout(timer)
      resolve()
    })
    server.closeIdleConnections()
  })
}

function adminAuditEvent(e: Partial<AuditEvent> & { action: string; target: string | null; status: number }): AuditEvent {
  return {
    ts: new Date().toISOString(),
    type: 'admin',
    requestId: e.requestId ?? '',
    subject: e.subject ?? null,
    authMethod: e.authMethod ?? 'none',
    keyId: e.keyId ?? null,
    roles: e.roles ?? null,
    route: e.route ?? '/admin',
    model: null,
    upstream: null,
    replica: null,
    status: e.status,
    promptTokens: null,
    completionTokens: null,
    usageSource: null,
    durationMs: e.durationMs ?? 0,
    ttftMs: null,
    clientIp: e.clientIp ?? null,
    userAgent: e.userAgent ?? null,
    reason: e.reason ?? null,
    action: e.action,
    target: e.target,
  }
}
