import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway, startSim, ROOT, type Child } from '../test/helpers/processes.js'
import { startRedis } from '../test/helpers/redis.js'
import { runWrk } from './wrk.js'
import { benchGatewayConfig, createBenchKey, startNodeMin } from './setup.js'
import { markdown, soakSummary, type BenchReport, type BenchRow, type SoakResult } from './report.js'

// `npm run bench`: the gateway with API key auth, Redis quotas, audit and metrics on, beside
// the simulator it fronts (and, when ../shared/peer-bench is there, its minimal Node proxy).
// Env: BENCH_SECONDS (5), BENCH_CONCURRENCY ("1 16 64"), BENCH_SCENARIOS ("chat stream"),
// BENCH_VARIANTS ("full"; add "noquota" for a role without limits), BENCH_REPLICAS (1),
// BENCH_WARMUP (3 s per point, so every target is measured with its code optimised),
// BENCH_SOAK_SECONDS (0; 300 for the 5-minute soak: stream c=64 through the gateway, RSS
// sampled every 5 s), BENCH_ROUNDS (1; with more, the matrix is run that many times, targets
// interleaved, and each point reports its median-RPS round), LOADGEN_CPUS (0), SUT_CPUS (1),
// REDIS_CPUS (SUT_CPUS),
// BENCH_NODE_ARGS (extra node flags for the gateway, to try one before it goes in the image).
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3)
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 0)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1))
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1 16 64').split(/\s+/).filter(Boolean).map(Number)
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'chat stream').split(/\s+/).filter(Boolean) as ('chat' | 'stream')[]
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'full').split(/\s+/).filter(Boolean)
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 1)
const LOAD_CPU = process.env.LOADGEN_CPUS ?? '0'
const SUT_CPU = process.env.SUT_CPUS ?? '1'
// Redis beside the gateway by default (its CPU is part of what a request costs here); another
// list, e.g. the load generator's, shows the gateway as a cluster runs it (Redis in its own pod).
const REDIS_CPU = process.env.REDIS_CPUS ?? SUT_CPU
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)

