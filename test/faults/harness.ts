import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { GatewayHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, waitUntil } from '../e2e/helpers.js'

export { ADMIN_TOKEN, waitUntil }

export interface UpstreamSpec {
  targets: string[]
  kind?: 'vllm' | 'ollama' | 'openai'
  firstByteMs?: number
  idleMs?: number
  maxRetries?: number
}

/**
 * A gateway config for fault tests: one role `user` (all models, generous limits so every
 * request makes its quota round trip), `models` mapping public names to upstream names.
 */
export function faultConfig(opts: {
  redis?: string
  models: Record<string, string>
  upstreams: Record<string, UpstreamSpec>
  oidc?: string
  maxBodyBytes?: number
}): string {
  const upstreams = Object.entries(opts.upstreams)
    .map(([name, u]) => {
      const t = `{ connectMs: 1000, firstByteMs: ${u.firstByteMs ?? 10000}, idleMs: ${u.idleMs ?? 10000} }`
      return `  ${name}: { kind: ${u.kind ?? 'vllm'}, targets: ${JSON.stringify(u.targets)}, maxRetries: ${u.maxRetries ?? 0}, timeouts: ${t} }`
    })
    .join('\n')
  const models = Object.entries(opts.models)
    .map(([name, upstream]) => `  ${JSON.stringify(name)}: { upstream: ${upstream} }`)
    .join('\n')
  const oidc = opts.oidc
    ? `  oidc: [{ issuer: "${opts.oidc}", audience: gatehouse, rolesClaim: realm_access.roles }]\n  adminRoles: [gatehouse-admin]\n`
    : ''
  return `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
maxBodyBytes: ${opts.maxBodyBytes ?? 1048576}
store:
  redis: "${opts.redis ?? ''}"
  dataDir: $DIR/data
auth:
${oidc}  adminToken: "\${GATEHOUSE_ADMIN_TOKEN}"
roles:
  user: { models: ["*"], requestsPerMinute: 100000, tokensPerDay: 1000000000, maxConcurrent: 1000 }
  analyst: { models: ["*"], requestsPerMinute: 100000 }
models:
${models}
upstreams:
${upstreams}
audit: { sink: file, path: $DIR/audit.jsonl }
`
}

/** One line of the audit file, with the fields the tests look at. */
export interface AuditLine {
  type: string
  requestId: string
  status: number
  subject: string | null
  reason: string | null
  usageSource: string | null
  promptTokens: number | null
  completionTokens: number | null
  action?: string
  [k: string]: unknown
}

/** Every audit line the gateway wrote (rotated files included). */
export function readAudit(dir: string): AuditLine[] {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('audit.jsonl')) : []
  const lines: AuditLine[] = []
  for (const f of files) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line) lines.push(JSON.parse(line) as AuditLine)
  }
  return lines
}

/** The audit line of `requestId`, waiting for the batch writer (fails after `ms`). */
export async function auditLineOf(gw: GatewayHandle, requestId: string, ms = 5000): Promise<AuditLine> {
  let found: AuditLine | undefined
  await waitUntil(async () => (found = readAudit(gw.dir).find((l) => l.requestId === requestId)) !== undefined, ms)
  assert.ok(found, `no audit line for request ${requestId}`)
  return found
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Requests and tokens `/admin/usage` reports for `subject` (all days and models). */
export async function usageOf(gw: GatewayHandle, subject: string): Promise<{ requests: number; prompt: number; completion: number }> {
  const res = await fetch(`${gw.url}/admin/usage?subject=${encodeURIComponent(subject)}`, { headers: admin })
  assert.equal(res.status, 200, `/admin/usage answered ${res.status}`)
  const { data } = (await res.json()) as { data: { requests: number; promptTokens: number; completionTokens: number }[] }
  return data.reduce(
    (a, r) => ({ requests: a.requests + r.requests, prompt: a.prompt + r.promptTokens, completion: a.completion + r.completionTokens }),
    { requests: 0, prompt: 0, completion: 0 },
  )
}

/** The key list as the admin API shows it, sorted, for before/after comparisons. */
export async function keyList(gw: GatewayHandle): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, { headers: admin })
  assert.equal(res.status, 200, `/admin/keys answered ${res.status}`)
  const { data } = (await res.json()) as { data: { id: string; revokedAt: string | null; name: string; roles: string[] }[] }
  return JSON.stringify(data.map((k) => [k.id, k.name, k.roles, k.revokedAt]).sort())
}

/** Why `body` is not an OpenAI error object, or null when it is one. */
export function openAIErrorProblem(body: unknown): string | null {
  if (body === null || typeof body !== 'object') return 'not a JSON object'
  const err = (body as { error?: unknown }).error
  if (err === null || typeof err !== 'object') return 'no "error" object'
  const e = err as Record<string, unknown>
  if (typeof e.message !== 'string' || e.message === '') return 'error.message is not a non-empty string'
  if (typeof e.type !== 'string') return 'error.type is not a string'
  if (!('param' in e) || !('code' in e)) return 'error.param or error.code missing'
  return null
}

/** Asserts `text` is an OpenAI error body whose code is `code` (when given). */
export function assertOpenAIError(text: string, code?: string): void {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    assert.fail(`error body is not JSON: ${text.slice(0, 200)}`)
  }
  const problem = openAIErrorProblem(body)
  assert.equal(problem, null, `${problem}: ${text.slice(0, 200)}`)
  if (code) assert.equal((body as { error: { code: unknown } }).error.code, code, text.slice(0, 200))
}

/** Resident memory (kB) and open file descriptors of a process, from /proc. */
export function procSample(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rss = /VmRSS:\s+(\d+)/.exec(status)
  return { rssKb: rss ? Number(rss[1]) : 0, fds: readdirSync(`/proc/${pid}/fd`).length }
}

/** Node's used heap as the gateway's metrics port reports it. */
export async function heapUsed(gw: GatewayHandle): Promise<number> {
  const text = await (await fetch(`${gw.metricsUrl}/metrics`)).text()
  const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text)
  assert.ok(m, 'nodejs_heap_size_used_bytes missing from /metrics')
  return Number(m[1])
}

/** True while the gateway process has not exited. */
export function alive(gw: GatewayHandle): boolean {
  return gw.proc.exitCode === null && gw.proc.signalCode === null
}

/** Runs `fn` over `items` with at most `n` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
  return out
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Client connections `pid` holds open on its listening `port`: its socket descriptors whose
 * TCP entry has that local port and is not the listener (from /proc, no tools needed).
 */
export function clientSockets(pid: number, port: number): number {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1])
    } catch {
      // closed meanwhile
    }
  }
  let n = 0
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      const localPort = parseInt(cols[1].split(':')[1], 16)
      if (localPort === port && cols[3] !== '0A' && inodes.has(cols[9])) n++
    }
  }
  return n
}
