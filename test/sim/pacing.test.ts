// Time to first token, time between tokens, the batch queue and client aborts. Every check
// is about the order of events (what was seen before what), never about how long it took.
import { connect } from 'node:net'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { metricValue, postJson, stats, waitFor } from './helpers.js'

const CHAT = { model: 'sim-model', messages: [{ role: 'user', content: 'hello' }] }

async function metrics(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text()
}

describe('sim: ttft and itl', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--ttft-ms', '300', '--itl-ms', '150', '--tokens', '5'])
  })
  after(() => sim.stop())

  test('headers, then the first token, arrive while the reply is still being generated', async () => {
    const completedBefore = (await stats(sim.url)).completed
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...CHAT, stream: true }),
    })
    // vLLM starts the SSE response before the engine produces anything.
    assert.equal(res.status, 200)
    assert.equal((await stats(sim.url)).completed, completedBefore, 'headers came before the reply finished')
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    const reads: string[] = []
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      reads.push(decoder.decode(value, { stream: true }))
    }
    assert.ok(reads.length > 1, 'the stream arrived in several pieces')
    assert.match(reads[0], /"role":"assistant"/)
    assert.doesNotMatch(reads[0], /\[DONE\]/, 'the first chunk was flushed before the end')
    assert.match(reads.join(''), /data: \[DONE\]\n\n$/)
    assert.equal((await stats(sim.url)).completed, completedBefore + 1)
  })
})

describe('sim: max-batch queue and aborts', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--max-batch', '1', '--ttft-ms', '600000', '--tokens', '3'])
  })
  after(() => sim.stop())

  test('requests beyond max-batch wait, visibly in /metrics; raising maxBatch starts them; aborts free the slots', async () => {
    const controllers = [new AbortController(), new AbortController(), new AbortController()]
    const pending = controllers.map((c) =>
      fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT), signal: c.signal }).catch(
        (err: unknown) => err,
      ),
    )
    const text = await waitFor('1 running and 2 waiting', async () => {
      const t = await metrics(sim.url)
      return metricValue(t, 'vllm:num_requests_running') === 1 && metricValue(t, 'vllm:num_requests_waiting') === 2 ? t : undefined
    })
    assert.equal(metricValue(text, 'vllm:kv_cache_usage_perc'), 1, 'a full batch fills the simulated KV cache')
    assert.equal((await stats(sim.url)).waiting, 2)

    const cfg = await postJson<{ maxBatch: number }>(`${sim.url}/sim/config`, { maxBatch: 4 })
    assert.equal(cfg.body.maxBatch, 4)
    await waitFor('all 3 running', async () => {
      const t = await metrics(sim.url)
      return metricValue(t, 'vllm:num_requests_running') === 3 && metricValue(t, 'vllm:num_requests_waiting') === 0
    })
    const kv = metricValue(await metrics(sim.url), 'vllm:kv_cache_usage_perc')
    assert.ok(kv !== undefined && kv > 0 && kv < 1, `kv cache usage in (0, 1): ${kv}`)

    const abortedBefore = (await stats(sim.url)).aborted
    for (const c of controllers) c.abort()
    await Promise.all(pending)
    const s = await waitFor('3 aborts counted', async () => {
      const st = await stats(sim.url)
      return st.aborted === abortedBefore + 3 ? st : undefined
    })
    assert.equal(s.running, 0)
    assert.equal(s.waiting, 0)
  })

  test('queued requests run in arrival order (FIFO)', async () => {
    await postJson(`${sim.url}/sim/config`, { maxBatch: 1, ttftMs: 40 })
    const order: string[] = []
    const sends: Promise<void>[] = []
    const arrived = async (): Promise<number> => (await stats(sim.url)).byPath['/v1/chat/completions'] ?? 0
    for (const name of ['a', 'b', 'c', 'd']) {
      const seen = await arrived()
      sends.push(postJson(`${sim.url}/v1/chat/completions`, CHAT).then(() => void order.push(name)))
      // This one must have reached the replica before the next is sent.
      await waitFor(`${name} to arrive`, async () => (await arrived()) > seen)
    }
    await Promise.all(sends)
    assert.deepEqual(order, ['a', 'b', 'c', 'd'])
  })

  test('a client leaving mid-stream stops generation and counts as aborted', async () => {
    await postJson(`${sim.url}/sim/config`, { maxBatch: 4, ttftMs: 0, itlMs: 20, tokens: 100000 })
    const before = await stats(sim.url)
    const ctrl = new AbortController()
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...CHAT, stream: true }),
      signal: ctrl.signal,
    })
    const reader = res.body!.getReader()
    const first = await reader.read()
    assert.equal(first.done, false)
    ctrl.abort()
    const s = await waitFor('the abort to be counted', async () => {
      const st = await stats(sim.url)
      return st.aborted === before.aborted + 1 ? st : undefined
    })
    assert.equal(s.running, 0, 'the batch slot was freed')
    assert.equal(s.completed, before.completed)
    const generated = metricValue(await metrics(sim.url), 'vllm:generation_tokens_total')
    assert.ok(generated !== undefined && generated < before.generationTokens + 100000, 'generation stopped early')
  })
})

/** The HTTP chunks of one raw streaming exchange, in the order they came (chunk sizes parsed from the wire). */
async function rawChunks(base: string, body: unknown): Promise<string[]> {
  const url = new URL(base)
  const json = JSON.stringify(body)
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = []
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(json)}\r\nconnection: close\r\n\r\n${json}`,
      )
    })
    socket.on('data', (d: Buffer) => parts.push(d))
    socket.on('end', () => resolve(Buffer.concat(parts)))
    socket.on('error', reject)
  })
  let at = raw.indexOf('\r\n\r\n') + 4
  assert.match(raw.subarray(0, at).toString('latin1'), /transfer-encoding: chunked/i)
  const chunks: string[] = []
  for (;;) {
    const eol = raw.indexOf('\r\n', at)
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16)
    if (size === 0) return chunks
    chunks.push(raw.subarray(eol + 2, eol + 2 + size).toString('utf8'))
    at = eol + 2 + size + 2
  }
}

describe('sim: a stream without inter-token delay', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--ttft-ms', '0', '--itl-ms', '0', '--tokens', '6'])
  })
  after(() => sim.stop())

  test('still sends every SSE event as its own HTTP chunk, as vLLM does', async () => {
    const chunks = await rawChunks(sim.url, { ...CHAT, stream: true, stream_options: { include_usage: true } })
    const events = chunks.join('').split('\n\n').filter(Boolean)
    // role, 6 tokens, finish, usage, [DONE]
    assert.equal(events.length, 10)
    // One chunk per event, but the tail (finish, usage, [DONE]) goes in the final write.
    assert.ok(chunks.length >= 7, `only ${chunks.length} chunks for ${events.length} events`)
    for (const c of chunks) assert.match(c, /^data: .*\n\n$/s, 'a chunk holds whole events')
    assert.match(chunks[0], /"role":"assistant"/)
    assert.equal(chunks.at(-1)!.trim().endsWith('data: [DONE]'), true)
  })
})
