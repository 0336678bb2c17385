// A real Prometheus (Debian's prometheus) scrapes a running gateway and two simulated vLLM
// replicas while clients send traffic; then every dashboard panel's query must return data,
// every dashboard variable must have values, and every alert rule must evaluate cleanly.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../helpers/ports.js'
import { ROOT, startChild, startGateway, startSim, waitForHttp, type Child } from '../helpers/processes.js'
import { concrete, dashboards, panelQueries } from './promql.js'

const ADMIN = 'live-admin-token'
const SIM_KEY = 'live-sim-key'
const MODEL_PATH = '/models/mistral-7b-instruct'

const children: Child[] = []
let gatewayUrl = ''
let promUrl = ''
let dir = ''

async function http(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(15_000) })
}

async function promQuery(path: string): Promise<any> {
  const res = await http(`${promUrl}${path}`)
  const body = (await res.json()) as { status: string; data: any; error?: string }
  assert.equal(body.status, 'success', `${path}: ${body.error}`)
  return body.data
}

async function createKey(name: string, roles: string[]): Promise<string> {
  const res = await http(`${gatewayUrl}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, roles }),
  })
  const body = (await res.json()) as { key?: string }
  assert.equal(res.status, 201, JSON.stringify(body))
  return body.key!
}

/** One chat completion; streams are read to the end. Returns the status. */
async function chat(key: string | null, model: string, stream: boolean): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key) headers.authorization = `Bearer ${key}`
  const res = await http(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model, stream, max_tokens: 16, messages: [{ role: 'user', content: 'Say hello.' }] }),
  })
  await res.arrayBuffer()
  return res.status
}

/** A wave of traffic: served requests (streaming and not, both upstreams), 429s and 401s. */
async function wave(developer: string, analyst: string): Promise<number[]> {
  const calls: Promise<number>[] = []
  for (let i = 0; i < 6; i++) calls.push(chat(developer, 'mistral-7b-instruct', i % 2 === 0))
  for (let i = 0; i < 2; i++) calls.push(chat(developer, 'llama3.2', i === 0))
  // The analyst role allows 3 requests a minute: the rest are rate-limited.
  for (let i = 0; i < 5; i++) calls.push(chat(analyst, 'mistral-7b-instruct', false))
  calls.push(chat('ghk_not_a_real_key', 'mistral-7b-instruct', false), chat(null, 'mistral-7b-instruct', false))
  return Promise.all(calls)
}

describe('dashboards and alerts against a live Prometheus', { timeout: 150_000 }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-prom-'))
    const simFlags = ['--model', MODEL_PATH, '--api-key', SIM_KEY, '--ttft-ms', '30', '--itl-ms', '2', '--tokens', '8']
    const vllmA = await startSim('vllm', simFlags)
    children.push(vllmA)
    const vllmB = await startSim('vllm', simFlags)
    children.push(vllmB)
    const ollama = await startSim('ollama', ['--model', 'llama3.2', '--tokens', '8'])
    children.push(ollama)
    const gateway = await startGateway(
      `listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { redis: "", dataDir: $DIR/data }
auth: { apiKeys: true, adminToken: ${ADMIN} }
roles:
  developer: { models: ["*"] }
  analyst: { models: ["mistral-7b-instruct"], requestsPerMinute: 3 }
models:
  mistral-7b-instruct: { upstream: vllm-mistral, upstreamModel: ${MODEL_PATH} }
  llama3.2: { upstream: ollama }
upstreams:
  vllm-mistral: { kind: vllm, targets: [${vllmA.url}, ${vllmB.url}], apiKey: ${SIM_KEY} }
  ollama: { kind: ollama, targets: [${ollama.url}] }
audit: { sink: file, path: $DIR/audit.jsonl }
`,
      {},
      { waitReady: true },
    )
    children.push(gateway)
    gatewayUrl = gateway.url

    const promPort = await freePort()
    promUrl = `http://127.0.0.1:${promPort}`
    const config = join(dir, 'prometheus.yml')
    writeFileSync(
      config,
      JSON.stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: [join(ROOT, 'deploy', 'prometheus', 'alerts.yaml')],
        scrape_configs: [
          { job_name: 'gatehouse', static_configs: [{ targets: [`127.0.0.1:${gateway.metricsPort}`] }] },
          { job_name: 'vllm', static_configs: [{ targets: [`127.0.0.1:${vllmA.port}`, `127.0.0.1:${vllmB.port}`] }] },
        ],
      }),
    )
    const prom = startChild('prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ])
    children.push(prom)
    await waitForHttp(`${promUrl}/-/ready`, 20_000, true).catch((err) => {
      throw new Error(`${err}\n${prom.output()}`)
    })

    // Scrape the idle gateway once before the traffic, so that rates see the counters rise.
    await waitFor(async () => {
      const t = await promQuery('/api/v1/targets')
      return t.activeTargets.length === 3 && t.activeTargets.every((x: any) => x.health === 'up')
    }, 'all three targets up')

    const developer = await createKey('dashboards-developer', ['developer'])
    const analyst = await createKey('dashboards-analyst', ['analyst'])
    const first = await wave(developer, analyst)
    assert.ok(first.includes(200) && first.includes(429) && first.includes(401), `statuses of the first wave: ${first.join(' ')}`)
    await new Promise((r) => setTimeout(r, 2500))
    await wave(developer, analyst)
    await new Promise((r) => setTimeout(r, 3000))
  })

  after(async () => {
    for (const c of children.reverse()) await c.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('scrapes the gateway and both vLLM replicas', async () => {
    const t = await promQuery('/api/v1/targets')
    assert.deepEqual(t.activeTargets.map((x: any) => `${x.labels.job} ${x.health}`).sort(), ['gatehouse up', 'vllm up', 'vllm up'])
  })

  it('every dashboard panel query returns data', async () => {
    const empty: string[] = []
    for (const q of panelQueries()) {
      const data = await promQuery(`/api/v1/query?query=${encodeURIComponent(concrete(q.expr, '1m', '10m'))}`)
      if (data.result.length === 0) empty.push(`${q.dashboard} / ${q.panel}: ${q.expr}`)
    }
    assert.deepEqual(empty, [], `panels without data:\n${empty.join('\n')}`)
  })

  it('every dashboard variable has values', async () => {
    for (const { json } of dashboards()) {
      for (const v of json.templating.list.filter((x) => x.type === 'query')) {
        const [, metric, label] = /^label_values\(([^,]+), (\w+)\)$/.exec(String(v.query))!
        const values = await promQuery(`/api/v1/label/${label}/values?match[]=${encodeURIComponent(metric!)}`)
        assert.ok(values.length > 0, `${json.uid} $${v.name}: no values of ${label} on ${metric}`)
      }
    }
  })

  it('every alert rule is loaded and evaluates without error', async () => {
    await waitFor(async () => {
      const data = await promQuery('/api/v1/rules')
      return data.groups.flatMap((g: any) => g.rules).every((r: any) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001'))
    }, 'every rule evaluated once')
    const data = await promQuery('/api/v1/rules')
    const rules = data.groups.flatMap((g: any) => g.rules)
    assert.ok(rules.length >= 10)
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`)
  })
})

async function waitFor(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out waiting for ${what}`)
}
