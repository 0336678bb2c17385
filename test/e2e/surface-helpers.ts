import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import type { GatewayHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey, simRequests, waitUntil, type SimRequest } from './helpers.js'

// Shared by the OpenAI-surface tests: every call carries its own x-request-id, so what the
// replica received, the audit line and the client's reply can be matched to one another.

/** A fresh request id (the gateway forwards a sane client id upstream and audits it). */
export function requestId(tag: string): string {
  return `${tag}-${randomUUID()}`
}

/** Per-request SDK options that pin the request id. */
export function withId(id: string): OpenAI.RequestOptions {
  return { headers: { 'x-request-id': id } }
}

/** An SDK client for the gateway; a fresh key when `subject` is given (its own quota windows). */
export async function gatewayClient(gw: GatewayHandle, roles: string[], subject?: string): Promise<OpenAI> {
  const { key } = await createKey(gw, { name: subject ?? 'surface', roles, ...(subject ? { subject } : {}) })
  return new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
}

/** An SDK client talking to a simulator directly, bypassing the gateway. */
export function directClient(simUrl: string): OpenAI {
  return new OpenAI({ apiKey: 'unused', baseURL: `${simUrl}/v1`, maxRetries: 0 })
}

/** The request the simulator received for `id`, or throws. */
export async function received(simUrl: string, id: string): Promise<SimRequest> {
  const found = (await simRequests(simUrl)).find((r) => r.headers['x-request-id'] === id)
  if (!found) throw new Error(`the replica at ${simUrl} received no request ${id}`)
  return found
}

/** Whether the simulator received any request with this id. */
export async function reachedReplica(simUrl: string, id: string): Promise<boolean> {
  return (await simRequests(simUrl)).some((r) => r.headers['x-request-id'] === id)
}

export interface AuditLine {
  type: string
  requestId: string
  route: string
  model: string | null
  upstream: string | null
  status: number
  promptTokens: number | null
  completionTokens: number | null
  usageSource: string | null
}

/** The gateway's audit line for `id`, waiting for the batched writer to flush it. */
export async function auditLine(gw: GatewayHandle, id: string): Promise<AuditLine> {
  const path = join(gw.dir, 'audit.jsonl')
  const find = (): AuditLine | undefined => {
    if (!existsSync(path)) return undefined
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.includes(id)) {
        const rec = JSON.parse(line) as AuditLine
        if (rec.requestId === id) return rec
      }
    }
    return undefined
  }
  await waitUntil(async () => find() !== undefined)
  const rec = find()
  if (!rec) throw new Error(`no audit line for ${id}`)
  return rec
}

export interface UsageTotals {
  requests: number
  promptTokens: number
  completionTokens: number
}

/** `/admin/usage` summed over models and days for one subject. */
export async function usageOf(gw: GatewayHandle, subject: string): Promise<UsageTotals> {
  const res = await fetch(`${gw.url}/admin/usage?subject=${encodeURIComponent(subject)}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  })
  if (res.status !== 200) throw new Error(`GET /admin/usage: ${res.status} ${await res.text()}`)
  const { data } = (await res.json()) as { data: UsageTotals[] }
  return data.reduce(
    (a, r) => ({ requests: a.requests + r.requests, promptTokens: a.promptTokens + r.promptTokens, completionTokens: a.completionTokens + r.completionTokens }),
    { requests: 0, promptTokens: 0, completionTokens: 0 },
  )
}

/** Waits until `/admin/usage` for `subject` equals `want` (settlement runs after the reply). */
export async function settledUsage(gw: GatewayHandle, subject: string, want: UsageTotals): Promise<UsageTotals> {
  const same = (u: UsageTotals) =>
    u.requests === want.requests && u.promptTokens === want.promptTokens && u.completionTokens === want.completionTokens
  await waitUntil(async () => same(await usageOf(gw, subject)))
  return usageOf(gw, subject)
}
