export {
  initTelemetry,
  noopTelemetry,
  type Telemetry,
  type TelemetryEnv,
  type RequestSpan,
  type SpanFacts,
} from './telemetry.js'
export { parseTraceparent, formatTraceparent } from './traceparent.js'
