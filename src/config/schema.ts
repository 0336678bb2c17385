import { z } from 'zod'

// The one description of gatehouse.yaml (SPEC section 2). Every object is strict, so a typo
// in a key is reported with its path instead of being silently ignored.

const positiveInt = z
  .number({ error: 'expected a positive integer' })
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' })
const port = z
  .number({ error: 'expected a port number' })
  .int({ error: 'expected a port number' })
  .min(0, { error: 'expected a port number' })
  .max(65535, { error: 'expected a port number' })
const nonEmpty = z.string({ error: 'expected a string' }).min(1, { error: 'must not be empty' })
const httpUrl = z
  .string({ error: 'expected a URL' })
  .regex(/^https?:\/\/[^\s/]+/, { error: 'expected an http:// or https:// URL' })

const listenSchema = z.strictObject({
  host: nonEmpty.default('0.0.0.0'),
  port: port.default(8080),
})

const metricsSchema = z.strictObject({
  host: nonEmpty.default('0.0.0.0'),
  port: port.default(9464),
})

const storeSchema = z.strictObject({
  // Empty string (from `${REDIS_URL:-}`) means "no Redis": the embedded store.
  redis: z
    .string({ error: 'expected a redis:// URL or an empty string' })
    .regex(/^(|rediss?:\/\/.+)$/, { error: 'expected a redis:// or rediss:// URL' })
    .nullable()
    .default(''),
  dataDir: nonEmpty.default('./data'),
  keyPrefix: nonEmpty.default('gh:'),
})

const oidcIssuerSchema = z.strictObject({
  issuer: httpUrl,
  audience: nonEmpty,
  rolesClaim: nonEmpty.default('roles'),
  subjectClaim: nonEmpty.default('sub'),
})

const authSchema = z.strictObject({
  oidc: z.array(oidcIssuerSchema).default([]),
  apiKeys: z.boolean({ error: 'expected true or false' }).default(true),
  adminRoles: z.array(nonEmpty).default([]),
  adminToken: z.string({ error: 'expected a string' }).nullable().default(''),
})

export const limitsSchema = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
  tokensPerDay: positiveInt.optional(),
  maxConcurrent: positiveInt.optional(),
  maxTokensPerRequest: positiveInt.optional(),
})

const roleSchema = limitsSchema.extend({
  models: z.array(nonEmpty).default(['*']),
})

const modelSchema = z.strictObject({
  upstream: nonEmpty,
  upstreamModel: nonEmpty.optional(),
})

const timeoutsSchema = z.strictObject({
  connectMs: positiveInt.default(2000),
  firstByteMs: positiveInt.default(120000),
  idleMs: positiveInt.default(60000),
})

const upstreamSchema = z
  .strictObject({
    kind: z.enum(['vllm', 'ollama', 'openai'], { error: 'expected vllm, ollama or openai' }),
    dns: z
      .strictObject({
        name: nonEmpty,
        port: port,
        scheme: z.enum(['http', 'https']).default('http'),
        refreshMs: positiveInt.default(5000),
      })
      .optional(),
    targets: z.array(httpUrl).min(1, { error: 'needs at least one target' }).optional(),
    apiKey: z.string({ error: 'expected a string' }).nullable().default(''),
    timeouts: timeoutsSchema.default({ connectMs: 2000, firstByteMs: 120000, idleMs: 60000 }),
    maxRetries: z.number().int().min(0).max(10).default(2),
  })
  .refine((u) => Boolean(u.dns) !== Boolean(u.targets), {
    error: 'needs exactly one of dns or targets',
  })

const auditSchema = z.strictObject({
  sink: z.enum(['file', 'stdout'], { error: 'expected file or stdout' }).default('file'),
  path: nonEmpty.default('./data/audit.jsonl'),
  includePrompts: z.boolean({ error: 'expected true or false' }).default(false),
  failClosed: z.boolean({ error: 'expected true or false' }).default(false),
})

export const configSchema = z
  .strictObject({
    listen: listenSchema.default({ host: '0.0.0.0', port: 8080 }),
    metrics: metricsSchema.default({ host: '0.0.0.0', port: 9464 }),
    maxBodyBytes: positiveInt.default(1048576),
    store: storeSchema.default({ redis: '', dataDir: './data', keyPrefix: 'gh:' }),
    auth: authSchema.default({ oidc: [], apiKeys: true, adminRoles: [], adminToken: '' }),
    defaultRole: z.string().nullable().default(null),
    roles: z.record(z.string(), roleSchema).default({}),
    models: z.record(z.string(), modelSchema).default({}),
    upstreams: z.record(z.string(), upstreamSchema).default({}),
    audit: auditSchema.default({
      sink: 'file',
      path: './data/audit.jsonl',
      includePrompts: false,
      failClosed: false,
    }),
  })

/**
 * Names that must refer to something configured. Checked on the raw document too, so a file
 * with type errors still gets its dangling references reported in the same run.
 */
export function crossReferenceProblems(doc: unknown): string[] {
  const problems: string[] = []
  if (!doc || typeof doc !== 'object') return problems
  const d = doc as { models?: unknown; upstreams?: unknown; roles?: unknown; defaultRole?: unknown }
  const upstreams = d.upstreams && typeof d.upstreams === 'object' ? (d.upstreams as Record<string, unknown>) : {}
  const roles = d.roles && typeof d.roles === 'object' ? (d.roles as Record<string, unknown>) : {}
  if (d.models && typeof d.models === 'object') {
    for (const [name, model] of Object.entries(d.models as Record<string, unknown>)) {
      const upstream = model && typeof model === 'object' ? (model as { upstream?: unknown }).upstream : undefined
      if (typeof upstream === 'string' && !Object.hasOwn(upstreams, upstream)) {
        problems.push(`models.${name}.upstream: unknown upstream "${upstream}"`)
      }
    }
  }
  if (typeof d.defaultRole === 'string' && !Object.hasOwn(roles, d.defaultRole)) {
    problems.push(`defaultRole: unknown role "${d.defaultRole}"`)
  }
  return problems
}

export type RawConfig = z.infer<typeof configSchema>
export type Limits = z.infer<typeof limitsSchema>
export type RoleConfig = z.infer<typeof roleSchema>
export type ModelConfig = z.infer<typeof modelSchema>
export type UpstreamConfig = z.infer<typeof upstreamSchema>
export type OidcIssuerConfig = z.infer<typeof oidcIssuerSchema>
export type AuditConfig = z.infer<typeof auditSchema>
export type Config = Readonly<RawConfig>
