import { hash32, type ReplicaState } from './replica.js'
import type { Replica } from './types.js'

/** Points per replica on the affinity ring: enough for an even split of keys over a few replicas. */
const VNODES = 64

/**
 * The preferred replica for an affinity key is kept while its score is at most
 * max(AFFINITY_SLACK, AFFINITY_RATIO · best) above the least-loaded candidate's: a warm prefix
 * cache is worth a few requests of queue, not an overloaded replica.
 */
export const AFFINITY_SLACK = 4
export const AFFINITY_RATIO = 0.5

/**
 * A consistent-hash ring over one upstream's healthy replicas, built when that set changes.
 * `points` is sorted; `owners[i]` owns `points[i]`.
 */
export interface HashRing {
  readonly points: Uint32Array
  readonly owners: readonly ReplicaState[]
}

/** The ring of an upstream without healthy replicas. */
export const EMPTY_RING: HashRing = { points: new Uint32Array(0), owners: [] }

/** Builds the ring over `replicas` (VNODES points each); only when the healthy set changes. */
export function buildRing(replicas: readonly ReplicaState[]): HashRing {
  const entries: { point: number; owner: ReplicaState }[] = []
  for (const r of replicas) {
    for (let v = 0; v < VNODES; v++) entries.push({ point: hash32(`${r.id}#${v}`), owner: r })
  }
  entries.sort((a, b) => a.point - b.point)
  return { points: Uint32Array.from(entries, (e) => e.point), owners: entries.map((e) => e.owner) }
}

/**
 * The replica owning `keyHash` (the first point at or after it, wrapping), skipping excluded
 * ones; null when all are excluded. Binary search: O(log n).
 */
export function ringLookup(ring: HashRing, keyHash: number, exclude: ReadonlySet<Replica> | undefined): ReplicaState | null {
  const { points, owners } = ring
  const n = points.length
  if (n === 0) return null
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid] < keyHash) lo = mid + 1
    else hi = mid
  }
  if (exclude === undefined || exclude.size === 0) return owners[lo % n]
  // Only on a retry: walk on to the next replica not tried yet.
  for (let k = 0; k < n; k++) {
    const owner = owners[(lo + k) % n]
    if (!exclude.has(owner)) return owner
  }
  return null
}

/**
 * Power of two choices: two distinct random healthy replicas, the lower score wins (the first,
 * itself random, on a tie). O(1), and it keeps several gateways from all herding onto the one
 * replica that looked idle in the last scrape. With exclusions (retries) it scans for the
 * least loaded instead, starting at a random place so ties still spread.
 */
export function pickLeastLoaded(list: readonly ReplicaState[], exclude: ReadonlySet<Replica> | undefined): ReplicaState | null {
  const n = list.length
  if (n === 0) return null
  if (exclude === undefined || exclude.size === 0) {
    if (n === 1) return list[0]
    const i = (Math.random() * n) | 0
    let j = (Math.random() * (n - 1)) | 0
    if (j >= i) j++
    const a = list[i]
    const b = list[j]
    return b.score() < a.score() ? b : a
  }
  let best: ReplicaState | null = null
  let bestScore = Infinity
  const start = (Math.random() * n) | 0
  for (let k = 0; k < n; k++) {
    const r = list[(start + k) % n]
    if (exclude.has(r)) continue
    const s = r.score()
    if (s < bestScore) {
      best = r
      bestScore = s
    }
  }
  return best
}

/**
 * The replica for one request: the least-loaded candidate, or, with an affinity key, the
 * key's replica on the ring unless it is loaded beyond the affinity bound.
 */
export function pickReplica(
  healthy: readonly ReplicaState[],
  ring: HashRing,
  exclude: ReadonlySet<Replica> | undefined,
  affinityKey: string | undefined,
): ReplicaState | null {
  const best = pickLeastLoaded(healthy, exclude)
  if (best === null || affinityKey === undefined) return best
  const preferred = ringLookup(ring, hash32(affinityKey), exclude)
  if (preferred === null || preferred === best) return best
  const bestScore = best.score()
  return preferred.score() - bestScore <= Math.max(AFFINITY_SLACK, AFFINITY_RATIO * bestScore) ? preferred : best
}
