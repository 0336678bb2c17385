import { z } from 'zod'
import type { Config, Limits } from '../config/index.js'
import { InvalidRequest } from '../errors/index.js'
import { LIMIT_NAMES, mergeRoleLimits } from '../auth/index.js'
import type { UsageFilter } from '../quota/types.js'

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/

/** Parses an ISO 8601 date or date-time (with zone); null for anything else, e.g. 2025-02-30. */
export function parseIsoDate(value: string): Date | null {
  const m = ISO_DATE.exec(value)
  if (!m) return null
  const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value)
  if (Number.isNaN(date.getTime())) return null
  // JavaScript rolls 2025-02-30 over to March; a calendar that does not have the day is a 400.
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const calendar = new Date(Date.UTC(y, mo - 1, d))
  if (calendar.getUTCFullYear() !== y || calendar.getUTCMonth() !== mo - 1 || calendar.getUTCDate() !== d) return null
  return date
}

const isoDate = z.string().refine((v) => parseIsoDate(v) !== null, { error: 'expected an ISO 8601 date' })
const positiveInt = z.number().int().positive()
// Subjects key quota counters in Redis hash tags (`{subject}`): no braces, blanks or controls.
const subject = z.string().regex(/^[^\s{}\x00-\x1f\x7f]{1,256}$/, { error: 'expected 1-256 visible characters without braces' })
const plainText = z.string().trim().min(1).max(200).regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must not contain control characters' })

const limitsBody = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
  tokensPerDay: positiveInt.optional(),
  maxConcurrent: positiveInt.optional(),
  maxTokensPerRequest: positiveInt.optional(),
})

export const createKeyBody = z.strictObject({
  name: plainText,
  subject: subject.optional(),
  roles: z.array(z.string().min(1).max(200)).min(1).max(50),
  models: z.array(z.string().min(1).max(256)).min(1).max(500).nullable().optional(),
  expiresAt: isoDate.nullable().optional(),
  limits: limitsBody.nullable().optional(),
})

export type CreateKeyBody = z.infer<typeof createKeyBody>

const usageQuery = z.strictObject({
  subject: z.string().min(1).max(256).optional(),
  model: z.string().min(1).max(256).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
})

// Field names are echoed only when they look like field names: a client that pasted a
// credential as a key must not get it back inside an error message (or a log line).
const SHOWABLE = /^[A-Za-z_][A-Za-z0-9_.[\]]{0,40}$/

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[')
}

/** Validates with `schema`, turning the first problem into an OpenAI-shaped 400. */
export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.filter((k) => SHOWABLE.test(k))
    const param = pathOf([...issue.path, ...(names.length ? [names[0]] : [])])
    const shown = names.length ? names.map((k) => `"${k}"`).join(', ') : 'a field'
    throw new InvalidRequest(`unknown ${what} ${shown}`, { param: SHOWABLE.test(param) ? param : null, reason: 'unknown_field' })
  }
  const param = pathOf(issue.path)
  const safeParam = param && SHOWABLE.test(param) ? param : null
  throw new InvalidRequest(`${safeParam ?? (issue.path.length ? what : 'body')}: ${issue.message}`, { param: safeParam, reason: 'invalid_field' })
}

/** Checks a new key against the config: known roles, limits no higher than the roles' merged ones. */
export function checkKeyAgainstConfig(config: Config, body: CreateKeyBody, now: Date): void {
  const unknown = body.roles.filter((r) => !Object.hasOwn(config.roles, r))
  if (unknown.length > 0) {
    throw new InvalidRequest(`unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((r) => JSON.stringify(r)).join(', ')}`, {
      param: 'roles',
      reason: 'unknown_role',
    })
  }
  if (body.expiresAt && parseIsoDate(body.expiresAt)!.getTime() <= now.getTime()) {
    throw new InvalidRequest('expiresAt must be in the future', { param: 'expiresAt', reason: 'invalid_field' })
  }
  if (body.limits) {
    const roleLimits: Limits = mergeRoleLimits(body.roles.map((r) => config.roles[r]))
    for (const name of LIMIT_NAMES) {
      const wanted = body.limits[name]
      const allowed = roleLimits[name]
      if (wanted !== undefined && allowed !== undefined && wanted > allowed) {
        throw new InvalidRequest(`limits.${name} (${wanted}) is above the roles' limit (${allowed}); a key can only lower limits`, {
          param: `limits.${name}`,
          reason: 'limit_too_high',
        })
      }
    }
  }
}

/** The `GET /admin/usage` query as a UsageFilter with UTC days; 400 on anything odd. */
export function parseUsageQuery(query: Record<string, string>): UsageFilter {
  const q = parseOrThrow(usageQuery, query, 'query parameter')
  const day = (v: string | undefined) => (v === undefined ? undefined : parseIsoDate(v)!.toISOString().slice(0, 10))
  const filter: UsageFilter = { subject: q.subject, model: q.model, from: day(q.from), to: day(q.to) }
  if (filter.from && filter.to && filter.from > filter.to) {
    throw new InvalidRequest('from must not be after to', { param: 'from', reason: 'invalid_field' })
  }
  for (const k of ['subject', 'model', 'from', 'to'] as const) if (filter[k] === undefined) delete filter[k]
  return filter
}
