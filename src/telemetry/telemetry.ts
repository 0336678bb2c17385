import { createRequire } from 'node:module'
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
} from '@opentelemetry/api'
import { formatTraceparent, parseTraceparent } from './traceparent.js'

// The SDK and exporter load only when tracing is on: importing them costs ~0.6 s and ~50 MB.
const load = createRequire(import.meta.url)
type SdkModule = typeof import('@opentelemetry/sdk-node')
type ExporterModule = typeof import('@opentelemetry/exporter-trace-otlp-http')

/** What the proxy learns about a request, as span attributes. */
export interface SpanFacts {
  model?: string | null
  upstream?: string | null
  replica?: string | null
  status?: number | null
}

/** One request's span. `traceparent` goes to the replica: same trace, this span as parent. */
export interface RequestSpan {
  readonly traceparent: string | null
  setAttributes(facts: SpanFacts): void
  /** Ends the span; later calls do nothing. */
  end(): void
}

export interface Telemetry {
  readonly enabled: boolean
  /** Starts the span of one gateway request, as a child of the client's `traceparent` if it sent a valid one. */
  startRequestSpan(route: string, incomingTraceparent?: string | null): RequestSpan
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>
}

const noop = (): void => undefined
const NOOP_SPAN: RequestSpan = Object.freeze({ traceparent: null, setAttributes: noop, end: noop })

/** Tracing off: spans cost nothing; a valid incoming traceparent is passed through unchanged. */
export const noopTelemetry: Telemetry = Object.freeze({
  enabled: false,
  startRequestSpan(_route: string, incoming?: string | null): RequestSpan {
    if (!incoming || parseTraceparent(incoming) === null) return NOOP_SPAN
    return { traceparent: incoming.trim(), setAttributes: noop, end: noop }
  },
  shutdown: async () => undefined,
})

export type TelemetryEnv = Readonly<Record<string, string | undefined>>

/**
 * Starts OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set: spans
 * are batched and exported over OTLP/HTTP with JSON bodies. Service name `gatehouse` unless
 * OTEL_SERVICE_NAME says otherwise. Without an endpoint (or with OTEL_SDK_DISABLED=true) it
 * returns `noopTelemetry`.
 */
export function initTelemetry(env: TelemetryEnv): Telemetry {
  const url = tracesUrl(env)
  if (!url || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return noopTelemetry
  const { NodeSDK } = load('@opentelemetry/sdk-node') as SdkModule
  const { OTLPTraceExporter } = load('@opentelemetry/exporter-trace-otlp-http') as ExporterModule
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'gatehouse',
    traceExporter: new OTLPTraceExporter({ url }),
    // Traces only: Prometheus serves the metrics, and the SDK would otherwise add OTLP
    // metric and log exporters by default.
    metricReaders: [],
    logRecordProcessors: [],
  })
  sdk.start()
  const tracer = trace.getTracer('gatehouse')
  let stopped: Promise<void> | null = null

  return {
    enabled: true,
    startRequestSpan(route, incoming) {
      const parent = parseTraceparent(incoming)
      const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT
      const span = tracer.startSpan(route, { kind: SpanKind.SERVER, attributes: { 'http.route': route } }, ctx)
      const sc = span.spanContext()
      let ended = false
      return {
        traceparent: isSpanContextValid(sc) ? formatTraceparent(sc) : parent ? formatTraceparent(parent) : null,
        setAttributes(facts) {
          if (ended) return
          if (facts.model) span.setAttribute('gen_ai.request.model', facts.model)
          if (facts.upstream) span.setAttribute('gatehouse.upstream', facts.upstream)
          if (facts.replica) span.setAttribute('gatehouse.replica', facts.replica)
          if (typeof facts.status === 'number') {
            span.setAttribute('http.response.status_code', facts.status)
            if (facts.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
          }
        },
        end() {
          if (ended) return
          ended = true
          span.end()
        },
      }
    },
    shutdown() {
      stopped ??= sdk.shutdown().finally(() => {
        // Unregister the globals so a later initTelemetry in the same process starts clean.
        trace.disable()
        context.disable()
        propagation.disable()
      })
      return stopped
    },
  }
}

/** OTLP's rule: the signal-specific endpoint as is, else the base endpoint + /v1/traces. */
function tracesUrl(env: TelemetryEnv): string | null {
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (specific) return specific
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  if (!base) return null
  return `${base.replace(/\/+$/, '')}/v1/traces`
}
