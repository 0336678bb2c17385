import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { freePort } from './ports.js'

export const ROOT = resolve(import.meta.dirname, '..', '..', '..')
export const BIN = join(ROOT, 'bin', 'gatehouse.js')
/** Node flags the gateway runs with everywhere (Dockerfile, manifests, npm start, tests). */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--heap-growing-percent=50', '--max-semi-space-size=8', '--no-allocation-site-pretenuring']

/** A child process a test started; `stop()` ends it by its PID and waits for the exit. */
export interface Child {
  proc: ChildProcess
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts a process; `pin` (a CPU list such as "1") runs it under `taskset -c` (benchmarks). */
export function startChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, pin?: string): Child {
  if (pin) {
    args = ['-c', pin, cmd, ...args]
    cmd = 'taskset'
  }
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)))
  return {
    proc,
    output: () => out,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal)
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
        const code = await exited
        clearTimeout(timer)
        return code
      }
      return proc.exitCode
    },
  }
}

/** Polls `url` until it answers (any status below 500 unless `okOnly`), or throws after `ms`. */
export async function waitForHttp(url: string, ms = 10000, okOnly = false, child?: Child): Promise<void> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
      throw new Error(`the process exited (${child.proc.exitCode ?? child.proc.signalCode}) before ${url} answered`)
    }
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (okOnly ? res.ok : res.status < 500) return
      last = `status ${res.status}`
    } catch (err) {
      last = String(err)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not answer within ${ms} ms (${last})`)
}

export interface SimHandle extends Child {
  port: number
  url: string
}

/** Starts `gatehouse sim` on a free port with extra flags, and waits until it answers. */
export async function startSim(kind: 'vllm' | 'ollama', flags: string[] = [], pin?: string): Promise<SimHandle> {
  const port = await freePort()
  const child = startChild(process.execPath, [BIN, 'sim', '--port', String(port), '--kind', kind, ...flags], {}, pin)
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(kind === 'ollama' ? `${url}/api/version` : `${url}/health`, 10000, false, child).catch((err) => {
    throw new Error(`${err}\n${child.output()}`)
  })
  return { ...child, port, url }
}

export interface GatewayHandle extends Child {
  port: number
  metricsPort: number
  url: string
  metricsUrl: string
  dir: string
  configPath: string
}

/**
 * Writes `configYaml` (with `$PORT`, `$METRICS_PORT` and `$DIR` replaced) into a temporary
 * directory and starts `gatehouse serve` on it; waits for /healthz.
 */
export async function startGateway(
  configYaml: string,
  env: NodeJS.ProcessEnv = {},
  opts: { dir?: string; waitReady?: boolean; pin?: string; nodeArgs?: string[] } = {},
): Promise<GatewayHandle> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'))
  const port = await freePort()
  const metricsPort = await freePort()
  const text = configYaml
    .replaceAll('$PORT', String(port))
    .replaceAll('$METRICS_PORT', String(metricsPort))
    .replaceAll('$DIR', dir)
  const configPath = join(dir, 'gatehouse.yaml')
  writeFileSync(configPath, text)
  const child = startChild(process.execPath, [...GATEWAY_NODE_FLAGS, ...(opts.nodeArgs ?? []), BIN, 'serve', '--config', configPath], env, opts.pin)
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/healthz`, 15000, false, child).catch((err) => {
    throw new Error(`${err}\n${child.output()}`)
  })
  if (opts.waitReady) await waitForHttp(`${url}/readyz`, 15000, true)
  return { ...child, port, metricsPort, url, metricsUrl: `http://127.0.0.1:${metricsPort}`, dir, configPath }
}
