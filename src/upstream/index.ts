// The upstream concern: replicas, their discovery and health, and the balancer that picks
// among them (see README.md). Other folders import from here.
export {
  createBalancer,
  DEFAULT_TIMING,
  type BalancerDeps,
  type BalancerTiming,
  type UpstreamBalancer,
  type UpstreamReplicaStatus,
} from './balancer.js'
export { AFFINITY_RATIO, AFFINITY_SLACK } from './balancer-pick.js'
export { resolveARecords, type Resolver } from './discovery.js'
export { DEFAULT_HEALTH_POLICY, isConnectionError, type HealthPolicy } from './health.js'
export { KV_WEIGHT } from './replica.js'
export { parseVllmMetrics, type VllmLoad } from './scrape-parse.js'
export type { Balancer, Replica, ReplicaStatus, RequestOutcome } from './types.js'
