import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A tiny in-process HTTP server standing in for a replica where a real simulator would be
 * overkill: the test sets what /health and /metrics answer, and `/slow?ms=N` answers after N ms.
 * It records every path it is asked for.
 */
export interface LocalReplica {
  host: string
  port: number
  origin: string
  healthStatus: number
  metricsText: string
  paths: string[]
  close(): Promise<void>
  /** Listens again on the same host and port after close(). */
  reopen(): Promise<void>
}

export async function startLocalReplica(host = '127.0.0.1', port = 0): Promise<LocalReplica> {
  let server: Server | null = null
  const replica: LocalReplica = {
    host,
    port,
    origin: '',
    healthStatus: 200,
    metricsText: '',
    paths: [],
    async close() {
      const s = server
      server = null
      if (!s) return
      s.closeAllConnections()
      await new Promise<void>((res) => s.close(() => res()))
    },
    async reopen() {
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x')
        replica.paths.push(url.pathname)
        if (url.pathname === '/health' || url.pathname === '/api/version') {
          res.writeHead(replica.healthStatus, { 'content-type': 'application/json' }).end('{}')
        } else if (url.pathname === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end(replica.metricsText)
        } else if (url.pathname === '/slow') {
          const ms = Number(url.searchParams.get('ms') ?? '0')
          setTimeout(() => res.writeHead(200).end('slow done'), ms)
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok from ${replica.origin}`)
        }
      })
      const s = server
      await new Promise<void>((res, rej) => {
        s.once('error', rej)
        s.listen(replica.port, host, () => res())
      })
      replica.port = (s.address() as AddressInfo).port
      replica.origin = `http://${host}:${replica.port}`
    },
  }
  await replica.reopen()
  return replica
}

/** Polls `cond` every 20 ms until it is true; fails with `what` after `ms`. */
export async function eventually(what: string, cond: () => boolean, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
