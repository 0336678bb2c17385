import { test } from 'node:test'
import { spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { initTelemetry, noopTelemetry, parseTraceparent } from '../../src/telemetry/index.js'
import { attr, spansOf, startReceiver } from './otlp-receiver.js'

test('a request span reaches an OTLP/HTTP receiver with its attributes, as a child of the client trace', async (t) => {
  const receiver = await startReceiver()
  t.after(() => receiver.close())
  const telemetry = initTelemetry({ OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/` })
  t.after(() => telemetry.shutdown())
  assert.equal(telemetry.enabled, true)

  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const span = telemetry.startRequestSpan('/v1/chat/completions', incoming)
  const outgoing = parseTraceparent(span.traceparent)
  assert.ok(outgoing, `valid traceparent: ${span.traceparent}`)
  assert.equal(outgoing.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
  assert.notEqual(outgoing.spanId, '00f067aa0ba902b7')
  span.setAttributes({ model: 'mistral-7b-instruct', upstream: 'vllm-mistral', replica: 'http://10.0.0.11:8000', status: 200 })
  span.end()
  span.end()
  await telemetry.shutdown()

  assert.deepEqual(receiver.paths, ['POST /v1/traces application/json'])
  const spans = spansOf(receiver.requests)
  assert.equal(spans.length, 1)
  const [exported] = spans
  assert.equal(exported.name, '/v1/chat/completions')
  assert.equal(exported.traceId, outgoing.traceId)
  assert.equal(exported.spanId, outgoing.spanId)
  assert.equal(exported.parentSpanId, '00f067aa0ba902b7')
  assert.equal(attr(exported.attributes, 'http.route'), '/v1/chat/completions')
  assert.equal(attr(exported.attributes, 'gen_ai.request.model'), 'mistral-7b-instruct')
  assert.equal(attr(exported.attributes, 'gatehouse.upstream'), 'vllm-mistral')
  assert.equal(attr(exported.attributes, 'gatehouse.replica'), 'http://10.0.0.11:8000')
  assert.equal(attr(exported.attributes, 'http.response.status_code'), 200)
  assert.equal(attr(receiver.requests[0].resourceSpans[0].resource.attributes, 'service.name'), 'gatehouse')
})

test('without a client traceparent the span starts a new trace; OTEL_SERVICE_NAME names the service', async (t) => {
  const receiver = await startReceiver()
  t.after(() => receiver.close())
  const telemetry = initTelemetry({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'gatehouse-eu' })
  t.after(() => telemetry.shutdown())
  const span = telemetry.startRequestSpan('/v1/embeddings', 'not-a-traceparent')
  const outgoing = parseTraceparent(span.traceparent)
  assert.ok(outgoing)
  span.end()
  await telemetry.shutdown()
  const [rs] = receiver.requests[0].resourceSpans
  const [exported] = rs.scopeSpans[0].spans
  assert.equal(exported.traceId, outgoing.traceId)
  assert.equal(exported.parentSpanId ?? '', '')
  assert.equal(attr(rs.resource.attributes, 'service.name'), 'gatehouse-eu')
})

test('without an endpoint tracing is off: one shared no-op, the client traceparent passed through', async () => {
  const telemetry = initTelemetry({})
  assert.equal(telemetry, noopTelemetry)
  const a = telemetry.startRequestSpan('/v1/models')
  const b = telemetry.startRequestSpan('/v1/models', null)
  assert.equal(a, b)
  assert.equal(a.traceparent, null)
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  assert.equal(telemetry.startRequestSpan('/v1/models', incoming).traceparent, incoming)
  assert.equal(telemetry.startRequestSpan('/v1/models', '00-00000000000000000000000000000000-00f067aa0ba902b7-01').traceparent, null)
  await telemetry.shutdown()
})

test('with tracing off the OpenTelemetry SDK is never loaded', () => {
  const script = `
    import { createRequire } from 'node:module'
    const { initTelemetry } = await import(${JSON.stringify(new URL('../../src/telemetry/index.js', import.meta.url).href)})
    const off = initTelemetry({})
    off.startRequestSpan('/v1/models', null).end()
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('sdk-node') || k.includes('exporter-trace'))
    process.stdout.write(JSON.stringify({ enabled: off.enabled, loaded }))
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { enabled: false, loaded: [] })
})
