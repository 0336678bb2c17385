import type { ChainableCommander, Redis } from 'ioredis'
import { LuaScript } from '../store/resp-connection.js'
import { PEEK_LUA, QUOTA_BATCH_LUA, RENEW_LUA } from './scripts.js'

/** The script every request's reserve and settle run in, on the limiter's own connection (RespConnection). */
export const QUOTA_BATCH_SCRIPT = new LuaScript(QUOTA_BATCH_LUA)

// ioredis `defineCommand` sends EVALSHA, falls back to EVAL on NOSCRIPT, and sends the full
// script once on every new connection, so scripts are back after a Redis restart by
// themselves. These types describe the commands it adds to the client and its pipelines.

export type Arg = string | number

export interface QuotaCommands {
  ghQuotaPeek(windows: string, leases: string, creditLeases: string, countLeases: Arg): Promise<number[]>
}

export interface QuotaPipeline {
  /** QUOTA_BATCH_LUA: ARGV is the lease TTL, then the operations. */
  ghQuotaBatch(windows: string, leases: string, creditLeases: string, ...argv: Arg[]): QuotaPipeline
  ghQuotaRenew(leases: string, leaseId: string, ttlMs: number): QuotaPipeline
  hincrby(key: string, field: string, by: number): QuotaPipeline
  sadd(key: string, member: string): QuotaPipeline
  exec(): Promise<[error: Error | null, result: unknown][] | null>
}

/** Adds the quota scripts to `redis` (idempotent) and returns it with their types. */
export function defineQuotaCommands(redis: Redis): Redis & QuotaCommands {
  redis.defineCommand('ghQuotaPeek', { numberOfKeys: 3, lua: PEEK_LUA, readOnly: true })
  redis.defineCommand('ghQuotaBatch', { numberOfKeys: 3, lua: QUOTA_BATCH_LUA })
  redis.defineCommand('ghQuotaRenew', { numberOfKeys: 1, lua: RENEW_LUA })
  return redis as Redis & QuotaCommands
}

/** A pipeline that knows the quota scripts (create it after defineQuotaCommands). */
export function quotaPipeline(redis: Redis): QuotaPipeline {
  const p: ChainableCommander = redis.pipeline()
  return p as unknown as QuotaPipeline
}
