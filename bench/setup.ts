import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { ROOT, startChild, waitForHttp, type Child } from '../test/helpers/processes.js'
import { freePort } from '../test/helpers/ports.js'

// What `npm run bench` and `npm run bench:cpu` both set up: the gateway's config and key, and
// the minimal Node proxy they measure it against.

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-not-a-secret'

/** Limits high enough never to refuse, so quotas are checked and settled on every request. */
const NEVER_BITING_LIMITS =
  'requestsPerMinute: 1000000000, tokensPerMinute: 1000000000000, tokensPerDay: 1000000000000, maxConcurrent: 100000, '

/**
 * The gateway with everything on: key auth, quotas (Redis, or the embedded store when
 * `redisUrl` is null), the audit file and metrics. `limited: false` gives the role no
 * limits (usage is still recorded).
 */
export function benchGatewayConfig(opts: { redisUrl: string | null; simUrls: string[]; limited: boolean }): string {
  return `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store:
${opts.redisUrl ? `  redis: ${opts.redisUrl}\n` : ''}  dataDir: $DIR/data
  keyPrefix: "bench:"
auth: { adminToken: ${BENCH_ADMIN_TOKEN} }
roles:
  bench: { ${opts.limited ? NEVER_BITING_LIMITS : ''}models: ["*"] }
models:
  sim-model: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: [${opts.simUrls.join(', ')}] }
audit: { sink: file, path: $DIR/audit.jsonl }
`
}

/** Issues an API key for the bench role through the admin API. */
export async function createBenchKey(gatewayUrl: string): Promise<string> {
  const res = await fetch(`${gatewayUrl}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', roles: ['bench'] }),
  })
  if (res.status !== 201) throw new Error(`creating the bench key failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { key: string }).key
}

/**
 * `../shared/peer-bench`'s minimal Node proxy in front of `upstreamUrl`, pinned to `cpus`, or
 * null when the peer bench is not beside the project.
 */
export async function startNodeMin(upstreamUrl: string, cpus: string): Promise<{ child: Child; url: string } | null> {
  const script = resolve(ROOT, '..', 'shared', 'peer-bench', 'node-proxy.mjs')
  if (!existsSync(script)) return null
  return startProxy((port) => [script, '--port', String(port), '--upstream', upstreamUrl], cpus)
}

/**
 * One of the project's own floors in front of `upstreamUrl`, pinned to `cpus`: 'undici'
 * (bench/undici-floor.ts, the gateway's transport) or 'socket' (bench/socket-floor.ts, plain
 * keep-alive sockets).
 */
export function startFloor(kind: 'undici' | 'socket', upstreamUrl: string, cpus: string): Promise<{ child: Child; url: string }> {
  return startProxy((port) => [resolve(import.meta.dirname, `${kind}-floor.js`), String(port), upstreamUrl], cpus)
}

/** A Node proxy script on a free port (`args` of that port), pinned to `cpus`, once it answers. */
async function startProxy(args: (port: number) => string[], cpus: string): Promise<{ child: Child; url: string }> {
  const port = await freePort()
  const child = startChild(process.execPath, args(port), {}, cpus)
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/v1/models`, 10000, false, child)
  return { child, url }
}
