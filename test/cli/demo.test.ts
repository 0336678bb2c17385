import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { BIN, startChild } from '../helpers/processes.js'
import { freePort } from '../helpers/ports.js'

// `npm run demo` as a new user meets it: the printed key and base URL work with the SDK,
// the printed curl works, and Ctrl-C stops the simulators too.
test('the demo prints a working key and examples, and stops its children on Ctrl-C', async () => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-demo-'))
  const demo = startChild(process.execPath, [BIN, 'demo'], { GATEHOUSE_DEMO_PORT: String(port), GATEHOUSE_DEMO_DATA: dir, REDIS_URL: '' })
  try {
    const deadline = Date.now() + 20000
    while (!/Press Ctrl-C/.test(demo.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const out = demo.output()
    const key = /API key\s+(ghk_[A-Za-z0-9_-]+)/.exec(out)?.[1]
    const base = /Base URL\s+(\S+)/.exec(out)?.[1]
    assert.ok(key && base, `no key or base URL printed:\n${out}`)
    assert.equal(base, `http://127.0.0.1:${port}/v1`)

    const client = new OpenAI({ apiKey: key, baseURL: base, maxRetries: 0 })
    const chat = await client.chat.completions.create({ model: 'mistral-7b-instruct', messages: [{ role: 'user', content: 'Hello!' }] })
    assert.equal(chat.model, 'mistral-7b-instruct')
    assert.ok((chat.choices[0].message.content ?? '').length > 0)
    let streamed = ''
    const stream = await client.chat.completions.create({ model: 'llama3.2', stream: true, messages: [{ role: 'user', content: 'Hello!' }] })
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? ''
    assert.ok(streamed.length > 0)

    // The curl example, as printed, with the same body.
    const curlBody = /-d '([^']+)'/.exec(out)?.[1]
    assert.ok(curlBody)
    const res = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: curlBody,
    })
    assert.equal(res.status, 200)

    const replicas = /Replicas\s+(.+)/.exec(out)?.[1].trim().split(/\s+/) ?? []
    assert.equal(replicas.length, 3)
    for (const r of replicas) assert.equal((await fetch(`${r}/v1/models`)).status, 200)
    demo.proc.kill('SIGINT')
    const code = await new Promise<number | null>((r) => demo.proc.once('exit', (c) => r(c)))
    assert.equal(code, 0)
    const stillUp = await fetch(`${base}/models`).then(
      () => true,
      () => false,
    )
    assert.equal(stillUp, false, 'the gateway still answers after Ctrl-C')
    await new Promise((r) => setTimeout(r, 300))
    for (const r of replicas) {
      const up = await fetch(`${r}/v1/models`).then(() => true, () => false)
      assert.equal(up, false, `simulator ${r} still runs after Ctrl-C`)
    }
  } finally {
    await demo.stop()
  }
})
