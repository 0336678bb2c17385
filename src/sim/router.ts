// Request dispatch: the /sim/* side door, --api-key, the read-only endpoints of each kind and
// the inference routes. Every reply carries x-sim-replica, so tests see which replica answered.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { OLLAMA_VERSION, VLLM_VERSION, type Catalog } from './catalog.js'
import { handleControl, sendControl } from './control.js'
import { apiError, noRoute, unauthorized, type Canned } from './errors.js'
import { handleInference, INFERENCE_ROUTES, type InferenceContext } from './inference.js'
import { vllmMetrics } from './metrics.js'
import type { SimKind } from './options.js'
import type { Json } from './prompt.js'
import type { SimState } from './state.js'

const MAX_BODY = 32 << 20

/** Health and metrics polls: not recorded, or a gateway's poller would fill the log. */
const PROBES = new Set(['/health', '/metrics', '/version', '/ping', '/', '/api/version'])

/** Reads the body and parses it as JSON; `body` is undefined when empty or not JSON. */
function readJson(req: IncomingMessage, done: (body: Json | undefined, raw: string) => void, tooLarge: () => void): void {
  const chunks: Buffer[] = []
  let size = 0
  req.on('data', (c: Buffer) => {
    size += c.length
    if (size > MAX_BODY) {
      req.removeAllListeners('data')
      req.resume()
      tooLarge()
      return
    }
    chunks.push(c)
  })
  req.on('end', () => {
    if (size > MAX_BODY) return
    const raw = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')
    let body: Json | undefined
    try {
      body = raw.length > 0 ? (JSON.parse(raw) as Json) : undefined
    } catch {
      body = undefined
    }
    done(body, raw)
  })
}

function headersOf(base: Readonly<Record<string, string>>, c: Canned): Record<string, string> {
  const h: Record<string, string> = { ...base, 'content-length': String(Buffer.byteLength(c.body)) }
  if (c.type) h['content-type'] = c.type
  return h
}

export function send(res: ServerResponse, base: Readonly<Record<string, string>>, c: Canned, head = false): void {
  res.writeHead(c.status, headersOf(base, c))
  res.end(head ? undefined : c.body)
}

function ok(type: string, body: string): Canned {
  return { status: 200, type, body }
}

/** Read-only endpoints of each kind; undefined when the path is not one. */
function getRoute(kind: SimKind, path: string, state: SimState, catalog: Catalog): Canned | undefined {
  if (path === '/v1/models') return ok('application/json', catalog.list())
  if (kind === 'vllm') {
    if (path === '/health') return ok('', '')
    if (path === '/version') return ok('application/json', JSON.stringify({ version: VLLM_VERSION }))
    if (path === '/metrics') return ok('text/plain; version=0.0.4; charset=utf-8', vllmMetrics(state, catalog.primary))
    return undefined
  }
  if (path === '/') return ok('text/plain; charset=utf-8', 'Ollama is running')
  if (path === '/api/version') return ok('application/json; charset=utf-8', JSON.stringify({ version: OLLAMA_VERSION }))
  if (path === '/api/tags') return ok('application/json; charset=utf-8', catalog.tags())
  if (path.startsWith('/v1/models/')) {
    let name = path.slice('/v1/models/'.length)
    try {
      name = decodeURIComponent(name)
    } catch {
      // A malformed escape is just a name that is not served.
    }
    const one = catalog.one(name)
    return one === undefined ? apiError(kind, 404, `model "${name}" not found`) : ok('application/json', one)
  }
  return undefined
}

export interface RouterDeps {
  state: SimState
  catalog: Catalog
  inference: InferenceContext
  baseHeaders: Readonly<Record<string, string>>
  /** `Bearer <key>` when /v1/* is guarded (--api-key). */
  bearer?: string
}

/** The `request` listener of a simulator. */
export function createRouter(deps: RouterDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { state, catalog, inference, baseHeaders: base, bearer } = deps
  const kind = inference.kind
  return (req, res) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'
    if (path.startsWith('/sim/')) {
      const answer = (body: Json | undefined): void =>
        sendControl(res, handleControl(state, method, path, q < 0 ? '' : url.slice(q + 1), body), base)
      if (method === 'POST') readJson(req, (body) => answer(body), () => answer(undefined))
      else {
        req.resume()
        answer(undefined)
      }
      return
    }
    state.countPath(path, PROBES.has(path))
    const route = INFERENCE_ROUTES[path]
    const record = (body: unknown): void => {
      if (!PROBES.has(path)) state.record({ at: new Date().toISOString(), method, path, headers: req.headers, body })
    }
    // Like `vllm --api-key`: only /v1/* is guarded; health and metrics stay open.
    const authorized = bearer === undefined || !path.startsWith('/v1') || method === 'OPTIONS' || req.headers.authorization === bearer
    if (method === 'POST' && route !== undefined) {
      const tooLarge = (): void => inference.reject(res, apiError(kind, 413, 'request body too large'))
      readJson(
        req,
        (body, raw) => {
          // Keep what arrived even when it was not JSON: that is what a test wants to see.
          record(body === undefined && raw.length > 0 ? raw : (body ?? null))
          if (!authorized) return inference.reject(res, unauthorized(kind))
          try {
            handleInference(inference, route, body, res)
          } catch {
            // A body the replica cannot digest (e.g. nested too deeply to serialise) is a 400, as in vLLM.
            if (!res.headersSent) inference.reject(res, apiError(kind, 400, 'the request could not be processed'))
          }
        },
        tooLarge,
      )
      return
    }
    req.resume()
    record(null)
    if (!authorized) return inference.reject(res, unauthorized(kind))
    const canned = method === 'GET' || method === 'HEAD' ? getRoute(kind, path, state, catalog) : undefined
    if (canned) return send(res, base, canned, method === 'HEAD')
    const known = route !== undefined || getRoute(kind, path, state, catalog) !== undefined
    send(res, base, noRoute(kind, known))
  }
}