const BODIES = {
  chat: JSON.stringify({ model: 'sim-model', messages: [{ role: 'user', content: 'Hello, how are you today?' }], max_tokens: 32 }),
  stream: JSON.stringify({
    model: 'sim-model',
    messages: [{ role: 'user', content: 'Hello, how are you today?' }],
    max_tokens: 32,
    stream: true,
    stream_options: { include_usage: true },
  }),
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

interface Target {
  name: string
  base: string
  headers: Record<string, string>
  pid?: number
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  const children: Child[] = []
  const stopAll = () => Promise.all(children.map((c) => c.stop()))
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)))
  try {
    const redis = await startRedis(undefined, undefined, REDIS_CPU)
    children.push(redis)
    const sims = []
    for (let i = 0; i < REPLICAS; i++) {
      const sim = await startSim('vllm', ['--tokens', '32', '--model', 'sim-model', '--id', `sim-${i}`], SUT_CPU)
      children.push(sim)
      sims.push(sim)
    }
    const targets: Target[] = [{ name: 'direct', base: sims[0].url, headers: {} }]
    const nodeMin = await startNodeMin(sims[0].url, SUT_CPU)
    if (nodeMin) {
      children.push(nodeMin.child)
      targets.push({ name: 'node-min', base: nodeMin.url, headers: {} })
    }
    for (const variant of VARIANTS) {
      const config = benchGatewayConfig({ redisUrl: redis.url, simUrls: sims.map((s) => s.url), limited: variant !== 'noquota' })
      const gw = await startGateway(config, {}, { pin: SUT_CPU, waitReady: true, nodeArgs: NODE_ARGS })
      children.push(gw)
      const key = await createBenchKey(gw.url)
      targets.push({ name: variant === 'full' ? 'gatehouse' : `gatehouse-${variant}`, base: gw.url, headers: { authorization: `Bearer ${key}` }, pid: gw.proc.pid })
    }

    const rows: BenchRow[] = []
    let peakRss: number | null = null
    const gateway = targets.find((t) => t.name === 'gatehouse')
    const idleRss = gateway?.pid ? rssMiB(gateway.pid) : NaN
    const samples: BenchRow[] = []
    for (let round = 1; round <= ROUNDS; round++)
    for (const scenario of SCENARIOS) {
      for (const c of CONCURRENCY) {
        for (const t of targets) {
          const point = {
            url: `${t.base}/v1/chat/completions`,
            body: BODIES[scenario],
            headers: { 'content-type': 'application/json', ...t.headers },
            connections: c,
            pin: LOAD_CPU,
            workDir: work,
          }
          await runWrk({ ...point, seconds: WARMUP })
          const sampler =
            t === gateway && scenario === 'stream' && c === Math.max(...CONCURRENCY)
              ? setInterval(() => (peakRss = Math.max(peakRss ?? 0, rssMiB(t.pid!))), 200)
              : null
          const r = await runWrk({ ...point, seconds: SECONDS })
          if (sampler) clearInterval(sampler)
          samples.push({ target: t.name, scenario, connections: c, rps: r.rps, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors })
          process.stderr.write(`r${round} ${scenario} c=${c} ${t.name}: ${r.rps.toFixed(0)} rps p50 ${r.p50ms.toFixed(2)} ms errors ${r.errors}\n`)
        }
      }
    }
    rows.push(...medianRows(samples))

    const ttft: BenchReport['ttft'] = {}
    for (const t of targets) {
      const out = execFileSync(
        'taskset',
        ['-c', LOAD_CPU, process.execPath, join(ROOT, 'dist', 'bench', 'ttft-probe.js'), `${t.base}/v1/chat/completions`, '100', BODIES.stream, JSON.stringify({ 'content-type': 'application/json', ...t.headers })],
        { encoding: 'utf8', timeout: 60000 },
      )
      ttft[t.name] = JSON.parse(out) as { p50: number; p99: number }
    }

    const soak = gateway?.pid && SOAK_SECONDS > 0 ? await runSoak(gateway, work) : null

    const report: BenchReport = {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
      startedAt: new Date().toISOString(),
      seconds: SECONDS,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      cpus: { loadGenerator: LOAD_CPU, measured: SUT_CPU, redis: REDIS_CPU },
      rows,
      ttft,
      gatewayRssMiB: { idle: idleRss, peakStreamC64: peakRss },
      soak,
    }
    const dir = join(ROOT, 'bench', 'results')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`)
    const md = markdown(report)
    writeFileSync(join(dir, 'latest.md'), md)
    process.stdout.write(md)
  } finally {
    await stopAll()
  }
}

/** Per target, scenario and concurrency, the round with the median RPS (the host is shared and noisy). */
function medianRows(samples: BenchRow[]): BenchRow[] {
  const groups = new Map<string, BenchRow[]>()
  for (const s of samples) {
    const key = `${s.scenario}|${s.connections}|${s.target}`
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  return [...groups.values()].map((g) => [...g].sort((a, b) => a.rps - b.rps)[Math.floor((g.length - 1) / 2)])
}

/** Streams at c=64 through the gateway for SOAK_SECONDS, sampling its RSS every 5 s. */
async function runSoak(gateway: Target, work: string): Promise<SoakResult> {
  const samples: number[] = []
  const sampler = setInterval(() => samples.push(rssMiB(gateway.pid!)), 5000)
  process.stderr.write(`soak: stream c=64 for ${SOAK_SECONDS} s\n`)
  const r = await runWrk({
    url: `${gateway.base}/v1/chat/completions`,
    body: BODIES.stream,
    headers: { 'content-type': 'application/json', ...gateway.headers },
    connections: 64,
    seconds: SOAK_SECONDS,
    pin: LOAD_CPU,
    workDir: work,
  })
  clearInterval(sampler)
  return soakSummary(samples, r.rps, r.errors, SOAK_SECONDS)
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
