import type { Config } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { UpstreamGroup } from './balancer-group.js'
import { pickReplica } from './balancer-pick.js'
import { resolveARecords, staticOrigins, watchDns, type Resolver } from './discovery.js'
import { DEFAULT_HEALTH_POLICY, type HealthChange, type HealthPolicy } from './health.js'
import { checkReplica, healthPath } from './health-probe.js'
import { ReplicaState } from './replica.js'
import { scrapeLoad } from './scrape.js'
import type { Balancer, Replica, ReplicaStatus, RequestOutcome } from './types.js'

/** How often the background work runs; defaults suit production, tests may shorten them. */
export interface BalancerTiming {
  /** The housekeeping loop: due checks and scrapes start on its beat. */
  tickMs: number
  scrapeIntervalMs: number
  scrapeTimeoutMs: number
  checkTimeoutMs: number
  /** A scraped load older than this is forgotten (the score falls back to in-flight). */
  staleAfterMs: number
  /** close(): how long pools may finish requests before they are destroyed. */
  closeGraceMs: number
}

/** Production periods: checks and scrapes start within tickMs of being due. */
export const DEFAULT_TIMING: Readonly<BalancerTiming> = Object.freeze({
  tickMs: 200,
  scrapeIntervalMs: 1000,
  scrapeTimeoutMs: 1000,
  checkTimeoutMs: 1000,
  staleAfterMs: 3500,
  closeGraceMs: 5000,
})

export interface BalancerDeps {
  config: Config
  log: Logger
  /** DNS for `dns` upstreams; default: A records through dns.promises.resolve4. */
  resolver?: Resolver
  health?: Partial<HealthPolicy>
  timing?: Partial<BalancerTiming>
}

/** A replica's row in /admin/upstreams, with what the balancer knows beyond ReplicaStatus. */
export interface UpstreamReplicaStatus extends ReplicaStatus {
  kind: 'vllm' | 'ollama' | 'openai'
  /** healthy: in rotation; ejected: failing, re-checked with backoff; draining: left discovery. */
  state: 'healthy' | 'ejected' | 'draining'
  /** Expected requests ahead of a new one (lower wins); see src/upstream/README.md. */
  score: number
}

export interface UpstreamBalancer extends Balancer {
  /** Settles once every `dns` upstream has had its first resolution (await before listening). */
  ready(): Promise<void>
  /** The precomputed array `pick` draws from (diagnostics and tests); replaced on change, never mutated. */
  healthyReplicas(upstream: string): readonly Replica[]
  snapshot(): UpstreamReplicaStatus[]
}

/**
 * The balancer for every configured upstream. It starts at once: static targets are usable
 * immediately, `dns` upstreams after their first resolution (see `ready`); health checks,
 * scrapes and re-resolution run on unref'd timers until `close()`.
 */
