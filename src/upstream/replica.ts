import { Pool } from 'undici'
import { Http1Pool } from './http1-pool.js'
import type { UpstreamConfig } from '../config/index.js'
import { HealthTracker, type HealthPolicy } from './health.js'
import type { VllmLoad } from './scrape-parse.js'
import type { Replica } from './types.js'

/**
 * KV-cache use (0..1) is added to the score times this: below one request, so it only
 * breaks ties between replicas with the same queue, favouring the one further from
 * preempting.
 */
export const KV_WEIGHT = 0.5

const LATENCY_RING = 64

/** A 32-bit FNV-1a hash with a final avalanche; walks the string, allocates nothing. */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Strips any path from a target URL: `http://10.0.0.11:8000/` → `http://10.0.0.11:8000`. */
export function originOf(target: string): string {
  return new URL(target).origin
}

/**
 * A replica as the balancer keeps it: the public `Replica` (what the proxy uses) plus its
 * health, the gateway's own in-flight count, the last scraped load and recent latencies.
 * Only the balancer mutates it.
 */
export class ReplicaState implements Replica {
  /** Health checks and scrapes. */
  readonly dispatcher: Pool
  /** Inference requests (the hot path): see http1-pool.ts. */
  readonly client: Http1Pool
  readonly health: HealthTracker
  /** Requests the gateway has begun and not yet ended on this replica. */
  inFlight = 0
  /** Last scrape, as the replica reported it (null: no metrics, or stale). */
  running: number | null = null
  waiting: number | null = null
  kvUsage: number | null = null
  /**
   * Load the replica reported that is not ours: running + waiting at the last scrape minus
   * our in-flight count at that moment (never negative). Our own requests are counted live
   * through `inFlight` instead, so a request is never counted twice and a burst sent since
   * the scrape is already visible.
   */
  external = 0
  /** KV_WEIGHT · kvUsage, or 0. */
  kvWeight = 0
  lastScrapeAt = 0
  nextScrapeAt = 0
  scraping = false
  checking = false
  /** Left discovery: gets no new requests; its pool closes once `inFlight` is 0. */
  draining = false
  closed = false
  private readonly latencies = new Float64Array(LATENCY_RING)
  private latencyCount = 0

  constructor(
    readonly upstream: string,
    readonly origin: string,
    readonly config: UpstreamConfig,
    policy?: Readonly<HealthPolicy>,
  ) {
    this.health = new HealthTracker(policy)
    // Keep-alive pools, one request per connection at a time (vLLM and Ollama do not pipeline);
    // no connection cap, and checks and scrapes on their own pool, so they never queue behind
    // long streams.
    this.dispatcher = new Pool(origin, {
      pipelining: 1,
      connect: { timeout: config.timeouts.connectMs },
    })
    this.client = new Http1Pool(origin, config.timeouts.connectMs)
  }

  get id(): string {
    return this.origin
  }

  /** Expected wait, in requests ahead of a new one; lower is better. See README.md. */
  score(): number {
    return this.inFlight + this.external + this.kvWeight
  }

  /** A scrape answered: remember what the replica reported, relative to our in-flight now. */
  applyLoad(load: VllmLoad, now: number): void {
    this.running = load.running
    this.waiting = load.waiting
    this.kvUsage = load.kvUsage
    if (load.running === null && load.waiting === null) this.external = 0
    else this.external = Math.max(0, (load.running ?? 0) + (load.waiting ?? 0) - this.inFlight)
    this.kvWeight = load.kvUsage === null ? 0 : KV_WEIGHT * Math.min(1, Math.max(0, load.kvUsage))
    this.lastScrapeAt = now
  }

  /** Forgets the scraped load (scrape failed or too old): the score falls back to inFlight. */
  clearLoad(): void {
    this.running = null
    this.waiting = null
    this.kvUsage = null
    this.external = 0
    this.kvWeight = 0
    this.lastScrapeAt = 0
  }

  recordLatency(ms: number): void {
    this.latencies[this.latencyCount % LATENCY_RING] = ms
    this.latencyCount++
  }

  /** Median of the last LATENCY_RING request durations, or null before the first. */
  latencyP50(): number | null {
    const n = Math.min(this.latencyCount, LATENCY_RING)
    if (n === 0) return null
    const sorted = this.latencies.slice(0, n).sort()
    return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
  }
}
