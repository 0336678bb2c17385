import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import OpenAI, { APIError } from 'openai'
import { startGateway, type GatewayHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey } from '../e2e/helpers.js'
import { chunkEvent, okChat, startFakeReplica, usageEvent, type FakeReplica, type ReplicaBehaviour } from './fake-replica.js'
import { alive, assertOpenAIError, auditLineOf, faultConfig, procSample, usageOf, waitUntil } from './harness.js'

// Replies no simulator would send, from a node:http fake replica: invalid JSON, truncated and
// malformed SSE, huge bodies. The client gets a clean end or a clear OpenAI-shaped error, the
// audit line and the settlement are written, memory stays bounded, the gateway keeps serving.

const MiB = 1024 * 1024

describe('replica faults (fake replica): bad bodies', () => {
  let fake: FakeReplica
  let gw: GatewayHandle
  let key: string
  let sdk: OpenAI
  const subject = 'replica-bodies'
  let seq = 0
  let settled = 0

  before(async () => {
    fake = await startFakeReplica()
    const yaml = faultConfig({ models: { f: 'fake' }, upstreams: { fake: { targets: [fake.url], firstByteMs: 2000, idleMs: 2000 } } })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' })
    ;({ key } = await createKey(gw, { name: 'bodies', roles: ['user'], subject }))
    sdk = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 30_000 })
  })
  after(async () => {
    await gw?.stop()
    await fake?.close()
  })

  const messages = [{ role: 'user' as const, content: 'hi' }]
  const post = (id: string, stream: boolean) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: 'f', messages, stream }),
    })

  /** Runs one request against `behaviour`; checks its audit line and that it was settled. */
  async function withReplica(behaviour: ReplicaBehaviour, stream: boolean): Promise<{ status: number; text: string; id: string }> {
    fake.behaviour = behaviour
    const id = `faults-body-${++seq}`
    const res = await post(id, stream)
    const text = await res.text()
    const line = await auditLineOf(gw, id)
    assert.equal(line.status, res.status, 'the audit line disagrees with the status sent')
    settled++
    assert.ok(await waitUntil(async () => (await usageOf(gw, subject)).requests === settled), 'the request was not settled')
    return { status: res.status, text, id }
  }

  /** After every case: alive, /healthz 200, and a good reply on the next request. */
  async function stillServing(): Promise<void> {
    fake.behaviour = okChat()
    assert.ok(alive(gw), 'the gateway process exited')
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200)
    const ok = await waitUntil(async () => {
      const res = await post(`faults-body-next-${++seq}`, false)
      await res.arrayBuffer()
      if (res.status === 200) settled++
      return res.status === 200
    }, 12_000)
    assert.ok(ok, 'the next request was not served')
    await waitUntil(async () => (await usageOf(gw, subject)).requests === settled)
  }

  /** The events of an SSE text: every one must be JSON or [DONE] (a client SDK parses each). */
  function sseProblems(text: string): string[] {
    const problems: string[] = []
    for (const event of text.split(/\r?\n\r?\n/)) {
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue
        const data = line.slice(5).trim()
        if (data === '[DONE]') continue
        try {
          JSON.parse(data)
        } catch {
          problems.push(data.slice(0, 80))
        }
      }
    }
    return problems
  }

  it('invalid JSON with status 200 or 500: 502 upstream_error, OpenAI-shaped, also through the SDK', async () => {
    const cases: [number, string, string][] = [
      [200, 'application/json', '{"id":"chatcmpl-1","choices":[{"message":'],
      [200, 'text/html', '<html><body>Bad Gateway</body></html>'],
      [500, 'text/plain', 'Internal Server Error'],
    ]
    for (const [status, type, body] of cases) {
      const r = await withReplica((_req, res) => res.writeHead(status, { 'content-type': type }).end(body), false)
      assert.equal(r.status, 502, `status ${r.status} for a replica ${status} with ${type}`)
      assertOpenAIError(r.text, 'upstream_error')
      await stillServing()
    }
    fake.behaviour = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": [')
    await assert.rejects(sdk.chat.completions.create({ model: 'f', messages }), (err: unknown) => {
      assert.ok(err instanceof APIError && err.status === 502 && err.code === 'upstream_error', String(err))
      return true
    })
    settled++
    await stillServing()
  })

  it('a reply split over several writes, with multi-byte text: relayed byte for byte, content-length in bytes', async () => {
    const reply = JSON.stringify({
      id: 'chatcmpl-utf8', object: 'chat.completion', created: 1, model: 'f',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Grüße, 東京 🚀 ' + 'é'.repeat(3000) }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 4, completion_tokens: 9, total_tokens: 13 },
    })
    const bytes = Buffer.from(reply)
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bytes.length) })
      // Cut inside a multi-byte character: the gateway must not decode chunk by chunk.
      const cut = bytes.indexOf(Buffer.from('東')) + 1
      res.write(bytes.subarray(0, cut))
      setTimeout(() => res.end(bytes.subarray(cut)), 20)
    }, false)
    assert.equal(r.status, 200)
    assert.equal(r.text, reply)
    const res = await post(`faults-body-${++seq}`, false)
    assert.equal(res.headers.get('content-length'), String(bytes.length))
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes)
    settled++
    const line = await auditLineOf(gw, r.id)
    assert.deepEqual([line.promptTokens, line.completionTokens, line.usageSource], [4, 9, 'upstream'])
    await stillServing()
  })

  it('events the replica writes in one burst, an HTTP chunk each, reach the client intact in a few writes', async () => {
    const events = [...Array.from({ length: 40 }, (_, i) => chunkEvent(`w${i} `)), usageEvent(5, 40), 'data: [DONE]\n\n']
    fake.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.cork()
      for (const e of events) res.write(e)
      res.uncork()
      res.end()
    }
    const id = `faults-body-${++seq}`
    // node:http emits one 'data' per HTTP chunk it parses, so this counts the gateway's writes.
    const { text, pieces } = await new Promise<{ text: string; pieces: number }>((resolve, reject) => {
      const req = request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
      }, (res) => {
        let text = ''
        let pieces = 0
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          text += d
          pieces++
        })
        res.on('end', () => resolve({ text, pieces }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(JSON.stringify({ model: 'f', messages, stream: true, stream_options: { include_usage: true } }))
    })
    assert.equal(text, events.join(''), 'every event, byte for byte, in order')
    assert.ok(pieces <= 5, `${events.length} events came in ${pieces} writes`)
    settled++
    assert.ok(await waitUntil(async () => (await usageOf(gw, subject)).requests === settled), 'the request was not settled')
    const line = await auditLineOf(gw, id)
    assert.deepEqual([line.status, line.completionTokens, line.usageSource], [200, 40, 'upstream'])
    await stillServing()
  })

  it('a 4xx whose body is not JSON (a proxy page): the client still gets an OpenAI-shaped error', async () => {
    const r = await withReplica((_req, res) => res.writeHead(400, { 'content-type': 'text/html' }).end('<html><body>400 Bad Request</body></html>'), false)
    assert.ok(r.status >= 400 && r.status < 600, `status ${r.status}`)
    assertOpenAIError(r.text)
    await stillServing()
  })

  it('a stream truncated mid-event (replica ends the response): a clean end or an error event, never a broken event', async () => {
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(`${chunkEvent('one ')}${chunkEvent('two ')}data: {"id":"chatcmpl-fake","object":"chat.comp`)
    }, true)
    assert.equal(r.status, 200)
    assert.match(r.text, /one /)
    assert.deepEqual(sseProblems(r.text), [], 'the client received an event it cannot parse')
    assert.equal((await auditLineOf(gw, r.id)).usageSource, 'estimated')
    await stillServing()
  })

  it('a stream cut mid-event (replica connection destroyed): the client gets an upstream_error event it can parse', async () => {
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`${chunkEvent('one ')}data: {"id":"chatcmpl-fake","obj`, () => setTimeout(() => res.destroy(), 50))
    }, true)
    assert.equal(r.status, 200)
    assert.deepEqual(sseProblems(r.text), [], 'the client received an event it cannot parse')
    assert.match(r.text, /"code":"upstream_error"/)
    const line = await auditLineOf(gw, r.id)
    assert.equal(line.reason, 'dropped')
    assert.equal(line.usageSource, 'estimated')
    await stillServing()
  })

  it('a replica whose events are followed in the same burst by broken HTTP framing: the client gets those events, then the error', async () => {
    const events = Array.from({ length: 5 }, (_, i) => chunkEvent(`e${i} `))
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.cork()
      for (const e of events) res.write(e)
      // Not a chunk size: the gateway's HTTP parser fails in the same read as the events.
      res.socket?.write('zz\r\n\r\n')
      res.uncork()
      setTimeout(() => res.socket?.destroy(), 50)
    }, true)
    assert.equal(r.status, 200)
    assert.ok(r.text.startsWith(events.join('')), 'the events written before the failure, in order')
    assert.deepEqual(sseProblems(r.text), [])
    assert.match(r.text.slice(events.join('').length), /"code":"upstream_error"/)
    const line = await auditLineOf(gw, r.id)
    assert.deepEqual([line.reason, line.usageSource, line.completionTokens], ['dropped', 'estimated', 5])
    await stillServing()
  })

  it('a malformed SSE stream (noise, invalid UTF-8, CRLF, non-JSON data) is relayed to its end and settled from its usage', async () => {
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(': a comment\n\nevent: weird\nid: 7\n\n')
      res.write(Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xfe, 0xc3, 0x28, 0x0a, 0x0a]))
      res.write(`${chunkEvent('ok ').replace('\n\n', '\r\n\r\n')}retry: 10\n\n`)
      res.end(`${usageEvent(7, 4)}data: [DONE]\n\n`)
    }, true)
    assert.equal(r.status, 200)
    assert.match(r.text, /data: \[DONE\]/)
    const line = await auditLineOf(gw, r.id)
    assert.equal(line.usageSource, 'upstream')
    assert.equal(line.completionTokens, 4)
    await stillServing()
  })

  it('a huge JSON reply (40 MiB): 502 upstream_error, memory bounded', async () => {
    const rssBefore = procSample(gw.proc.pid!).rssKb
    const r = await withReplica((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const piece = Buffer.alloc(MiB, 0x61)
      let sent = 0
      const pump = () => {
        while (sent < 40 && !res.destroyed) {
          sent++
          if (!res.write(piece)) return res.once('drain', pump)
        }
        res.end()
      }
      pump()
    }, false)
    assert.equal(r.status, 502)
    assertOpenAIError(r.text, 'upstream_error')
    const grown = (procSample(gw.proc.pid!).rssKb - rssBefore) / 1024
    assert.ok(grown < 120, `RSS grew by ${grown.toFixed(0)} MiB for a refused reply`)
    await stillServing()
  })

  it('a stream with one endless event (12 MiB without a separator): refused or relayed, memory bounded', async () => {
    const rssBefore = procSample(gw.proc.pid!).rssKb
    let peak = 0
    const sampler = setInterval(() => (peak = Math.max(peak, procSample(gw.proc.pid!).rssKb)), 50)
    try {
      const r = await withReplica((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: {"id":"x","choices":[{"delta":{"content":"')
        const piece = Buffer.alloc(256 * 1024, 0x61)
        let sent = 0
        const pump = () => {
          while (sent < 48 && !res.destroyed) {
            sent++
            if (!res.write(piece)) return res.once('drain', pump)
          }
          if (!res.destroyed) res.end('"}}]}\n\n')
        }
        pump()
      }, true)
      assert.ok(r.status === 200 || r.status === 502, `status ${r.status}`)
    } finally {
      clearInterval(sampler)
    }
    const grown = (peak - rssBefore) / 1024
    // Relaying or refusing one 12 MiB event needs at most a few copies of it in memory.
    assert.ok(grown < 48, `RSS grew by ${grown.toFixed(0)} MiB while relaying one 12 MiB event`)
    await stillServing()
  })
})
