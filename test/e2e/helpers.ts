import { startGateway, type GatewayHandle } from '../helpers/processes.js'

export const ADMIN_TOKEN = 'e2e-admin-token-abcdef0123456789'

/** Creates an API key through the admin API and returns its secret. */
export async function createKey(gw: GatewayHandle, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (res.status !== 201) throw new Error(`POST /admin/keys: ${res.status} ${await res.text()}`)
  return (await res.json()) as { id: string; key: string }
}

/** Starts a gateway on `yaml` (with the admin token) and returns it with a key for `roles`. */
export async function gatewayWithKey(
  yaml: string,
  roles: string[],
  env: NodeJS.ProcessEnv = {},
  opts: Parameters<typeof startGateway>[2] = {},
): Promise<{ gw: GatewayHandle; key: string; keyId: string }> {
  const gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '', ...env }, opts)
  const { id, key } = await createKey(gw, { name: 'e2e', roles })
  return { gw, key, keyId: id }
}

export interface SimRequest {
  method: string
  path: string
  headers: Record<string, string>
  body: Record<string, unknown> | null
}

/** What the simulator received (its /sim/requests log), oldest first. */
export async function simRequests(simUrl: string, path?: string): Promise<SimRequest[]> {
  const res = await fetch(`${simUrl}/sim/requests${path ? `?path=${encodeURIComponent(path)}` : ''}`)
  const body = (await res.json()) as { data?: SimRequest[] } | SimRequest[]
  return Array.isArray(body) ? body : (body.data ?? [])
}

export async function simStats(simUrl: string): Promise<Record<string, number>> {
  return (await (await fetch(`${simUrl}/sim/stats`)).json()) as Record<string, number>
}

export async function waitUntil(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return check()
}
