import type { RawConfig } from './schema.js'

/**
 * The configuration used when no file is given (SPEC section 2): port 8080, embedded store,
 * one Ollama upstream (OLLAMA_URL overrides its address), a role `default` with all models,
 * and the admin token from GATEHOUSE_ADMIN_TOKEN. Returned as raw input for the schema.
 */
export function embeddedDefaults(env: NodeJS.ProcessEnv): unknown {
  const input = {
    listen: { host: '0.0.0.0', port: 8080 },
    store: { redis: env.REDIS_URL ?? '', dataDir: './data' },
    auth: { apiKeys: true, adminToken: env.GATEHOUSE_ADMIN_TOKEN ?? '' },
    defaultRole: 'default',
    roles: { default: { models: ['*'] } },
    models: { 'llama3.2': { upstream: 'ollama' } },
    upstreams: { ollama: { kind: 'ollama', targets: [env.OLLAMA_URL || 'http://127.0.0.1:11434'] } },
  } satisfies Partial<Record<keyof RawConfig, unknown>>
  return input
}
