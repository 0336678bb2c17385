import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** One measured point: closed-loop wrk with `connections` keep-alive connections. */
export interface WrkResult {
  rps: number
  p50ms: number
  p99ms: number
  requests: number
  errors: number
}

export interface WrkPoint {
  url: string
  body: string
  headers: Record<string, string>
  connections: number
  seconds: number
  pin?: string
  workDir: string
}

// wrk reports through this Lua hook so the numbers come out as one JSON line.
function luaScript(body: string, headers: Record<string, string>): string {
  const lines = ['wrk.method = "POST"', `wrk.body = ${JSON.stringify(body)}`]
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("WRK_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,\\"p50\\":%d,\\"p99\\":%d}\\n",',
    '    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,',
    '    latency:percentile(50), latency:percentile(99)))',
    'end',
  )
  return lines.join('\n')
}

/** Runs wrk for one point, bounded by `seconds` (+ a hard timeout). */
export function runWrk(point: WrkPoint): Promise<WrkResult> {
  const script = join(point.workDir, `wrk-${process.pid}-${Date.now()}.lua`)
  writeFileSync(script, luaScript(point.body, point.headers))
  const args = ['-t1', `-c${point.connections}`, `-d${point.seconds}s`, '--timeout', '10s', '-s', script, point.url]
  const cmd = point.pin ? 'taskset' : 'wrk'
  const argv = point.pin ? ['-c', point.pin, 'wrk', ...args] : args
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const killer = setTimeout(() => child.kill('SIGKILL'), (point.seconds + 15) * 1000)
    child.on('exit', () => {
      clearTimeout(killer)
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '))
      if (!line) return reject(new Error(`wrk gave no result:\n${out}`))
      const r = JSON.parse(line.slice(9)) as { requests: number; duration_us: number; errors: number; p50: number; p99: number }
      resolve({
        rps: r.requests / (r.duration_us / 1e6),
        p50ms: r.p50 / 1000,
        p99ms: r.p99 / 1000,
        requests: r.requests,
        errors: r.errors,
      })
    })
  })
}
