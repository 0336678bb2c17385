import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startFloor } from '../../bench/setup.js'
import { startSim, type SimHandle, type Child } from '../helpers/processes.js'

// bench:cpu's floors are instruments: their CPU per request means something only if they relay
// what the replica sends, whole replies (Content-Length) and streams (chunked) alike.

let sim: SimHandle
const floors: Child[] = []

before(async () => {
  sim = await startSim('vllm', ['--tokens', '16', '--model', 'sim-model'])
})

after(async () => {
  for (const f of floors) await f.stop()
  await sim?.stop()
})

const chat = (stream: boolean) =>
  JSON.stringify({ model: 'sim-model', stream, messages: [{ role: 'user', content: 'hi' }] })

async function post(url: string, body: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

/** The reply without what differs per request (ids, timestamps). */
const shape = (text: string) => text.replace(/"id":"[^"]*"/g, '"id":"x"').replace(/"created":\d+/g, '"created":0')

for (const kind of ['undici', 'socket'] as const) {
  test(`${kind}-floor relays whole replies and streams as the replica sends them, request after request`, async () => {
    const floor = await startFloor(kind, sim.url, '0-1')
    floors.push(floor.child)
    for (let i = 0; i < 3; i++) {
      for (const stream of [false, true]) {
        const direct = await post(sim.url, chat(stream))
        const relayed = await post(floor.url, chat(stream))
        assert.equal(relayed.status, 200)
        assert.equal(relayed.type, direct.type)
        assert.equal(shape(relayed.text), shape(direct.text))
        if (stream) assert.match(relayed.text, /data: \[DONE\]\n\n$/)
        else assert.equal((JSON.parse(relayed.text) as { usage: { completion_tokens: number } }).usage.completion_tokens, 16)
      }
    }
    assert.equal((await post(floor.url, '{not json')).status, 400)
  })
}
