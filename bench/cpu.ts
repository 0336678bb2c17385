import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startGateway, startSim, type Child } from '../test/helpers/processes.js'
import { startRedis } from '../test/helpers/redis.js'
import { runWrk } from './wrk.js'
import { benchGatewayConfig, createBenchKey, startNodeMin, startFloor } from './setup.js'

// `npm run bench:cpu`: CPU time per request of each process on the measured core (gateway or
// node-min, simulator, Redis), read from /proc/PID/stat around a wrk run. Far steadier than
// RPS on a shared host, because a noisy neighbour slows every process but hardly changes what
// each one spends per request. Variants: full (Redis quotas), noquota (a role without limits,
// Redis store), embedded (no Redis). Env: CPU_SCENARIO (chat), CPU_SECONDS (6), CPU_WARMUP (4),
// CPU_CONNECTIONS (16), CPU_VARIANTS ("full noquota embedded"), CPU_ROUNDS (1),
// CPU_NODE_ARGS (extra node flags for the gateway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
// REDIS_CPUS (1: beside the gateway and the simulator), CPU_COMPARE (another checkout, built:
// its gateway joins as "baseline-full" and alternates with ours, e.g. a `git worktree` of the
// commit before a change), CPU_FLOOR (1: also bench/undici-floor.ts, a proxy with the gateway's
// transport and none of its features, and bench/socket-floor.ts, the same over plain sockets;
// 0 leaves them out).
// Each row also gives the proxy's CPU over the simulator's: the simulator does the same work
// in every run, so the ratio cancels most of a busy host's drift (compare medians of rounds).

const SCENARIO = process.env.CPU_SCENARIO ?? 'chat'
const SECONDS = Number(process.env.CPU_SECONDS ?? 6)
const WARMUP = Number(process.env.CPU_WARMUP ?? 4)
const CONNECTIONS = Number(process.env.CPU_CONNECTIONS ?? 16)
const VARIANTS = (process.env.CPU_VARIANTS ?? 'full noquota embedded').split(/\s+/).filter(Boolean)
const ROUNDS = Number(process.env.CPU_ROUNDS ?? 1)
const NODE_ARGS = (process.env.CPU_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
const COMPARE = process.env.CPU_COMPARE ?? ''
const FLOOR = process.env.CPU_FLOOR !== '0'
const CLOCK_TICKS = 100

/** User + system CPU of a process and all its threads, in µs. */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6
}

interface Target {
  name: string
  url: string
  pid: number
  headers: Record<string, string>
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-cpu-'))
  const children: Child[] = []
  try {
    const redis = await startRedis(undefined, undefined, process.env.REDIS_CPUS ?? '1')
    children.push(redis)
    const sim = await startSim('vllm', ['--tokens', '32', '--model', 'sim-model'], '1')
    children.push(sim)
    const targets: Target[] = []
    const nodeMin = await startNodeMin(sim.url, '1')
    if (nodeMin) {
      children.push(nodeMin.child)
      targets.push({ name: 'node-min', url: nodeMin.url, pid: nodeMin.child.proc.pid!, headers: {} })
    }
    if (FLOOR) {
      for (const kind of ['undici', 'socket'] as const) {
        const floor = await startFloor(kind, sim.url, '1')
        children.push(floor.child)
        targets.push({ name: `${kind}-floor`, url: floor.url, pid: floor.child.proc.pid!, headers: {} })
      }
    }
    for (const variant of VARIANTS) {
      const config = benchGatewayConfig({ redisUrl: variant === 'embedded' ? null : redis.url, simUrls: [sim.url], limited: variant !== 'noquota' })
      const gw = await startGateway(config, {}, { pin: '1', waitReady: true, nodeArgs: NODE_ARGS })
      children.push(gw)
      const key = await createBenchKey(gw.url)
      targets.push({ name: `gatehouse-${variant}`, url: gw.url, pid: gw.proc.pid!, headers: { authorization: `Bearer ${key}` } })
    }
    if (COMPARE) {
      // The other checkout's own start-up helper, so its bin/ and dist/ are the ones run.
      const other = (await import(resolve(COMPARE, 'dist', 'test', 'helpers', 'processes.js'))) as { startGateway: typeof startGateway }
      const config = benchGatewayConfig({ redisUrl: redis.url, simUrls: [sim.url], limited: true })
      const gw = await other.startGateway(config, {}, { pin: '1', waitReady: true, nodeArgs: NODE_ARGS })
      children.push(gw)
      const key = await createBenchKey(gw.url)
      targets.push({ name: 'baseline-full', url: gw.url, pid: gw.proc.pid!, headers: { authorization: `Bearer ${key}` } })
    }
    const body = JSON.stringify({
      model: 'sim-model',
      messages: [{ role: 'user', content: 'Hello, how are you today?' }],
      max_tokens: 32,
      ...(SCENARIO === 'stream' ? { stream: true, stream_options: { include_usage: true } } : {}),
    })
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const point = {
          url: `${t.url}/v1/chat/completions`,
          body,
          headers: { 'content-type': 'application/json', ...t.headers },
          connections: CONNECTIONS,
          pin: '0',
          workDir: work,
        }
        await runWrk({ ...point, seconds: WARMUP })
        const pids = { proxy: t.pid, sim: sim.proc.pid!, redis: redis.proc.pid! }
        const before = Object.values(pids).map(cpuMicros)
        const r = await runWrk({ ...point, seconds: SECONDS })
        const per = Object.values(pids).map((pid, i) => (cpuMicros(pid) - before[i]) / r.requests)
        const [proxy, simulator, redisCpu] = per.map((v) => v.toFixed(0))
        process.stdout.write(
          `${SCENARIO} c=${CONNECTIONS} ${t.name.padEnd(20)} ${r.rps.toFixed(0).padStart(6)} rps  CPU µs/request: proxy ${proxy}, simulator ${simulator}, redis ${redisCpu}; (proxy + redis) / simulator ${((per[0] + per[2]) / per[1]).toFixed(2)}\n`,
        )
      }
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()))
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
