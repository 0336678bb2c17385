import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { BIN, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey, waitUntil } from '../e2e/helpers.js'
import { verifyAuditFile } from '../../src/audit/index.js'
import { SPEC_FIELDS } from './fixtures.js'

// The audit trail through a real gateway: one line per request, refusals included, the
// usage the client saw, no prompt text, no credential; rotation by SIGHUP keeps the chain.

const PROMPT = 'PROMPT-TEXT-that-must-not-be-audited'

const config = (vllm: string, extra = '') => `
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
audit: { sink: file, path: $DIR/audit.jsonl${extra} }
`

type Line = Record<string, unknown>
const readAudit = (path: string): Line[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line)

async function post(gw: GatewayHandle, id: string, body: string, auth?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': id }
  if (auth) headers.authorization = `Bearer ${auth}`
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers, body })
  await res.arrayBuffer()
  return res.status
}

describe('audit trail through the gateway', () => {
  let vllm: SimHandle
  let gw: GatewayHandle
  let key: string
  let keyId: string

  before(async () => {
    vllm = await startSim('vllm', ['--model', '/models/mistral-7b', '--tokens', '7'])
    ;({ gw, key, keyId } = await gatewayWithKey(config(vllm.url), ['dev']))
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
  })

  it('one line per request, admitted or refused, with the usage the client got, and nothing secret', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const messages = [{ role: 'user' as const, content: PROMPT }]
    const ok = await client.chat.completions
      .create({ model: 'mistral', messages }, { headers: { 'x-request-id': 'audit-e2e-ok' } })
      .withResponse()
    let streamed: OpenAI.CompletionUsage | undefined
    const stream = await client.chat.completions.create(
      { model: 'mistral', messages, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-request-id': 'audit-e2e-stream' } },
    )
    for await (const chunk of stream) streamed = chunk.usage ?? streamed
    const chat = JSON.stringify({ model: 'mistral', messages })
    const refusals: Record<string, number> = {
      'audit-e2e-401-none': await post(gw, 'audit-e2e-401-none', chat),
      'audit-e2e-401-bad': await post(gw, 'audit-e2e-401-bad', chat, 'ghk_forged0123456789abcdef'),
      'audit-e2e-404': await post(gw, 'audit-e2e-404', JSON.stringify({ model: 'nope', messages }), key),
      'audit-e2e-400': await post(gw, 'audit-e2e-400', '{"model":', key),
    }
    assert.deepEqual(Object.values(refusals), [401, 401, 404, 400])

    assert.equal(await gw.stop('SIGTERM'), 0)
    const path = join(gw.dir, 'audit.jsonl')
    const lines = readAudit(path)
    const requests = lines.filter((l) => l.type === 'request')
    assert.deepEqual(
      requests.map((l) => l.requestId),
      ['audit-e2e-ok', 'audit-e2e-stream', ...Object.keys(refusals)],
    )
    for (const line of lines) for (const field of SPEC_FIELDS) assert.ok(field in line, `${String(line.requestId)}: ${field}`)
    const byId = new Map(requests.map((l) => [l.requestId, l]))
    const okLine = byId.get('audit-e2e-ok')!
    assert.deepEqual(
      [okLine.status, okLine.promptTokens, okLine.completionTokens, okLine.keyId, okLine.authMethod, okLine.model],
      [200, ok.data.usage?.prompt_tokens, ok.data.usage?.completion_tokens, keyId, 'api_key', 'mistral'],
    )
    const streamLine = byId.get('audit-e2e-stream')!
    assert.deepEqual([streamLine.promptTokens, streamLine.completionTokens], [streamed?.prompt_tokens, streamed?.completion_tokens])
    for (const [id, status] of Object.entries(refusals)) assert.equal(byId.get(id)?.status, status, id)
    assert.equal(byId.get('audit-e2e-401-none')?.authMethod, 'none')
    assert.ok(lines.some((l) => l.type === 'admin' && typeof l.action === 'string'), 'the key creation is audited')

    const text = readFileSync(path, 'utf8')
    for (const secret of [PROMPT, key, 'ghk_forged0123456789abcdef', 'e2e-admin-token']) {
      assert.ok(!text.includes(secret), `audit file holds ${secret.slice(0, 12)}…`)
      assert.ok(!gw.output().includes(secret), `process output holds ${secret.slice(0, 12)}…`)
    }
    assert.equal((await verifyAuditFile(path)).ok, true)
    const cli = spawnSync(process.execPath, [BIN, 'audit', 'verify', path], { encoding: 'utf8' })
    assert.equal(cli.status, 0, cli.stdout + cli.stderr)
    assert.match(cli.stdout, new RegExp(`OK, ${lines.length} lines`))
  })
})

describe('audit rotation by SIGHUP', () => {
  let vllm: SimHandle
  let gw: GatewayHandle
  let key: string

  before(async () => {
    vllm = await startSim('vllm', ['--model', '/models/mistral-7b', '--tokens', '3'])
    ;({ gw, key } = await gatewayWithKey(config(vllm.url), ['dev']))
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
  })

  it('the reopened file continues the chain of the rotated one', async () => {
    const chat = JSON.stringify({ model: 'mistral', messages: [{ role: 'user', content: 'hi' }] })
    assert.equal(await post(gw, 'rotate-1', chat, key), 200)
    const path = join(gw.dir, 'audit.jsonl')
    assert.ok(await waitUntil(async () => existsSync(path) && readFileSync(path, 'utf8').includes('rotate-1')))
    renameSync(path, `${path}.1`)
    gw.proc.kill('SIGHUP')
    assert.ok(await waitUntil(async () => existsSync(path)), 'SIGHUP did not create a new audit file')
    assert.equal(await post(gw, 'rotate-2', chat, key), 200)
    assert.equal(await gw.stop('SIGTERM'), 0)

    assert.ok(readAudit(`${path}.1`).some((l) => l.requestId === 'rotate-1'))
    assert.deepEqual(
      readAudit(path).map((l) => l.requestId),
      ['rotate-2'],
    )
    const rotated = await verifyAuditFile(`${path}.1`)
    assert.equal(rotated.ok, true)
    const current = await verifyAuditFile(path, { prev: rotated.lastHash })
    assert.equal(current.ok, true, current.reason)
  })
})

describe('audit.failClosed with an audit file that cannot be written', () => {
  let gw: GatewayHandle

  before(async () => {
    ;({ gw } = await gatewayWithKey(config('http://127.0.0.1:9', ', failClosed: true').replace('$DIR/audit.jsonl', '/dev/full'), ['dev']))
  })
  after(async () => {
    await gw?.stop()
  })

  it('counts and reports the failure, and refuses requests with 503 until it can write', async () => {
    const chat = JSON.stringify({ model: 'mistral', messages: [{ role: 'user', content: 'hi' }] })
    // The first event written reveals the full disk; from then on the gateway fails closed.
    await post(gw, 'fc-1', chat)
    assert.ok(await waitUntil(async () => (await fetch(`${gw.url}/readyz`)).status === 503), 'readyz stayed 200')
    assert.equal(await post(gw, 'fc-2', chat), 503)
    const metrics = await (await fetch(`${gw.metricsUrl}/metrics`)).text()
    const errors = Number(/^gatehouse_audit_write_errors_total (\S+)$/m.exec(metrics)?.[1])
    assert.ok(errors >= 1, `gatehouse_audit_write_errors_total = ${errors}`)
    assert.match(gw.output(), /audit write failed/)
    assert.match(gw.output(), /ENOSPC/)
  })
})
