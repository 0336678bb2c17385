// `/sim/*`: the test-facing side door. Never behind --api-key, never counted in the stats or
// recorded, so tests can look without changing what they look at.
import type { ServerResponse } from 'node:http'
import { checkSettings } from './options.js'
import { isObject, type Json } from './prompt.js'
import type { SimState } from './state.js'

export interface ControlReply {
  status: number
  body: string
}

const json = (status: number, value: unknown): ControlReply => ({ status, body: JSON.stringify(value) })

/** Answers a `/sim/*` request; `body` is the parsed JSON (undefined: absent or not JSON). */
export function handleControl(state: SimState, method: string, path: string, query: string, body: Json | undefined): ControlReply {
  if (path === '/sim/stats' && method === 'GET') return json(200, state.stats())
  if (path === '/sim/requests' && method === 'GET') {
    const only = new URLSearchParams(query).get('path')
    const list = state.recent()
    return json(200, { data: only ? list.filter((r) => r.path === only) : list })
  }
  if (path === '/sim/requests' && method === 'DELETE') {
    const cleared = state.recent().length
    state.clearLog()
    return json(200, { cleared })
  }
  if (path === '/sim/config' && method === 'GET') return json(200, { ...state.settings })
  if (path === '/sim/config' && method === 'POST') {
    if (!isObject(body)) return json(400, { error: ['the body must be a JSON object of settings'] })
    const { settings, problems } = checkSettings(body)
    if (problems.length > 0) return json(400, { error: problems })
    Object.assign(state.settings, settings)
    // A larger batch lets queued requests start now.
    state.drain()
    return json(200, { ...state.settings })
  }
  return json(404, { error: [`no control route ${method} ${path}`] })
}

export function sendControl(res: ServerResponse, reply: ControlReply, baseHeaders: Readonly<Record<string, string>>): void {
  res.writeHead(reply.status, {
    ...baseHeaders,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(reply.body)),
  })
  res.end(reply.body)
}
