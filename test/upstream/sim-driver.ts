import type { TestContext } from 'node:test'
import { BIN, startChild, waitForHttp, type SimHandle } from '../helpers/processes.js'
import { freePort } from '../helpers/ports.js'
import { errorCodeOf } from '../../src/upstream/health-probe.js'
import { isConnectionError, type Balancer, type Replica } from '../../src/upstream/index.js'

/**
 * Starts `gatehouse sim` on a given host and port (the shared startSim always uses
 * 127.0.0.1 and a fresh port; these tests need the same port again after a SIGKILL, and
 * loopback aliases for DNS).
 */
export async function startSimAt(kind: 'vllm' | 'ollama', flags: string[], host = '127.0.0.1', port?: number): Promise<SimHandle> {
  const p = port ?? (await freePort())
  const child = startChild(process.execPath, [BIN, 'sim', '--host', host, '--port', String(p), '--kind', kind, ...flags])
  const url = `http://${host}:${p}`
  try {
    await waitForHttp(kind === 'ollama' ? `${url}/api/version` : `${url}/health`)
  } catch (err) {
    await child.stop('SIGKILL')
    throw new Error(`${String(err)}\n${child.output()}`)
  }
  return { ...child, port: p, url }
}

/** startSimAt, stopped after the test `t` whatever its outcome (a failing start included). */
export async function simFor(
  t: TestContext,
  kind: 'vllm' | 'ollama',
  flags: string[],
  host?: string,
  port?: number,
): Promise<SimHandle> {
  const sim = await startSimAt(kind, flags, host, port)
  t.after(() => sim.stop())
  return sim
}

export interface Sent {
  /** The replica that answered last (null: none was available). */
  replica: Replica | null
  status: number | null
  error: string | null
  attempts: number
  text: string
}

export const chatBody = (stream: boolean, tokens = 8) =>
  JSON.stringify({ model: 'sim-model', stream, max_tokens: tokens, messages: [{ role: 'user', content: 'hello there' }] })

/**
 * One request through the balancer the way the proxy sends it: pick, begin, request on the
 * replica's pool, read the whole body, end exactly once; on a connection error or a 502/503
 * before the body, again on another replica, at most `maxRetries` more times.
 */
export async function send(balancer: Balancer, upstream: string, body: string, maxRetries = 2): Promise<Sent> {
  const tried = new Set<Replica>()
  let last: Sent = { replica: null, status: null, error: 'no_healthy_upstream', attempts: 0, text: '' }
  for (let attempt = 0; attempt <= maxRetries; attempt++) {
    const r = balancer.pick(upstream, tried)
    if (r === null) return { ...last, attempts: attempt }
    tried.add(r)
    balancer.begin(r)
    const started = performance.now()
    let status: number | null = null
    try {
      const res = await r.dispatcher.request({
        origin: r.origin,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      status = res.statusCode
      const text = await res.body.text()
      balancer.end(r, { status, error: null, durationMs: performance.now() - started })
      last = { replica: r, status, error: null, attempts: attempt + 1, text }
      if (status !== 502 && status !== 503) return last
    } catch (err) {
      // Before the headers: a connection error; after them: the stream was cut.
      const code = status === null ? errorCodeOf(err) : 'dropped'
      balancer.end(r, { status, error: code, durationMs: performance.now() - started })
      last = { replica: r, status, error: code, attempts: attempt + 1, text: '' }
      if (status !== null || !isConnectionError(code)) return last
    }
  }
  return last
}

/** Runs `total` sends with `concurrency` workers; `onEach` sees every result as it lands. */
export async function load(
  total: number,
  concurrency: number,
  one: (i: number) => Promise<Sent>,
  onEach?: (s: Sent, done: number) => void | Promise<void>,
): Promise<Sent[]> {
  const results: Sent[] = []
  let next = 0
  const worker = async () => {
    while (next < total) {
      const i = next++
      const s = await one(i)
      results.push(s)
      await onEach?.(s, results.length)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return results
}
