import { TraceFlags, type SpanContext } from '@opentelemetry/api'

// W3C Trace Context: version-traceid-parentid-flags, lowercase hex. Later versions may append fields.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** The span context a valid `traceparent` header names, or null for a missing or malformed one. */
export function parseTraceparent(header: string | null | undefined): SpanContext | null {
  if (!header || header.length > 512) return null
  const m = TRACEPARENT.exec(header.trim())
  if (!m) return null
  const [, version, traceId, spanId, flags, rest] = m
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null
  return { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true }
}

/** The `traceparent` header (version 00) for a span context. */
export function formatTraceparent(ctx: Pick<SpanContext, 'traceId' | 'spanId' | 'traceFlags'>): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}
