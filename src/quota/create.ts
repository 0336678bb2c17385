import type { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { EmbeddedQuotaLimiter } from './embedded-limiter.js'
import { RedisQuotaLimiter } from './redis-limiter.js'
import type { QuotaLimiter } from './types.js'

export interface QuotaLimiterDeps {
  config: { readonly store: Config['store'] }
  /** The shared client when `store.redis` is set (from createRedisClient), else null. */
  redis: Redis | null
  log: Logger
  /** Lease TTL for maxConcurrent (default 30 s); tests shorten it. */
  leaseTtlMs?: number
  /** Embedded store: how often usage.json is rewritten while it changed (default 2 s). */
  persistIntervalMs?: number
}

/** The Redis limiter when a client is given, else the embedded one (same semantics in one process). */
export function createQuotaLimiter(deps: QuotaLimiterDeps): QuotaLimiter {
  const { store } = deps.config
  if (deps.redis) return new RedisQuotaLimiter(deps.redis, store.keyPrefix, deps.log, { leaseTtlMs: deps.leaseTtlMs })
  if (store.redis) throw new Error('store.redis is set but no Redis client was passed to createQuotaLimiter')
  return new EmbeddedQuotaLimiter(store.dataDir, deps.log, {
    leaseTtlMs: deps.leaseTtlMs,
    persistIntervalMs: deps.persistIntervalMs,
  })
}
