import type { AuditEvent } from './types.js'

/** Who called, as far as the audit line needs it (an auth Principal fits). */
export interface AuditPrincipal {
  subject: string
  authMethod: 'oidc' | 'api_key' | 'admin_token'
  keyId: string | null
  roles?: readonly string[]
}

/** Facts about a finished /v1 request; anything left out is recorded as null. */
export interface RequestAuditInput {
  requestId: string
  route: string
  status: number
  durationMs: number
  ts?: Date
  principal?: AuditPrincipal | null
  /** The configured roles that applied; default: the principal's roles. */
  roles?: readonly string[] | null
  model?: string | null
  upstream?: string | null
  replica?: string | null
  promptTokens?: number | null
  completionTokens?: number | null
  usageSource?: 'upstream' | 'estimated' | null
  ttftMs?: number | null
  clientIp?: string | null
  userAgent?: string | null
  reason?: string | null
  /** Kept only under `includePrompts`. */
  prompt?: unknown
  completion?: unknown
}

/** Facts about one admin action. */
export interface AdminAuditInput {
  requestId: string
  route: string
  status: number
  durationMs: number
  action: string
  target?: string | null
  ts?: Date
  principal?: AuditPrincipal | null
  roles?: readonly string[] | null
  clientIp?: string | null
  userAgent?: string | null
  reason?: string | null
}

export interface AuditPolicy {
  includePrompts: boolean
}

const MAX_TEXT = 256

/** The audit line for a /v1 request: every SPEC field present, null where it does not apply. */
export function buildRequestAuditEvent(input: RequestAuditInput, policy: AuditPolicy): AuditEvent {
  const event = baseEvent(input, 'request')
  event.model = input.model ?? null
  event.upstream = input.upstream ?? null
  event.replica = input.replica ?? null
  event.promptTokens = input.promptTokens ?? null
  event.completionTokens = input.completionTokens ?? null
  event.usageSource = input.usageSource ?? null
  event.ttftMs = input.ttftMs === undefined || input.ttftMs === null ? null : roundMs(input.ttftMs)
  if (policy.includePrompts) {
    event.prompt = input.prompt ?? null
    event.completion = input.completion ?? null
  }
  return event
}

/** The audit line for an admin action (`action`, `target` set; request-only fields null). */
export function buildAdminAuditEvent(input: AdminAuditInput): AuditEvent {
  const event = baseEvent(input, 'admin')
  event.action = scrubText(input.action)
  event.target = input.target === undefined || input.target === null ? null : scrubText(input.target)
  return event
}

// One literal with every field, filled in afterwards: object spread is a V8 slow path here
// (~15 µs per event on Node 20), property stores on a complete shape are not.
// Key order here is the order on disk: the fields people scan first come first.
function baseEvent(input: RequestAuditInput | AdminAuditInput, type: AuditEvent['type']): AuditEvent {
  const p = input.principal ?? null
  return {
    ts: (input.ts ?? new Date()).toISOString(),
    type,
    requestId: input.requestId,
    subject: p ? p.subject : null,
    authMethod: p ? p.authMethod : 'none',
    keyId: p ? p.keyId : null,
    roles: input.roles ?? p?.roles ?? null,
    route: input.route,
    model: null,
    upstream: null,
    replica: null,
    status: input.status,
    promptTokens: null,
    completionTokens: null,
    usageSource: null,
    durationMs: roundMs(input.durationMs),
    ttftMs: null,
    clientIp: input.clientIp ?? null,
    userAgent: input.userAgent === undefined || input.userAgent === null ? null : scrubText(input.userAgent),
    reason: input.reason === undefined || input.reason === null ? null : scrubText(input.reason),
    action: null,
    target: null,
  }
}

/** Removes prompt and completion text unless the policy allows it (the sink applies it to every event). */
export function redactPrompt(event: AuditEvent, policy: AuditPolicy): AuditEvent {
  if (policy.includePrompts || (event.prompt === undefined && event.completion === undefined)) return event
  const { prompt: _prompt, completion: _completion, ...rest } = event
  return rest
}

/** The prompt part of an OpenAI request body: `messages`, `prompt` or `input` (+ `instructions`). */
export function promptFromBody(body: unknown): unknown {
  if (body === null || typeof body !== 'object') return null
  const b = body as Record<string, unknown>
  if (b.messages !== undefined) return b.messages
  if (b.prompt !== undefined) return b.prompt
  if (b.input === undefined) return null
  return b.instructions === undefined ? b.input : { instructions: b.instructions, input: b.input }
}

// API keys, bearer values and JWTs, wherever a free-text field picked one up.
const CREDENTIAL = /ghk_[A-Za-z0-9_-]+|[Bb]earer\s+\S+|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g

/** Replaces anything credential-shaped with `[redacted]` and caps the length. */
export function scrubText(text: string): string {
  const capped = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text
  CREDENTIAL.lastIndex = 0
  return CREDENTIAL.test(capped) ? capped.replace(CREDENTIAL, '[redacted]') : capped
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000
}

const FREE_TEXT = ['reason', 'userAgent', 'action', 'target'] as const

/**
 * The event as it may be stored: prompt text only under `includePrompts`, free-text fields
 * scrubbed of anything credential-shaped. Returns the same object when nothing changes.
 */
export function sanitizeEvent(event: AuditEvent, policy: AuditPolicy): AuditEvent {
  let out = redactPrompt(event, policy)
  for (const field of FREE_TEXT) {
    const value = out[field]
    if (typeof value !== 'string') continue
    const clean = scrubText(value)
    if (clean !== value) out = { ...out, [field]: clean }
  }
  return out
}