export function createBalancer(deps: BalancerDeps): UpstreamBalancer {
  const { config, log } = deps
  const resolver = deps.resolver ?? resolveARecords
  const policy: HealthPolicy = { ...DEFAULT_HEALTH_POLICY, ...deps.health }
  const timing: BalancerTiming = { ...DEFAULT_TIMING, ...deps.timing }
  const groups = new Map<string, UpstreamGroup>()
  let closed = false

  const apiKeyOf = (r: ReplicaState): string | null => r.config.apiKey || null

  const applyChange = (group: UpstreamGroup, r: ReplicaState, change: HealthChange): void => {
    if (change === null) return
    if (change === 'ejected') {
      log.warn('upstream replica ejected', { upstream: group.name, replica: r.id, reason: r.health.lastError })
      r.clearLoad()
    } else {
      log.info('upstream replica re-admitted', { upstream: group.name, replica: r.id })
      r.nextScrapeAt = 0
    }
    group.rebuild()
  }

  const closeReplica = (group: UpstreamGroup, r: ReplicaState): void => {
    if (r.closed) return
    r.closed = true
    if (group.replicas.get(r.origin) === r) group.replicas.delete(r.origin)
    log.info('upstream replica removed', { upstream: group.name, replica: r.id })
    r.dispatcher.close().catch(() => {})
    r.client.close().catch(() => {})
  }

  const runCheck = async (group: UpstreamGroup, r: ReplicaState): Promise<void> => {
    r.checking = true
    const result = await checkReplica(r.dispatcher, r.origin, healthPath(group.config.kind), timing.checkTimeoutMs, apiKeyOf(r))
    r.checking = false
    if (closed || r.closed || r.draining) return
    applyChange(group, r, r.health.onCheck(result, performance.now(), group.config.kind === 'openai'))
  }

  const runScrape = async (r: ReplicaState): Promise<void> => {
    r.scraping = true
    const load = await scrapeLoad(r.dispatcher, r.origin, timing.scrapeTimeoutMs, apiKeyOf(r))
    r.scraping = false
    const now = performance.now()
    r.nextScrapeAt = now + timing.scrapeIntervalMs
    if (closed || r.closed || r.draining || !r.health.healthy) return
    if (load === null) r.clearLoad()
    else r.applyLoad(load, now)
  }

  /** Starts whatever is due for one replica; the probes run in the background. */
  const service = (group: UpstreamGroup, r: ReplicaState, now: number): void => {
    if (r.draining || r.closed) return
    if (!r.checking && now >= r.health.nextCheckAt) void runCheck(group, r)
    if (group.config.kind !== 'vllm' || !r.health.healthy) return
    if (r.lastScrapeAt !== 0 && now - r.lastScrapeAt > timing.staleAfterMs) r.clearLoad()
    if (!r.scraping && now >= r.nextScrapeAt) void runScrape(r)
  }

  const syncOrigins = (group: UpstreamGroup, origins: readonly string[]): void => {
    if (closed) return
    const wanted = new Set(origins)
    for (const origin of wanted) {
      const known = group.replicas.get(origin)
      if (known && known.draining) {
        known.draining = false
        log.info('upstream replica is back in discovery', { upstream: group.name, replica: origin })
      } else if (!known) {
        const r = new ReplicaState(group.name, origin, group.config, policy)
        group.replicas.set(origin, r)
        log.info('upstream replica joined', { upstream: group.name, replica: origin })
        service(group, r, performance.now())
      }
    }
    for (const r of group.replicas.values()) {
      if (wanted.has(r.origin) || r.draining) continue
      // Gone from discovery: no new requests; the ones in flight finish on the open pool.
      r.draining = true
      log.info('upstream replica left discovery; draining', { upstream: group.name, replica: r.id, inFlight: r.inFlight })
      if (r.inFlight === 0) closeReplica(group, r)
    }
    group.rebuild()
  }

  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const group = new UpstreamGroup(name, upstream)
    groups.set(name, group)
    if (upstream.targets) syncOrigins(group, staticOrigins(upstream.targets))
    else if (upstream.dns) {
      group.watch = watchDns({ upstream: name, dns: upstream.dns, resolver, log, onOrigins: (o) => syncOrigins(group, o) })
    }
  }

  const ticker = setInterval(() => {
    const now = performance.now()
    for (const group of groups.values()) for (const r of group.replicas.values()) service(group, r, now)
  }, timing.tickMs)
  ticker.unref()

  const stateOf = (r: ReplicaState): UpstreamReplicaStatus['state'] => (r.draining ? 'draining' : r.health.healthy ? 'healthy' : 'ejected')

  return {
    pick(upstream, exclude, affinityKey) {
      const group = groups.get(upstream)
      if (group === undefined) return null
      return pickReplica(group.healthy, group.ring, exclude, affinityKey)
    },

    begin(replica) {
      asState(replica).inFlight++
    },

    end(replica, outcome: RequestOutcome) {
      const r = asState(replica)
      if (r.inFlight > 0) r.inFlight--
      if (outcome.status !== null && outcome.error === null) r.recordLatency(outcome.durationMs)
      const group = groups.get(r.upstream)
      if (group === undefined) return
      const change = r.health.onOutcome(outcome, performance.now())
      if (!r.draining) applyChange(group, r, change)
      else if (r.inFlight === 0) closeReplica(group, r)
    },

    hasReplicas(upstream) {
      return groups.get(upstream)?.hasReplicas() ?? false
    },

    healthyReplicas(upstream) {
      return groups.get(upstream)?.healthy ?? []
    },

    async ready() {
      await Promise.all([...groups.values()].map((g) => g.watch?.ready))
    },

    snapshot() {
      const out: UpstreamReplicaStatus[] = []
      for (const group of groups.values()) {
        for (const r of group.replicas.values()) {
          const { lastError, lastErrorAt } = r.health
          out.push({
            upstream: group.name,
            replica: r.id,
            kind: group.config.kind,
            state: stateOf(r),
            healthy: r.health.healthy && !r.draining,
            inFlight: r.inFlight,
            waiting: r.waiting,
            running: r.running,
            kvCacheUsage: r.kvUsage,
            score: Math.round(r.score() * 100) / 100,
            latencyMsP50: r.latencyP50(),
            lastError,
            lastErrorAt: lastErrorAt === null ? null : new Date(lastErrorAt).toISOString(),
          })
        }
      }
      return out
    },

    async close() {
      if (closed) return
      closed = true
      clearInterval(ticker)
      const replicas: ReplicaState[] = []
      for (const group of groups.values()) {
        group.watch?.stop()
        for (const r of group.replicas.values()) {
          r.closed = true
          replicas.push(r)
        }
        group.replicas.clear()
        group.rebuild()
      }
      // Requests still streaming get closeGraceMs to finish, then their sockets are cut.
      let grace: NodeJS.Timeout | undefined
      const cut = new Promise<void>((res) => {
        grace = setTimeout(res, timing.closeGraceMs)
        grace.unref()
      })
      const closing = replicas.flatMap((r) => [r.dispatcher.close().catch(() => {}), r.client.close()])
      await Promise.race([Promise.all(closing), cut])
      clearTimeout(grace)
      for (const r of replicas) r.client.destroy()
      await Promise.all(replicas.map((r) => (r.dispatcher.destroyed ? undefined : r.dispatcher.destroy().catch(() => {}))))
    },
  }
}

function asState(replica: Replica): ReplicaState {
  if (!(replica instanceof ReplicaState)) throw new TypeError('not a replica handed out by this balancer')
  return replica
}
