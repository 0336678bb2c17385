import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../helpers/ports.js'
import { BIN, startChild, startGateway, startSim, waitForHttp, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { ADMIN_TOKEN, createKey } from '../e2e/helpers.js'
import { faultConfig, readAudit, usageOf, waitUntil } from './harness.js'

// SIGTERM: the gateway stops accepting, lets streams in flight finish within --grace-ms (or
// cuts them when it runs out), writes every audit line and every quota settlement, and
// exits 0. Usage is read afterwards through a fresh gateway on the same Redis.

describe('SIGTERM: graceful stop', () => {
  let redis: RedisHandle
  let sim: SimHandle
  let yaml = ''

  before(async () => {
    redis = await startRedis()
    sim = await startSim('vllm', ['--model', 'm'])
    yaml = faultConfig({ redis: redis.url, models: { m: 'sim' }, upstreams: { sim: { targets: [sim.url] } } })
  })
  after(async () => {
    await sim?.stop()
    await redis?.stop()
  })

  /** `gatehouse serve --grace-ms N` on `yaml` (the helper's startGateway takes no flags). */
  async function serve(graceMs: number): Promise<GatewayHandle> {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sigterm-'))
    const [port, metricsPort] = [await freePort(), await freePort()]
    const configPath = join(dir, 'gatehouse.yaml')
    writeFileSync(configPath, yaml.replaceAll('$PORT', String(port)).replaceAll('$METRICS_PORT', String(metricsPort)).replaceAll('$DIR', dir))
    const child = startChild(process.execPath, [BIN, 'serve', '--config', configPath, '--grace-ms', String(graceMs)], { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    const url = `http://127.0.0.1:${port}`
    await waitForHttp(`${url}/readyz`, 15_000, true, child)
    return { ...child, port, metricsPort, url, metricsUrl: `http://127.0.0.1:${metricsPort}`, dir, configPath }
  }

  const simConfig = (settings: Record<string, number>) =>
    fetch(`${sim.url}/sim/config`, { method: 'POST', body: JSON.stringify(settings) }).then((r) => r.arrayBuffer())

  /** Starts a request and waits for its first bytes; `rest` resolves to the whole text (or the error). */
  async function inFlight(gw: GatewayHandle, key: string, id: string, stream: boolean) {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id, connection: 'close' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'a long answer please' }], stream }),
    })
    const reader = res.body!.getReader()
    let text = ''
    if (stream) text += new TextDecoder().decode((await reader.read()).value)
    const rest = (async () => {
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
        return { status: res.status, text, cut: false }
      } catch {
        return { status: res.status, text, cut: true }
      }
    })()
    return { id, rest }
  }

  /** What a fresh gateway on the same Redis reports for `subject`. */
  async function usageAfter(subject: string) {
    const observer = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN }, { waitReady: true })
    try {
      return await usageOf(observer, subject)
    } finally {
      await observer.stop()
    }
  }

  const refusesConnections = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(false)))
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
    })

  it('streams and requests in flight finish within the grace period; new connections refused; all audited and settled; exit 0', async () => {
    await simConfig({ itlMs: 50, tokens: 30 })
    const gw = await serve(20_000)
    try {
      const subject = 'sigterm-finish'
      const { key } = await createKey(gw, { name: 'finish', roles: ['user'], subject })
      const calls = await Promise.all(Array.from({ length: 8 }, (_, i) => inFlight(gw, key, `sigterm-finish-${i}`, i < 6)))
      const exited = once(gw.proc, 'exit')
      gw.proc.kill('SIGTERM')
      assert.ok(await waitUntil(() => refusesConnections(gw.port), 3000), 'still accepting connections after SIGTERM')
      const results = await Promise.all(calls.map((c) => c.rest))
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, 200)
        assert.equal(r.cut, false, `request ${i} was cut`)
        if (i < 6) assert.match(r.text, /data: \[DONE\]/)
        else assert.equal((JSON.parse(r.text) as { usage: { completion_tokens: number } }).usage.completion_tokens, 30)
      }
      const [code] = (await exited) as [number | null]
      assert.equal(code, 0, gw.output().slice(-2000))
      const audit = readAudit(gw.dir)
      for (const c of calls) {
        const line = audit.find((l) => l.requestId === c.id)
        assert.ok(line, `no audit line for ${c.id}`)
        assert.equal(line.status, 200)
        assert.equal(line.usageSource, 'upstream')
      }
      const usage = await usageAfter(subject)
      assert.deepEqual([usage.requests, usage.completion], [8, 8 * 30], 'settlements lost at shutdown')
    } finally {
      await gw.stop('SIGKILL')
    }
  })

  it('streams longer than the grace period are cut when it ends, and are still audited and settled; exit 0', async () => {
    await simConfig({ itlMs: 100, tokens: 300 })
    const gw = await serve(1000)
    try {
      const subject = 'sigterm-cut'
      const { key } = await createKey(gw, { name: 'cut', roles: ['user'], subject })
      const calls = await Promise.all(Array.from({ length: 4 }, (_, i) => inFlight(gw, key, `sigterm-cut-${i}`, true)))
      const exited = once(gw.proc, 'exit')
      gw.proc.kill('SIGTERM')
      const results = await Promise.all(calls.map((c) => c.rest))
      for (const r of results) assert.ok(r.cut || !r.text.includes('[DONE]'), 'a 30 s stream finished within a 1 s grace period')
      const [code] = (await exited) as [number | null]
      assert.equal(code, 0, gw.output().slice(-2000))
      const audit = readAudit(gw.dir)
      for (const c of calls) {
        const line = audit.find((l) => l.requestId === c.id)
        assert.ok(line, `no audit line for the cut stream ${c.id}`)
        assert.equal(line.usageSource, 'estimated')
      }
      const usage = await usageAfter(subject)
      assert.equal(usage.requests, 4, 'cut streams not settled at shutdown')
      assert.ok(usage.completion >= 4, 'the tokens streamed before the cut were not counted')
    } finally {
      await gw.stop('SIGKILL')
      await simConfig({ itlMs: 0, tokens: 16 })
    }
  })
})
