import type { Dispatcher } from 'undici'
import type { Http1Pool } from './http1-pool.js'
import type { UpstreamConfig } from '../config/index.js'

/** One replica (pod / process) of an upstream, with its own keep-alive pool. */
export interface Replica {
  readonly upstream: string
  /** Stable id for labels and logs: the origin, e.g. `http://10.0.0.11:8000`. */
  readonly id: string
  readonly origin: string
  /** Health checks and scrapes. */
  readonly dispatcher: Dispatcher
  /** Inference requests. */
  readonly client: Http1Pool
  readonly config: UpstreamConfig
}

export interface RequestOutcome {
  /** HTTP status from the replica, or null on a connection error / timeout. */
  status: number | null
  /** Client error code (undici's names, see http1-pool.ts) or our own ('first_byte_timeout', 'idle_timeout', 'dropped'). */
  error: string | null
  durationMs: number
}

export interface ReplicaStatus {
  upstream: string
  replica: string
  healthy: boolean
  inFlight: number
  waiting: number | null
  running: number | null
  kvCacheUsage: number | null
  latencyMsP50: number | null
  lastError: string | null
  lastErrorAt: string | null
}

/**
 * Chooses replicas. `pick` returns null when no healthy replica is left (after `exclude`).
 * The proxy calls `begin` when it sends to a replica and `end` exactly once afterwards.
 */
export interface Balancer {
  pick(upstream: string, exclude?: ReadonlySet<Replica>, affinityKey?: string): Replica | null
  begin(replica: Replica): void
  end(replica: Replica, outcome: RequestOutcome): void
  /** True when the upstream has at least one known replica at all (healthy or not). */
  hasReplicas(upstream: string): boolean
  snapshot(): ReplicaStatus[]
  close(): Promise<void>
}
