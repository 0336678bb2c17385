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

export interface BenchReport {
  machine: string
  startedAt: string
  seconds: number
  rows: BenchRow[]
  ttft: Record<string, { p50: number; p99: number }>
  gatewayRssMiB: { idle: number; peakStreamC64: number | null }
}

function fmt(n: number, digits = 2): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function markdown(report: BenchReport): string {
  const out: string[] = [
    `# Gatehouse benchmark (${report.startedAt})`,
    '',
    `Machine: ${report.machine}. ${report.seconds} s per point after a 1 s warm-up; wrk on CPU 0, simulator + gateway (+ Redis) on CPU 1; simulator at zero latency, 32 tokens per reply.`,
    '',
    '| scenario | c | target | RPS | ×direct | p50 ms | p99 ms | added p50 ms | errors |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const row of report.rows) {
    const direct = report.rows.find((r) => r.target === 'direct' && r.scenario === row.scenario && r.connections === row.connections)
    const ratio = direct ? row.rps / direct.rps : NaN
    const added = direct ? row.p50ms - direct.p50ms : NaN
    out.push(
      `| ${row.scenario} | ${row.connections} | ${row.target} | ${fmt(row.rps, 0)} | ${fmt(ratio)}× | ${fmt(row.p50ms)} | ${fmt(row.p99ms)} | ${fmt(added)} | ${row.errors} |`,
    )
  }
  out.push('', '| target | TTFT p50 ms | TTFT p99 ms |', '|---|---:|---:|')
  for (const [target, t] of Object.entries(report.ttft)) out.push(`| ${target} | ${fmt(t.p50)} | ${fmt(t.p99)} |`)
  out.push(
    '',
    `Gateway RSS: ${fmt(report.gatewayRssMiB.idle, 1)} MiB idle, ${report.gatewayRssMiB.peakStreamC64 === null ? 'n/a' : fmt(report.gatewayRssMiB.peakStreamC64, 1)} MiB peak during stream c=64.`,
    '',
  )
  return out.join('\n')
}
