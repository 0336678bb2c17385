import { createServer, connect, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * How the proxy treats traffic: `pass` forwards at once; `delay` holds every chunk (both
 * ways) for `ms`, in order; `blackhole` keeps connections open but swallows every byte, and a
 * connection that was black-holed stays so for good (a dead path, as when the server moved
 * to another node: no reset ever comes); new connections after it pass again. `refuse` cuts
 * every connection and refuses new ones.
 */
export type ProxyMode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'blackhole' } | { kind: 'refuse' }

/** Sees every chunk that crosses the proxy (`up`: client to target). */
export type Tap = (chunk: Buffer, direction: 'up' | 'down', connection: number) => void

/** A small TCP proxy a test puts between the gateway and a server (Redis, a replica). */
export interface TcpProxy {
  port: number
  setMode(mode: ProxyMode): void
  /** Connections accepted so far. */
  accepted(): number
  close(): Promise<void>
}

export async function startTcpProxy(targetPort: number, tap?: Tap, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: ProxyMode = { kind: 'pass' }
  let seq = 0
  const live = new Set<Socket>()
  const open = new Set<number>()
  const dead = new Set<number>()

  // Half-open allowed, so a FIN is passed on by hand (and swallowed on a dead path).
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    if (mode.kind === 'refuse') {
      client.destroy()
      return
    }
    const id = ++seq
    if (mode.kind === 'blackhole') dead.add(id)
    const target = connect({ port: targetPort, host: targetHost, allowHalfOpen: true })
    live.add(client)
    live.add(target)
    open.add(id)
    const end = () => {
      open.delete(id)
      client.destroy()
      target.destroy()
      live.delete(client)
      live.delete(target)
    }
    client.on('error', end).on('close', end)
    target.on('error', end).on('close', end)
    forward(client, target, 'up', id)
    forward(target, client, 'down', id)
  })

  function forward(from: Socket, to: Socket, direction: 'up' | 'down', id: number): void {
    // One queue per direction, drained by one timer: held chunks (and the FIN) keep their order,
    // and nothing sent after a delay ends overtakes what is still held.
    const held: { due: number; chunk: Buffer | null }[] = []
    let timer: NodeJS.Timeout | null = null
    const drain = () => {
      timer = null
      while (held.length > 0 && held[0].due <= Date.now()) {
        const { chunk } = held.shift()!
        if (to.destroyed) continue
        if (chunk === null) to.end()
        else to.write(chunk)
      }
      if (held.length > 0) timer = setTimeout(drain, Math.max(1, held[0].due - Date.now()))
    }
    const push = (chunk: Buffer | null) => {
      const m = mode
      held.push({ due: Date.now() + (m.kind === 'delay' ? m.ms : 0), chunk })
      if (held.length === 1 && m.kind !== 'delay') return drain()
      timer ??= setTimeout(drain, Math.max(1, held[0].due - Date.now()))
    }
    from.on('data', (chunk: Buffer) => {
      tap?.(chunk, direction, id)
      if (!dead.has(id)) push(chunk)
    })
    from.on('end', () => {
      if (!dead.has(id)) push(null)
    })
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    setMode(next) {
      mode = next
      if (next.kind === 'refuse') for (const s of [...live]) s.destroy()
      if (next.kind === 'blackhole') for (const id of open) dead.add(id)
    },
    accepted: () => seq,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of [...live]) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/**
 * A tap that looks for any of `needles` in the bytes going up (towards the target), across
 * chunk boundaries; `found()` lists the needles seen.
 */
export function needleTap(needles: readonly string[]): { tap: Tap; found: () => string[]; bytes: () => number } {
  const wanted = needles.filter((n) => n.length > 0).map((n) => Buffer.from(n))
  const longest = Math.max(0, ...wanted.map((n) => n.length))
  const tails = new Map<number, Buffer>()
  const found = new Set<string>()
  let bytes = 0
  return {
    tap(chunk, direction, connection) {
      if (direction !== 'up') return
      bytes += chunk.length
      const data = Buffer.concat([tails.get(connection) ?? Buffer.alloc(0), chunk])
      for (const n of wanted) if (data.includes(n)) found.add(n.toString())
      tails.set(connection, data.subarray(Math.max(0, data.length - longest)))
    },
    found: () => [...found],
    bytes: () => bytes,
  }
}
