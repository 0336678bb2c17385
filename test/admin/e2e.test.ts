import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { ROOT, startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'

const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef'

const CONFIG = (simUrl: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { redis: "", dataDir: $DIR/data }
auth:
  apiKeys: true
  adminToken: \${GATEHOUSE_ADMIN_TOKEN}
roles:
  analyst: { models: ["mistral-7b-instruct"], requestsPerMinute: 1000 }
models:
  mistral-7b-instruct: { upstream: sim, upstreamModel: /models/mistral }
  secret-model: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: ["${simUrl}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

describe('admin API end to end: a key it issues, used through the openai SDK', () => {
  let sim: SimHandle
  let gw: GatewayHandle

  before(async () => {
    sim = await startSim('vllm', ['--model', '/models/mistral,secret-model'])
    gw = await startGateway(CONFIG(sim.url), { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' })
  })
  after(async () => {
    await gw?.stop()
    await sim?.stop()
  })

  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${gw.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })

  it('creates a key, serves a chat completion with it, then refuses it once revoked', async () => {
    const created = await admin('POST', '/keys', { name: 'e2e', roles: ['analyst'] })
    assert.equal(created.status, 201)
    const { id, key } = (await created.json()) as { id: string; key: string }

    const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const completion = await client.chat.completions.create({
      model: 'mistral-7b-instruct',
      messages: [{ role: 'user', content: 'Say hello' }],
    })
    assert.equal(completion.model, 'mistral-7b-instruct')
    assert.equal(typeof completion.choices[0].message.content, 'string')

    const models = await client.models.list()
    assert.deepEqual(models.data.map((m) => m.id), ['mistral-7b-instruct'])
    const notAllowed = await client.chat.completions.create({ model: 'secret-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)
    const unknown = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)
    assert.ok(notAllowed instanceof OpenAI.NotFoundError && unknown instanceof OpenAI.NotFoundError)
    assert.equal(notAllowed.message.replace('secret-model', 'M'), unknown.message.replace('no-such-model', 'M'), 'disallowed and unknown must look the same')

    assert.equal((await admin('DELETE', `/keys/${id}`)).status, 200)
    const refused = await client.chat.completions.create({ model: 'mistral-7b-instruct', messages: [{ role: 'user', content: 'again' }] }).catch((e: unknown) => e)
    assert.ok(refused instanceof OpenAI.AuthenticationError, `expected a 401, got ${String(refused)}`)
    assert.equal(refused.status, 401)

    const listed = (await (await admin('GET', '/keys')).json()) as { data: { id: string; revokedAt: string | null; lastUsedAt: string | null }[] }
    const row = listed.data.find((k) => k.id === id)
    assert.ok(row?.revokedAt && row.lastUsedAt)

    for (const secret of [key, ADMIN_TOKEN]) assert.ok(!gw.output().includes(secret), 'a credential reached the gateway log')
    const auditPath = join(gw.dir, 'audit.jsonl')
    if (existsSync(auditPath)) {
      const audit = readFileSync(auditPath, 'utf8')
      for (const secret of [key, ADMIN_TOKEN]) assert.ok(!audit.includes(secret), 'a credential reached the audit log')
    }
  })
})
