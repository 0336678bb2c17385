import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from '../e2e/helpers.js'

// The metrics port of a real gateway after real traffic: SPEC names and label sets, values
// that match what clients saw, and no label holding a key, subject, request id or stray model.

const config = (vllm: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["mistral"] }
models:
  mistral: { upstream: vllm, upstreamModel: /models/mistral-7b }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
      assert.ok(m, line)
      const labels: Record<string, string> = {}
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
      return { name: m[1], labels, value: Number(m[3]) }
    })
}

describe('metrics of a running gateway', () => {
  let vllm: SimHandle
  let gw: GatewayHandle
  let key: string
  let keyId: string

  before(async () => {
    vllm = await startSim('vllm', ['--model', '/models/mistral-7b', '--tokens', '5'])
    ;({ gw, key, keyId } = await gatewayWithKey(config(vllm.url), ['dev']))
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
  })

  it('records requests, tokens, refusals and replicas with bounded labels', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const reply = await client.chat.completions.create({ model: 'mistral', messages: [{ role: 'user', content: 'hi' }] })
    await assert.rejects(client.chat.completions.create({ model: 'model-from-an-attacker', messages: [] }), { status: 404 })
    const bad = new OpenAI({ apiKey: 'ghk_forged0123456789abcdef', baseURL: `${gw.url}/v1`, maxRetries: 0 })
    await assert.rejects(bad.models.list(), { status: 401 })

    const res = await fetch(`${gw.metricsUrl}/metrics`)
    assert.equal(res.status, 200)
    const samples = parse(await res.text())
    const sum = (name: string, labels: Record<string, string> = {}): number =>
      samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((a, s) => a + s.value, 0)

    assert.equal(sum('gatehouse_requests_total', { route: '/v1/chat/completions', model: 'mistral', role: 'dev', status: '200' }), 1)
    assert.equal(sum('gatehouse_requests_total', { model: 'unknown', status: '404' }), 1)
    assert.equal(sum('gatehouse_tokens_total', { model: 'mistral', role: 'dev', type: 'prompt' }), reply.usage?.prompt_tokens)
    assert.equal(sum('gatehouse_tokens_total', { model: 'mistral', role: 'dev', type: 'completion' }), reply.usage?.completion_tokens)
    assert.equal(sum('gatehouse_request_duration_seconds_count', { model: 'mistral' }), 1)
    assert.ok(sum('gatehouse_auth_failures_total') >= 1)
    assert.equal(sum('gatehouse_upstream_healthy', { upstream: 'vllm', replica: new URL(vllm.url).origin }), 1)
    assert.ok(samples.some((s) => s.name === 'gatehouse_upstream_in_flight' && s.labels.upstream === 'vllm'))
    assert.ok(samples.some((s) => s.name === 'gatehouse_audit_write_errors_total'))
    assert.ok(samples.some((s) => s.name === 'process_resident_memory_bytes'))

    const allowed: Record<string, string[]> = {
      route: ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses', '/v1/models', '/v1/models/{model}', 'other'],
      model: ['mistral', 'unknown'],
      role: ['dev', 'none'],
    }
    for (const s of samples.filter((x) => x.name.startsWith('gatehouse_'))) {
      for (const [label, value] of Object.entries(s.labels)) {
        if (allowed[label]) assert.ok(allowed[label].includes(value), `${s.name}{${label}="${value}"}`)
        for (const secret of [key, keyId, 'model-from-an-attacker', 'ghk_forged']) {
          assert.ok(!value.includes(secret), `${s.name}{${label}} holds ${secret.slice(0, 10)}`)
        }
      }
    }
  })
})
