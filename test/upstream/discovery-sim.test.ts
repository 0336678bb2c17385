import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createBalancer } from '../../src/upstream/index.js'
import { freePort } from '../helpers/ports.js'
import { eventually } from './local-replica.js'
import { chatBody, load, send, simFor } from './sim-driver.js'

// DNS discovery over real simulators. The test is the DNS server: `resolver` answers from
// `records`, and each simulator listens on its own loopback address on one shared port.
test('dns: simulators join and leave as the test changes the A records, without failing a stream', async (t) => {
  const port = await freePort()
  const s2 = await simFor(t, 'vllm', ['--id', 's2', '--tokens', '12'], '127.0.0.2', port)
  const s3 = await simFor(t, 'vllm', ['--id', 's3', '--tokens', '12'], '127.0.0.3', port)
  let records = ['127.0.0.2']
  const config = parseConfig({
    upstreams: { u: { kind: 'vllm', dns: { name: 'vllm-headless.llm.svc.cluster.local', port, refreshMs: 100 } } },
  })
  const b = createBalancer({ config, log: silentLogger, resolver: async () => records })
  t.after(() => b.close())
  await b.ready()
  const first = await load(10, 2, () => send(b, 'u', chatBody(false)))
  assert.ok(first.every((s) => s.status === 200 && s.replica?.origin === s2.url))

  records = ['127.0.0.2', '127.0.0.3']
  await eventually('s3 joined', () => b.healthyReplicas('u').length === 2)
  const both = await load(40, 4, () => send(b, 'u', chatBody(false)))
  assert.ok(both.some((s) => s.replica?.origin === s3.url))

  // A slow stream is running on s2 when s2 leaves the records: it still ends with [DONE].
  await fetch(`${s2.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 80 }) })
  const s3Replica = b.healthyReplicas('u').find((r) => r.origin === s3.url)!
  const b2 = b.pick('u', new Set([s3Replica]))!
  assert.equal(b2.origin, s2.url)
  b.begin(b2)
  const started = performance.now()
  const res = await b2.dispatcher.request({ origin: b2.origin, path: '/v1/chat/completions', method: 'POST', body: chatBody(true, 12) })
  const streamed = res.body.text()
  records = ['127.0.0.3']
  await eventually('s2 draining', () => b.snapshot().find((s) => s.replica === s2.url)?.state === 'draining')
  const later = await load(10, 2, () => send(b, 'u', chatBody(false)))
  assert.ok(later.every((s) => s.status === 200 && s.replica?.origin === s3.url))
  const text = await streamed
  assert.equal(res.statusCode, 200)
  assert.match(text, /data: \[DONE\]/)
  b.end(b2, { status: 200, error: null, durationMs: performance.now() - started })
  await eventually('s2 gone', () => b.snapshot().every((s) => s.replica !== s2.url))
})
