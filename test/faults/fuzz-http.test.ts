import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startGateway, type GatewayHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey } from '../e2e/helpers.js'
import { anyRoute, startFakeReplica, type FakeReplica } from './fake-replica.js'
import { FUZZ_SEED, fuzzCorpus, type FuzzCase, type FuzzContext } from './fuzz-corpus.js'
import { rawCorpus, sendRaw } from './fuzz-raw.js'
import { alive, faultConfig, keyList, mapLimit, openAIErrorProblem } from './harness.js'
import { needleTap, startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// Hostile input against a running gateway: a seeded fast-check corpus (FUZZ_CASES, default
// 10,000) of request bodies, header sets and admin paths sent 16 at a time over keep-alive,
// then raw-socket requests undici will not send. Never a crash, never a 500, every error in
// OpenAI's shape, no credential reaching the replica (every byte the gateway sends upstream
// is scanned through a TCP proxy in front of a fake replica), the key store unchanged.

const CASES = Number(process.env.FUZZ_CASES ?? 10_000)
const RAW_CASES = 400
const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/

describe(`hostile input (seed ${FUZZ_SEED})`, () => {
  let replica: FakeReplica
  let proxy: TcpProxy
  let gw: GatewayHandle
  let tap: ReturnType<typeof needleTap>
  let ctx: FuzzContext
  let keysBefore = ''
  const statuses = new Map<number, number>()

  before(async () => {
    // Not the simulator: deeply nested input overflows its token counting (src/sim/prompt.ts),
    // and this test is about the gateway. Every byte sent upstream crosses the tapped proxy.
    replica = await startFakeReplica(anyRoute())
    tap = needleTap([])
    proxy = await startTcpProxy(Number(new URL(replica.url).port), (chunk, dir, conn) => tap.tap(chunk, dir, conn))
    const yaml = faultConfig({ models: { m: 'sim' }, upstreams: { sim: { targets: [`http://127.0.0.1:${proxy.port}`] } } })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' })
    const client = await createKey(gw, { name: 'fuzz-client', roles: ['user'] })
    const victim = await createKey(gw, { name: 'fuzz-victim', roles: ['user'] })
    ctx = { clientKey: client.key, adminToken: ADMIN_TOKEN, keyId: victim.id, model: 'm' }
    // The tap was created before the keys existed: look for them from now on.
    tap = needleTap([client.key, victim.key, ADMIN_TOKEN])
    keysBefore = await keyList(gw)
  })
  after(async () => {
    await gw?.stop()
    await proxy?.close()
    await replica?.close()
  })

  /** Why an answer breaks the contract, or null. */
  function problem(status: number, body: string, sentId: string | undefined, gotId: string | undefined): string | null {
    if (status === 500 || status > 504 || status < 100) return `status ${status}: ${body.slice(0, 160)}`
    if (status >= 400) {
      let parsed: unknown
      try {
        parsed = JSON.parse(body)
      } catch {
        return `status ${status} with a non-JSON body: ${body.slice(0, 160)}`
      }
      const p = openAIErrorProblem(parsed)
      if (p) return `status ${status}: ${p}: ${body.slice(0, 160)}`
    }
    if (gotId === undefined || !SANE_ID.test(gotId)) return `x-request-id answered ${JSON.stringify(gotId)}`
    if (sentId !== undefined && SANE_ID.test(sentId) && gotId !== sentId) return `a sane x-request-id was not echoed`
    return null
  }

  it(`${CASES} generated bodies, header sets and paths: no 500, OpenAI-shaped errors, sane request ids`, async (t) => {
    const corpus = fuzzCorpus(ctx, CASES)
    const agent = new Agent({ connections: 16, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
    const failures: string[] = []
    try {
      await mapLimit(corpus, 16, async (c: FuzzCase, i) => {
        try {
          const res = await request(`${gw.url}${c.path}`, { method: c.method, headers: c.headers, body: c.body, dispatcher: agent })
          const body = await res.body.text()
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
          const got = res.headers['x-request-id']
          const p = problem(res.statusCode, body, c.headers['x-request-id'], Array.isArray(got) ? got.join(',') : got)
          if (p) failures.push(`#${i} ${c.kind} ${c.method} ${c.path.slice(0, 80)}: ${p}`)
        } catch (err) {
          failures.push(`#${i} ${c.kind} ${c.method} ${c.path.slice(0, 80)}: no answer (${(err as Error).message})`)
        }
      })
    } finally {
      await agent.close()
    }
    const seen = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ')
    t.diagnostic(`statuses ${seen}; ${tap.bytes()} bytes sent upstream`)
    assert.ok(alive(gw), 'the gateway process exited')
    assert.deepEqual(failures.slice(0, 15), [], `${failures.length} of ${CASES} broke the contract (statuses ${seen})`)
    assert.ok((statuses.get(200) ?? 0) > CASES / 10, `too few requests reached the replica to mean much (statuses ${seen})`)
  })

  it(`${RAW_CASES} raw requests (CR/LF/NUL injection, smuggling, broken request lines): no 500, no injected header, OpenAI-shaped`, async (t) => {
    const failures: string[] = []
    const rawStatuses = new Map<number, number>()
    await mapLimit(rawCorpus(ctx, RAW_CASES), 16, async (bytes, i) => {
      const answer = await sendRaw(gw.port, bytes)
      if (!answer) return failures.push(`#${i}: no answer at all`)
      rawStatuses.set(answer.status, (rawStatuses.get(answer.status) ?? 0) + 1)
      if ([...answer.headers.keys()].some((h) => h.includes('injected'))) failures.push(`#${i}: injected header echoed`)
      const p = problem(answer.status, answer.body, undefined, answer.headers.get('x-request-id') ?? (answer.status >= 400 ? 'none' : undefined))
      if (p) failures.push(`#${i} ${bytes.toString('latin1').split('\r\n')[0].slice(0, 60)}: ${p}`)
    })
    t.diagnostic(`raw statuses ${[...rawStatuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ')}`)
    assert.ok(alive(gw), 'the gateway process exited')
    assert.deepEqual(failures.slice(0, 15), [], `${failures.length} raw requests broke the contract`)
  })

  it('afterwards: alive and healthy, the key store unchanged, no credential upstream, in the audit trail or in the log', async () => {
    assert.ok(alive(gw), 'the gateway process exited')
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200)
    assert.equal(await keyList(gw), keysBefore, 'the key store changed')
    assert.ok(tap.bytes() > 0, 'nothing was sent upstream')
    assert.deepEqual(tap.found(), [], 'a client credential reached the replica')
    const audit = readFileSync(join(gw.dir, 'audit.jsonl'), 'utf8')
    const log = gw.output()
    for (const secret of [ctx.clientKey, ADMIN_TOKEN]) {
      assert.ok(!audit.includes(secret), 'a credential is in the audit trail')
      assert.ok(!log.includes(secret), 'a credential is in the gateway log')
    }
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.clientKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'still there?' }] }),
    })
    assert.equal(res.status, 200)
    await res.arrayBuffer()
  })
})
