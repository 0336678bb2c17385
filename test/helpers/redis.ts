import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startChild, type Child } from './processes.js'

export interface RedisHandle extends Child {
  port: number
  url: string
  /** Starts the server again on the same port (after stop()), keeping its data directory. */
  restart: () => Promise<RedisHandle>
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

async function waitForPing(port: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' })
    if (r.stdout?.trim() === 'PONG') return
    await new Promise((res) => setTimeout(res, 50))
  }
  throw new Error(`redis-server on port ${port} did not answer PING`)
}

/**
 * Starts a real redis-server on a free loopback port (with append-only persistence in a
 * temporary directory). Fails with install advice when redis-server is missing.
 */
export async function startRedis(port?: number, dir?: string, pin?: string): Promise<RedisHandle> {
  if (!which('redis-server')) {
    throw new Error('redis-server is not installed: `apt-get install -y redis-server` (or set REDIS_URL)')
  }
  const p = port ?? (await freePort())
  const d = dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-redis-'))
  const child = startChild('redis-server', [
    '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', d,
  ], {}, pin)
  await waitForPing(p)
  const handle: RedisHandle = {
    ...child,
    port: p,
    url: `redis://127.0.0.1:${p}`,
    restart: () => startRedis(p, d, pin),
  }
  return handle
}
