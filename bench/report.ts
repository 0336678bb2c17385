/** A measured point of the matrix, and the markdown table made from all of them. */
export interface BenchRow {
  target: string
  scenario: 'chat' | 'stream'
  connections: number
  rps: number
  p50ms: number
  p99ms: number
  errors: number
}

/** The 5-minute soak: RSS sampled every 5 s while streaming at c=64. */
export interface SoakResult {
  seconds: number
  rps: number
  errors: number
  samplesMiB: number[]
  /** Mean RSS over the first and the last minute (the first 30 s, warming up, left out). */
  firstMinuteMiB: number
  lastMinuteMiB: number
  maxMiB: number
}

export interface BenchReport {
  machine: string
  startedAt: string
  seconds: number
  warmupSeconds: number
  rounds: number
  /** Where each process ran: `taskset` CPU lists. */
  cpus: { loadGenerator: string; measured: string; redis: string }
  rows: BenchRow[]
  ttft: Record<string, { p50: number; p99: number }>
  gatewayRssMiB: { idle: number; peakStreamC64: number | null }
  soak: SoakResult | null
}

const mean = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length)

/** Summarises RSS samples taken every 5 s over a soak of `seconds`. */
export function soakSummary(samplesMiB: number[], rps: number, errors: number, seconds: number): SoakResult {
  const perMinute = 12
  const settled = samplesMiB.slice(6)
  return {
    seconds,
    rps,
    errors,
    samplesMiB,
    firstMinuteMiB: mean(settled.slice(0, perMinute)),
    lastMinuteMiB: mean(samplesMiB.slice(-perMinute)),
    maxMiB: Math.max(...samplesMiB),
  }
}

function fmt(n: number, digits = 2): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

function pinning(cpus: BenchReport['cpus'] | undefined): string {
  // Reports written before the field existed: that layout, with Redis unpinned.
  const c = cpus ?? { loadGenerator: '0', measured: '1', redis: 'any' }
  const redis = c.redis === c.measured ? ' + Redis' : ''
  const apart = c.redis === c.measured ? '' : `, Redis on CPU ${c.redis}`
  return `wrk on CPU ${c.loadGenerator}, simulator + gateway${redis} on CPU ${c.measured}${apart}`
}

export function markdown(report: BenchReport): string {
  const out: string[] = [
    `# Gatehouse benchmark (${report.startedAt})`,
    '',
    `Machine: ${report.machine}. ${report.seconds} s per point after a ${report.warmupSeconds} s warm-up, ${report.rounds} round(s) with targets interleaved, median-RPS round shown; ${pinning(report.cpus)}; simulator at zero latency, 32 tokens per reply.`,
    '',
    '| scenario | c | target | RPS | ×direct | ×node-min | p50 ms | p99 ms | added p50 ms | errors |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  const find = (target: string, row: BenchRow) =>
    report.rows.find((r) => r.target === target && r.scenario === row.scenario && r.connections === row.connections)
  for (const row of report.rows) {
    const direct = find('direct', row)
    const nodeMin = find('node-min', row)
    const ratio = direct ? row.rps / direct.rps : NaN
    const vsNodeMin = nodeMin ? `${fmt(row.rps / nodeMin.rps)}×` : 'n/a'
    const added = direct ? row.p50ms - direct.p50ms : NaN
    out.push(
      `| ${row.scenario} | ${row.connections} | ${row.target} | ${fmt(row.rps, 0)} | ${fmt(ratio)}× | ${vsNodeMin} | ${fmt(row.p50ms)} | ${fmt(row.p99ms)} | ${fmt(added)} | ${row.errors} |`,
    )
  }
  out.push('', '| target | TTFT p50 ms | TTFT p99 ms |', '|---|---:|---:|')
  for (const [target, t] of Object.entries(report.ttft)) out.push(`| ${target} | ${fmt(t.p50)} | ${fmt(t.p99)} |`)
  out.push(
    '',
    `Gateway RSS: ${fmt(report.gatewayRssMiB.idle, 1)} MiB idle, ${report.gatewayRssMiB.peakStreamC64 === null ? 'n/a' : fmt(report.gatewayRssMiB.peakStreamC64, 1)} MiB peak during stream c=64.`,
    '',
  )
  const s = report.soak
  if (s) {
    out.push(
      `Soak (stream c=64, ${s.seconds} s, ${fmt(s.rps, 0)} RPS, ${s.errors} errors): RSS ${fmt(s.firstMinuteMiB, 1)} MiB mean over the first minute (after 30 s), ${fmt(s.lastMinuteMiB, 1)} MiB over the last, ${fmt(s.maxMiB, 1)} MiB at most.`,
      '',
    )
  }
  return out.join('\n')
}
