import { randomBytes } from 'node:crypto'
import type { Limits } from '../../src/config/index.js'
import { QuotaExceeded } from '../../src/errors/index.js'
import { silentLogger, type Logger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { endpointOf, type RespEndpoint } from '../../src/store/resp-connection.js'
import type { QuotaLimiter, Reservation } from '../../src/quota/index.js'

export interface Outcome {
  admitted: Reservation[]
  refused: QuotaExceeded[]
  /** Anything else a reserve threw (should stay empty unless the store is down). */
  other: unknown[]
}

/** A subject no other test uses (tests share one Redis). */
export function uniqueSubject(tag: string): string {
  return `${tag}-${randomBytes(4).toString('hex')}`
}

/**
 * Fires `n` reserves at once, spread round-robin over `limiters` (several gateway processes),
 * and sorts the outcomes.
 */
export async function reserveMany(
  limiters: QuotaLimiter[],
  n: number,
  subject: string,
  limits: Limits,
  reservedTokens: number,
): Promise<Outcome> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      limiters[i % limiters.length].reserve({ requestId: `r${i}`, subject, limits, reservedTokens }),
    ),
  )
  const out: Outcome = { admitted: [], refused: [], other: [] }
  for (const r of results) {
    if (r.status === 'fulfilled') out.admitted.push(r.value)
    else if (r.reason instanceof QuotaExceeded) out.refused.push(r.reason)
    else out.other.push(r.reason)
  }
  return out
}

/**
 * Fixed windows reset at each UTC minute; a count asserted across a boundary would be wrong
 * for a legitimate reason. Waits past the boundary when fewer than `marginMs` remain.
 */
export async function awayFromMinuteEdge(marginMs = 4000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000)
  if (left < marginMs) await sleep(left + 100)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Polls `fn` until it returns true or `ms` pass; returns whether it did. */
export async function eventually(fn: () => boolean | Promise<boolean>, ms: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await fn()) return true
    if (Date.now() > deadline) return false
    await sleep(stepMs)
  }
}

export interface LogLine {
  level: string
  msg: string
  fields: Record<string, unknown> | undefined
}

/** A logger that keeps what it is given, for assertions on what was logged. */
export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** Parses an `x-ratelimit-reset-*` value back into milliseconds. */
export function parseReset(v: string): number {
  const ms = /^(\d+)ms$/.exec(v)
  if (ms) return Number(ms[1])
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(v)
  if (!m) throw new Error(`not a reset duration: ${v}`)
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3])) * 1000
}

/** The RESP endpoint the gateway would derive from `url` (through ioredis' URL parsing, as the limiter does). */
export function endpointFromUrl(url: string): RespEndpoint {
  const client = createRedisClient(url, silentLogger, 'endpoint-only')
  const endpoint = endpointOf(client)
  client.disconnect()
  return endpoint
}
