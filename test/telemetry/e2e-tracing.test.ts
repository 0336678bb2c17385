import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey, simRequests } from '../e2e/helpers.js'
import { parseTraceparent } from '../../src/telemetry/index.js'
import { attr, spansOf, startReceiver } from './otlp-receiver.js'

// Tracing through a real gateway: the client's trace continues at the gateway, the replica
// gets the gateway span as its parent, and the span reaches an OTLP/HTTP receiver.

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

describe('tracing through the gateway', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let vllm: SimHandle
  let gw: GatewayHandle
  let key: string

  before(async () => {
    receiver = await startReceiver()
    vllm = await startSim('vllm', ['--model', '/models/mistral-7b', '--tokens', '3'])
    ;({ gw, key } = await gatewayWithKey(config(vllm.url), ['dev'], { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }))
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
    await receiver?.close()
  })

  it('the replica sees the client trace id with the gateway span as parent; the span is exported', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c'
    const clientSpan = 'b7ad6b7169203331'
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        traceparent: `00-${traceId}-${clientSpan}-01`,
      },
      body: JSON.stringify({ model: 'mistral', messages: [{ role: 'user', content: 'hi' }] }),
    })
    assert.equal(res.status, 200)
    await res.arrayBuffer()
    const [seen] = (await simRequests(vllm.url, '/v1/chat/completions')).slice(-1)
    const upstream = parseTraceparent(seen.headers.traceparent)
    assert.ok(upstream, `replica got traceparent ${seen.headers.traceparent}`)
    assert.equal(upstream.traceId, traceId)
    assert.notEqual(upstream.spanId, clientSpan)

    // SIGTERM shuts telemetry down, which exports the batched spans.
    assert.equal(await gw.stop('SIGTERM'), 0)
    const spans = spansOf(receiver.requests).filter((s) => s.traceId === traceId)
    assert.equal(spans.length, 1)
    const [span] = spans
    assert.equal(span.spanId, upstream.spanId)
    assert.equal(span.parentSpanId, clientSpan)
    assert.equal(attr(span.attributes, 'http.route'), '/v1/chat/completions')
    assert.equal(attr(span.attributes, 'gen_ai.request.model'), 'mistral')
    assert.equal(attr(span.attributes, 'gatehouse.upstream'), 'vllm')
    assert.equal(attr(span.attributes, 'gatehouse.replica'), new URL(vllm.url).origin)
    assert.equal(attr(span.attributes, 'http.response.status_code'), 200)
  })
})
