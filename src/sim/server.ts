// The simulator's HTTP server on raw node:http: the benchmark measures gateway overhead
// against it, so at zero latency it must cost far less per request than any gateway does.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Catalog } from './catalog.js'
import type { Pacing } from './engine.js'
import { ollamaIds, vllmIds } from './ids.js'
import type { InferenceContext } from './inference.js'
import type { SimKind, SimOptions, SimSettings } from './options.js'
import { createRouter, send } from './router.js'
import { SimState } from './state.js'

/** A running simulator. */
export interface SimServer {
  port: number
  url: string
  state: SimState
  /** Stops listening and ends every connection, in-flight replies included. */
  close(): Promise<void>
}

const SETTING_KEYS: readonly (keyof SimSettings)[] = [
  'ttftMs', 'itlMs', 'tokens', 'maxBatch', 'errorRate', 'errorStatus', 'hangRate', 'dropRate', 'dropAfter',
]

/** Starts a simulated replica; resolves once it listens. */
export async function startSimulator(options: SimOptions = {}): Promise<SimServer> {
  const kind: SimKind = options.kind ?? 'vllm'
  const listed = options.models ?? options.model?.split(',').map((m) => m.trim()).filter(Boolean)
  const models = listed && listed.length > 0 ? listed : ['sim-model']
  const host = options.host ?? '127.0.0.1'
  const server = createServer({ noDelay: true })
  server.keepAliveTimeout = 75_000
  server.headersTimeout = 76_000
  // Long streams are normal here.
  server.requestTimeout = 0
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  // The default id names the port, known only now; the router is attached before any
  // request can be read (nothing below yields to the event loop).
  const port = (server.address() as AddressInfo).port
  const settings: Partial<SimSettings> = {}
  for (const k of SETTING_KEYS) if (options[k] !== undefined) settings[k] = options[k]
  const state = new SimState(options.id ?? `${kind}-${port}`, kind, models, settings)
  const baseHeaders: Readonly<Record<string, string>> = Object.freeze({ 'x-sim-replica': state.id })
  const live = new Set<() => void>()
  const pacing: Pacing = {
    state,
    baseHeaders,
    jsonType: kind === 'vllm' ? 'application/json' : 'application/json; charset=utf-8',
    sseType: kind === 'vllm' ? 'text/event-stream; charset=utf-8' : 'text/event-stream',
    earlyStreamHeaders: kind === 'vllm',
    live,
  }
  const inference: InferenceContext = {
    kind,
    catalog: new Catalog(kind, models),
    ids: kind === 'vllm' ? vllmIds() : ollamaIds(),
    pacing,
    embedDim: options.embedDim ?? 64,
    reject(res, canned) {
      state.errors++
      send(res, baseHeaders, canned)
    },
  }
  const bearer = options.apiKey ? `Bearer ${options.apiKey}` : undefined
  server.on('request', createRouter({ state, catalog: inference.catalog, inference, baseHeaders, bearer }))
  server.on('clientError', (_err, socket) => socket.destroy())

  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        for (const kill of [...live]) kill()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
