/** What the inference path needs from tracing; the telemetry module provides it. */
export interface RequestSpan {
  /** The `traceparent` to send upstream (this span as parent), or null. */
  readonly traceparent: string | null
  setAttributes(attrs: Record<string, string | number>): void
  end(): void
}

export interface Tracing {
  startRequestSpan(route: string, incomingTraceparent: string | string[] | undefined): RequestSpan
  shutdown(): Promise<void>
}

/** Tracing off: passes the client's traceparent through and records nothing. */
export function noTracing(): Tracing {
  const noop = { setAttributes() {}, end() {} }
  return {
    startRequestSpan: (_route, incoming) => ({
      ...noop,
      traceparent: typeof incoming === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(incoming) ? incoming : null,
    }),
    shutdown: async () => {},
  }
}
