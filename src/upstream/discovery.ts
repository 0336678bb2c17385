import { promises as dnsPromises } from 'node:dns'
import type { UpstreamConfig } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { originOf } from './replica.js'

/** Resolves a name to IP addresses; the default reads A records, tests inject their own. */
export type Resolver = (name: string) => Promise<string[]>

export const resolveARecords: Resolver = (name) => dnsPromises.resolve4(name)

// Answers meaning "the name has no addresses now" (a headless Service without ready pods),
// as opposed to a resolver that could not be asked (keep what we have then).
const NO_ADDRESSES: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA'])

export interface DiscoveryWatch {
  /** Settles after the first resolution attempt, whatever its result. */
  readonly ready: Promise<void>
  stop(): void
}

export type DnsConfig = NonNullable<UpstreamConfig['dns']>

/** `http://10.0.0.11:8000` from an address; IPv6 addresses get their brackets. */
export function originFor(dns: DnsConfig, address: string): string {
  const host = address.includes(':') ? `[${address}]` : address
  return `${dns.scheme}://${host}:${dns.port}`
}

/** The replica origins of a static `targets` list, deduplicated, paths dropped. */
export function staticOrigins(targets: readonly string[]): string[] {
  return [...new Set(targets.map(originOf))]
}

/**
 * Re-resolves `dns.name` every `dns.refreshMs` and hands the full, sorted set of origins to
 * `onOrigins` after every successful answer (the caller diffs it). A resolver failure other
 * than "no such name" keeps the current replicas: a DNS hiccup must not empty an upstream.
 */
export function watchDns(opts: {
  upstream: string
  dns: DnsConfig
  resolver: Resolver
  log: Logger
  onOrigins: (origins: string[]) => void
}): DiscoveryWatch {
  const { upstream, dns, resolver, log, onOrigins } = opts
  let timer: NodeJS.Timeout | null = null
  let stopped = false
  let lastProblem: string | null = null

  const resolveOnce = async (): Promise<void> => {
    let addresses: string[]
    try {
      addresses = await resolver(dns.name)
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code
      if (typeof code === 'string' && NO_ADDRESSES.has(code)) {
        addresses = []
      } else {
        const problem = typeof code === 'string' ? code : 'unknown'
        // One line per streak of failures, not one every refresh.
        if (problem !== lastProblem) log.warn('upstream dns resolution failed; keeping current replicas', { upstream, name: dns.name, code: problem })
        lastProblem = problem
        return
      }
    }
    lastProblem = null
    if (stopped) return
    const origins = [...new Set(addresses.map((a) => originFor(dns, a)))].sort()
    onOrigins(origins)
  }

  const loop = async (): Promise<void> => {
    try {
      await resolveOnce()
    } catch (err) {
      log.error('upstream discovery update failed', { upstream, error: String(err) })
    }
    if (stopped) return
    timer = setTimeout(() => void loop(), dns.refreshMs)
    timer.unref()
  }

  const ready = loop()
  return {
    ready,
    stop() {
      stopped = true
      if (timer) clearTimeout(timer)
    },
  }
}
