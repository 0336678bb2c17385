import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from './helpers.js'

// The gateway's node flags (GATEWAY_NODE_FLAGS: the image's CMD, the Deployment, npm start
// and bin/gatehouse.js carry the same, test/deploy checks) turn V8's allocation-site
// pretenuring off: left on, it can tenure per-request object sites at warm-up, and those
// objects, dead in the old generation, keep the young ones they point to alive until a full
// collection: about half the processes promoted most of every request (bench/README.md).
// With `--trace-pretenuring-statistics`, V8 prints what it weighs at each young-generation
// collection that found a tracked site: under this load with pretenuring on, dozens of
// lines; off, none. (Setting the flag at run time with v8.setFlagsFromString does not stop
// V8's decisions: it has to be on the command line.)

const config = (sim: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["*"] }
models:
  m: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: ["${sim}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

describe('V8 flags of the gateway process', () => {
  let sim: SimHandle
  let gw: GatewayHandle
  let key: string

  before(async () => {
    sim = await startSim('vllm', ['--model', 'm', '--tokens', '8'])
    ;({ gw, key } = await gatewayWithKey(config(sim.url), ['dev'], {}, { nodeArgs: ['--trace-pretenuring', '--trace-pretenuring-statistics'] }))
  })
  after(async () => {
    await gw?.stop()
    await sim?.stop()
  })

  test('allocation-site pretenuring stays off under load', async () => {
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] })
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
    let ok = 0
    // 16 callers, 250 requests each: enough young-generation collections for V8 to judge its sites.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 250; i++) {
          const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers, body })
          if (res.status === 200) ok++
          await res.arrayBuffer()
        }
      }),
    )
    assert.equal(ok, 4000)
    const decisions = gw.output().split('\n').filter((l) => l.includes('pretenuring'))
    assert.deepEqual(decisions.slice(0, 3), [], 'V8 made pretenuring decisions in the gateway process')
  })
})
