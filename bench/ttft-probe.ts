import { request } from 'node:http'

/**
 * Sequential time-to-first-token probe: N streaming requests, one at a time, measuring from
 * sending to the first content event. Run as its own process (pinned to the load core).
 * argv: URL N BODY_JSON HEADERS_JSON → prints one JSON line {p50, p99}.
 */
function once(url: URL, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let first = -1
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', (chunk: Buffer) => {
        if (first < 0 && chunk.includes('"content":"')) first = performance.now() - t0
      })
      res.on('end', () => (first < 0 ? reject(new Error(`no content event (status ${res.statusCode})`)) : resolve(first)))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function main(): Promise<void> {
  const [url, n, body, headers] = process.argv.slice(2)
  const target = new URL(url)
  const hdrs = JSON.parse(headers) as Record<string, string>
  for (let i = 0; i < 5; i++) await once(target, body, hdrs)
  const samples: number[] = []
  for (let i = 0; i < Number(n); i++) samples.push(await once(target, body, hdrs))
  samples.sort((a, b) => a - b)
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]
  process.stdout.write(`${JSON.stringify({ p50: at(0.5), p99: at(0.99) })}\n`)
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`)
  process.exitCode = 1
})
