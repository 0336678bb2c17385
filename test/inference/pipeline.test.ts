import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, request, type ServerResponse } from 'node:http'
import { createInferencePipeline, type PipelineDeps } from '../../src/inference/pipeline.js'
import type { InferenceHandler } from '../../src/inference/handler.js'
import type { AuditEvent } from '../../src/audit/types.js'
import type { Principal } from '../../src/auth/types.js'
import { replyAtTurnEnd } from '../../src/http/turn-end.js'
import { UpstreamError } from '../../src/errors/index.js'
import { createLogger } from '../../src/log/index.js'
import { OpenRequests } from '../../src/http/open-requests.js'

const principal: Principal = {
  subject: 'key:test',
  authMethod: 'api_key',
  keyId: 'k1',
  roles: ['dev'],
  isAdmin: false,
  keyModels: null,
  keyLimits: null,
}

/**
 * The fast path with a handler of the test's own: each audit line notes whether the client's
 * reply had been written completely when the request's bookkeeping ran.
 */
async function servePipeline(handler: InferenceHandler) {
  const recorded: { event: AuditEvent; replyWritten: boolean }[] = []
  let current: ServerResponse | null = null
  const open = new OpenRequests()
  const deps: PipelineDeps = {
    admit: () => {},
    log: createLogger('error', () => {}),
    authentication: {
      authenticator: { authenticate: async () => principal, close: async () => {} },
      resolveEntitlements: () => ({ roles: ['dev'], primaryRole: 'dev', limits: {}, allowsModel: () => true }),
      onAuthFailure: () => {},
    },
    recorder: {
      catalog: new Map(),
      quota: {} as PipelineDeps['recorder']['quota'],
      log: createLogger('error', () => {}),
      metrics: { requests() {}, duration() {}, ttft() {}, tokens() {}, rateLimited() {}, authFailure() {} },
      audit: {
        write: (event) => recorded.push({ event, replyWritten: current !== null && current.writableEnded }),
        isHealthy: () => true,
        flush: async () => {},
        reopen: async () => {},
        close: async () => {},
      },
      open,
    },
  }
  const fastPath = createInferencePipeline(deps, new Map([['/v1/chat/completions', handler]]))
  const server = createServer((incoming, out) => {
    current = out
    if (!fastPath(incoming, out)) out.writeHead(404).end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const post = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end('{}')
    })
  return { recorded, post, open, close: () => server.close() }
}

test('a whole reply is written before its request is settled, audited and measured', async (t) => {
  const gw = await servePipeline(async (_incoming, out, state) => {
    state.status = 200
    replyAtTurnEnd(out, 200, { 'content-type': 'application/json' }, '{"ok":true}')
  })
  t.after(gw.close)
  const reply = await gw.post()
  assert.deepEqual(reply, { status: 200, body: '{"ok":true}' })
  assert.equal(gw.recorded.length, 1)
  assert.equal(gw.recorded[0].event.status, 200)
  assert.equal(gw.recorded[0].replyWritten, true, 'the bookkeeping ran while the reply still waited')
})

test('an error reply is written first too, and its audit line has the error status', async (t) => {
  const gw = await servePipeline(async () => {
    throw new UpstreamError('the replica failed (status 500)', { reason: 'status_500' })
  })
  t.after(gw.close)
  const reply = await gw.post()
  assert.equal(reply.status, 502)
  assert.equal(JSON.parse(reply.body).error.code, 'upstream_error')
  assert.equal(gw.recorded.length, 1)
  assert.equal(gw.recorded[0].event.status, 502)
  assert.equal(gw.recorded[0].event.reason, 'status_500')
  assert.equal(gw.recorded[0].replyWritten, true)
})

test('a reply the handler ended itself (a stream) is recorded once, with the status it was sent with', async (t) => {
  const gw = await servePipeline(async (_incoming, out) => {
    out.writeHead(201, { 'content-type': 'text/event-stream' })
    out.end('data: [DONE]\n\n')
  })
  t.after(gw.close)
  const reply = await gw.post()
  assert.deepEqual(reply, { status: 201, body: 'data: [DONE]\n\n' })
  assert.equal(gw.recorded.length, 1)
  assert.equal(gw.recorded[0].event.status, 201)
})

test('a request counts as open from its start until it is recorded, so a shutdown can wait for it', async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const gw = await servePipeline(async (_incoming, out, state) => {
    await held
    state.status = 200
    replyAtTurnEnd(out, 200, { 'content-type': 'application/json' }, '{}')
  })
  t.after(gw.close)
  const reply = gw.post()
  for (let i = 0; i < 200 && gw.open.count === 0; i++) await new Promise((r) => setTimeout(r, 5))
  assert.equal(gw.open.count, 1, 'the request in the handler is not counted')
  let idle = false
  const waited = gw.open.idle(60_000).then(() => (idle = true))
  await new Promise((r) => setImmediate(r))
  assert.equal(idle, false, 'idle() resolved while a request was open')
  release()
  await reply
  await waited
  assert.equal(gw.recorded.length, 1, 'idle before the request was recorded')
  assert.equal(gw.open.count, 0)
})
