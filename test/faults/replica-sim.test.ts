import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI, { APIError } from 'openai'
import { startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey, simStats } from '../e2e/helpers.js'
import { alive, assertOpenAIError, auditLineOf, faultConfig, usageOf, waitUntil } from './harness.js'

// Replicas that die mid-stream or hang, played by a real simulator process: the client gets
// a clean error through the official SDK, the audit line and the quota settlement are still
// written, the replica's request is aborted, and the gateway keeps serving.

describe('replica faults (simulator): dropped and hung requests', () => {
  let sim: SimHandle
  let gw: GatewayHandle
  let seq = 0

  before(async () => {
    sim = await startSim('vllm', ['--model', 'm', '--tokens', '10'])
    const yaml = faultConfig({ models: { m: 'sim' }, upstreams: { sim: { targets: [sim.url], firstByteMs: 1500, idleMs: 1500 } } })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' })
  })
  after(async () => {
    await gw?.stop()
    await sim?.stop()
  })

  const simConfig = (settings: Record<string, number>) =>
    fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify(settings) }).then((r) => r.arrayBuffer())
  const calm = () => simConfig({ dropRate: 0, hangRate: 0, errorRate: 0, itlMs: 0, ttftMs: 0, tokens: 10 })

  /** A fresh key (its own subject, so usage can be read per test) and an SDK client for it. */
  async function client(name: string): Promise<{ sdk: OpenAI; subject: string }> {
    const subject = `replica-sim-${name}`
    const { key } = await createKey(gw, { name, roles: ['user'], subject })
    return { sdk: new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 20_000 }), subject }
  }
  const rid = (name: string) => `faults-sim-${name}-${++seq}`
  const messages = [{ role: 'user' as const, content: 'tell me something' }]

  /** /healthz answers and the next request is served (once the replica is admitted again). */
  async function stillServing(sdk: OpenAI): Promise<void> {
    await calm()
    assert.ok(alive(gw), 'the gateway process exited')
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200)
    const ok = await waitUntil(async () => {
      try {
        const r = await sdk.chat.completions.create({ model: 'm', messages })
        return r.choices.length === 1
      } catch {
        return false
      }
    }, 12_000)
    assert.ok(ok, 'the next request was not served')
  }

  it('dies mid-stream: the SDK raises upstream_error after the tokens so far; audited as estimated; settled', async () => {
    const { sdk, subject } = await client('drop')
    await simConfig({ dropRate: 1, dropAfter: 3, itlMs: 20 })
    const id = rid('drop-stream')
    const stream = await sdk.chat.completions.create({ model: 'm', messages, stream: true }, { headers: { 'x-request-id': id } })
    let content = ''
    let failure: unknown
    try {
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? ''
    } catch (err) {
      failure = err
    }
    assert.ok(failure instanceof APIError, `expected an APIError from the stream, got ${String(failure)}`)
    assert.equal(failure.code, 'upstream_error')
    assert.ok(content.length > 0, 'no content before the drop')
    const line = await auditLineOf(gw, id)
    assert.equal(line.status, 200)
    assert.equal(line.reason, 'dropped')
    assert.equal(line.usageSource, 'estimated')
    assert.ok((line.completionTokens ?? 0) >= 1, 'the streamed tokens were not counted')

    const id2 = rid('drop-json')
    await assert.rejects(sdk.chat.completions.create({ model: 'm', messages }, { headers: { 'x-request-id': id2 } }), (err: unknown) => {
      assert.ok(err instanceof APIError)
      assert.equal(err.status, 502)
      assert.equal(err.code, 'upstream_error')
      return true
    })
    assert.equal((await auditLineOf(gw, id2)).status, 502)
    const ok = await waitUntil(async () => (await usageOf(gw, subject)).requests === 2)
    assert.ok(ok, 'the two dropped requests were not both settled')
    assert.ok((await usageOf(gw, subject)).completion >= 1)
    await stillServing(sdk)
  })

  it('hangs: 504 upstream_timeout for JSON and streams, and the replica request is aborted', async () => {
    const { sdk, subject } = await client('hang')
    const abortedBefore = (await simStats(sim.url)).aborted
    await simConfig({ hangRate: 1 })
    const ids = [rid('hang-json'), rid('hang-stream')]
    for (const [i, id] of ids.entries()) {
      const call = sdk.chat.completions.create({ model: 'm', messages, stream: i === 1 }, { headers: { 'x-request-id': id } })
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof APIError, String(err))
        assert.equal(err.status, 504)
        assert.equal(err.code, 'upstream_timeout')
        return true
      })
      const line = await auditLineOf(gw, id)
      assert.equal(line.status, 504)
      assert.equal(line.reason, 'first_byte_timeout')
    }
    const aborted = await waitUntil(async () => (await simStats(sim.url)).aborted >= abortedBefore + 2)
    assert.ok(aborted, 'the hung replica requests were not aborted')
    assert.ok(await waitUntil(async () => (await usageOf(gw, subject)).requests === 2), 'timed-out requests not settled')
    await stillServing(sdk)
  })

  it('errors (500) twice in a row: OpenAI-shaped 502 each time, and the gateway recovers', async () => {
    const { sdk } = await client('error')
    await simConfig({ errorRate: 1, errorStatus: 500 })
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sdk.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages }),
      })
      assert.equal(res.status, 502)
      assertOpenAIError(await res.text(), 'upstream_error')
    }
    await stillServing(sdk)
  })

  it('the client leaves mid-stream: the replica request is aborted and the partial stream is settled', async () => {
    const { sdk, subject } = await client('leave')
    await simConfig({ itlMs: 50, tokens: 200 })
    const before = (await simStats(sim.url)).aborted
    const id = rid('leave')
    const stream = await sdk.chat.completions.create({ model: 'm', messages, stream: true }, { headers: { 'x-request-id': id } })
    let chunks = 0
    // Leaving the loop early makes the SDK abort its request.
    for await (const _ of stream) if (++chunks === 3) break
    assert.equal(chunks, 3)
    assert.ok(await waitUntil(async () => (await simStats(sim.url)).aborted === before + 1), 'replica request not aborted')
    const line = await auditLineOf(gw, id)
    assert.equal(line.reason, 'client_gone')
    assert.equal(line.usageSource, 'estimated')
    assert.ok(await waitUntil(async () => (await usageOf(gw, subject)).completion >= 2), 'partial stream not settled')
    await stillServing(sdk)
  })
})
