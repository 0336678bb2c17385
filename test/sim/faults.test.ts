// Failure injection: error rate, dropped connections, hung requests, and live changes of them.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { postJson, stats, waitFor, type ErrorBody } from './helpers.js'

const CHAT = { model: 'sim-model', messages: [{ role: 'user', content: 'hello' }] }

/** Reads a response body until it ends or breaks; returns the text and whether it broke. */
async function readAll(res: Response): Promise<{ text: string; broken: boolean }> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return { text, broken: false }
      text += decoder.decode(value, { stream: true })
    }
  } catch {
    return { text, broken: true }
  }
}

describe('sim: error rate', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--error-rate', '1', '--error-status', '503'])
  })
  after(() => sim.stop())

  test('every inference request gets the configured status with vLLM error JSON', async () => {
    const before = await stats(sim.url)
    for (const stream of [false, true]) {
      const r = await postJson<ErrorBody>(`${sim.url}/v1/chat/completions`, { ...CHAT, stream })
      assert.equal(r.status, 503)
      assert.equal(r.body.error.code, 503)
      assert.equal(r.body.error.type, 'ServiceUnavailableError')
      assert.equal(typeof r.body.error.message, 'string')
    }
    assert.equal((await stats(sim.url)).errors, before.errors + 2)
    assert.equal((await fetch(`${sim.url}/health`)).status, 200, 'health is not failed by the error rate')
  })

  test('POST /sim/config changes it live, and rejects bad settings naming each', async () => {
    const bad = await postJson<{ error: string[] }>(`${sim.url}/sim/config`, { errorRate: 2, tokens: 0, colour: 'red' })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.length, 3)
    assert.ok(bad.body.error.some((p) => p.startsWith('errorRate:')))
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, CHAT)).status, 503, 'a rejected patch changes nothing')
    const ok = await postJson<{ errorRate: number; errorStatus: number }>(`${sim.url}/sim/config`, { errorRate: 0 })
    assert.deepEqual([ok.status, ok.body.errorRate, ok.body.errorStatus], [200, 0, 503])
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, CHAT)).status, 200)
    await postJson(`${sim.url}/sim/config`, { errorRate: 1, errorStatus: 429 })
    const limited = await postJson<ErrorBody>(`${sim.url}/v1/chat/completions`, CHAT)
    assert.deepEqual([limited.status, limited.body.error.code], [429, 429])
  })
})

describe('sim: drop and hang', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--drop-rate', '1', '--drop-after', '3', '--tokens', '10'])
  })
  after(() => sim.stop())

  test('a dropped stream ends after N content chunks, without [DONE]', async () => {
    const before = await stats(sim.url)
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...CHAT, stream: true }),
    })
    assert.equal(res.status, 200)
    const { text, broken } = await readAll(res)
    assert.ok(broken, 'the body did not end cleanly')
    assert.doesNotMatch(text, /\[DONE\]/)
    assert.equal((text.match(/"content":"[^"]+"/g) ?? []).length, 3)
    const s = await stats(sim.url)
    assert.equal(s.dropped, before.dropped + 1)
    assert.equal(s.aborted, before.aborted, 'a replica-side drop is not a client abort')
    assert.equal(s.running, 0)
  })

  test('a dropped non-streaming request gets no answer at all', async () => {
    await assert.rejects(fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT) }))
  })

  test('a hung request is accepted and never answered; leaving it counts as aborted', async () => {
    await postJson(`${sim.url}/sim/config`, { dropRate: 0, hangRate: 1 })
    const before = await stats(sim.url)
    const ctrl = new AbortController()
    const pending = fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(CHAT),
      signal: ctrl.signal,
    })
    let answered = false
    void pending.then(() => (answered = true), () => undefined)
    await waitFor('the request to hang', async () => (await stats(sim.url)).hung === before.hung + 1)
    assert.equal(answered, false)
    ctrl.abort()
    await assert.rejects(pending)
    await waitFor('the abort to be counted', async () => (await stats(sim.url)).aborted === before.aborted + 1)
    await postJson(`${sim.url}/sim/config`, { hangRate: 0 })
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, CHAT)).status, 200)
  })
})

describe('sim: hostile bodies', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm')
  })
  after(() => sim?.stop())

  test('an input nested 60,000 levels deep gets a 400, and the simulator keeps serving', async () => {
    const deep = `{"model":"sim-model","input":${'['.repeat(60000)}"x"${']'.repeat(60000)}}`
    const res = await fetch(`${sim.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep })
    assert.equal(res.status, 400)
    assert.equal((await fetch(`${sim.url}/health`)).status, 200)
  })
})
