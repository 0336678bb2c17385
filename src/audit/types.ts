/** One audit line (SPEC section 5). Absent facts are null, never omitted. */
export interface AuditEvent {
  ts: string
  type: 'request' | 'admin'
  requestId: string
  subject: string | null
  authMethod: 'oidc' | 'api_key' | 'admin_token' | 'none'
  keyId: string | null
  roles: readonly string[] | null
  route: string
  model: string | null
  upstream: string | null
  replica: string | null
  status: number
  promptTokens: number | null
  completionTokens: number | null
  usageSource: 'upstream' | 'estimated' | null
  durationMs: number
  ttftMs: number | null
  clientIp: string | null
  userAgent: string | null
  reason: string | null
  /** Admin events only. */
  action?: string | null
  target?: string | null
  /** Only with `audit.includePrompts`. */
  prompt?: unknown
  completion?: unknown
}

/**
 * Where audit events go. `write` never blocks the request path (queued, written in batches).
 * `isHealthy` is false while writes fail (drives 503s under `audit.failClosed`).
 */
export interface AuditSink {
  write(event: AuditEvent): void
  isHealthy(): boolean
  flush(): Promise<void>
  /** Reopen the file (logrotate's SIGHUP). */
  reopen(): Promise<void>
  close(): Promise<void>
}
