import type { UpstreamConfig } from '../config/index.js'
import { buildRing, EMPTY_RING, type HashRing } from './balancer-pick.js'
import type { DiscoveryWatch } from './discovery.js'
import type { ReplicaState } from './replica.js'

/**
 * One upstream's replicas. `healthy` and `ring` are rebuilt whenever a replica joins, leaves,
 * is ejected or re-admitted, so `pick` only reads precomputed arrays and allocates nothing.
 */
export class UpstreamGroup {
  /** Every replica still holding a pool, by origin: healthy, ejected or draining. */
  readonly replicas = new Map<string, ReplicaState>()
  healthy: readonly ReplicaState[] = []
  ring: HashRing = EMPTY_RING
  watch: DiscoveryWatch | null = null

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
  ) {}

  rebuild(): void {
    const healthy: ReplicaState[] = []
    for (const r of this.replicas.values()) {
      if (r.health.healthy && !r.draining) healthy.push(r)
    }
    // Sorted by origin so the order (and so the ring) does not depend on join order.
    healthy.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0))
    this.healthy = healthy
    this.ring = buildRing(healthy)
  }

  hasReplicas(): boolean {
    for (const r of this.replicas.values()) if (!r.draining) return true
    return false
  }
}
