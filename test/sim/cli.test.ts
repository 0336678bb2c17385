// `gatehouse sim` as a command: help, flag errors, the startup line, clean stop on signals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { BIN, startChild, waitForHttp } from '../helpers/processes.js'
import { freePort } from '../helpers/ports.js'

test('--help lists every flag', () => {
  const r = spawnSync(process.execPath, [BIN, 'sim', '--help'], { encoding: 'utf8' })
  assert.equal(r.status, 0)
  const flags = ['--port', '--host', '--kind', '--model', '--id', '--ttft-ms', '--itl-ms', '--tokens', '--max-batch', '--error-rate',
    '--error-status', '--hang-rate', '--drop-rate', '--drop-after', '--api-key']
  for (const flag of flags) assert.ok(r.stdout.includes(flag), `help mentions ${flag}`)
})

test('bad flags exit 2 naming every problem', () => {
  const r = spawnSync(process.execPath, [BIN, 'sim', '--kind', 'tgi', '--error-rate', '3', '--bogus', 'x'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--port: required/)
  assert.match(r.stderr, /--kind/)
  assert.match(r.stderr, /--error-rate/)
  assert.match(r.stderr, /--bogus: unknown flag/)
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`prints its address and stops cleanly on ${signal}`, async () => {
    const port = await freePort()
    const child = startChild(process.execPath, [BIN, 'sim', '--port', String(port), '--kind', 'ollama'])
    try {
      await waitForHttp(`http://127.0.0.1:${port}/api/version`)
      // The line is written before the first request is served, but it travels a different pipe.
      for (let i = 0; i < 200 && !child.output().endsWith('\n'); i++) await new Promise((r) => setTimeout(r, 10))
      assert.equal(child.output(), `sim ollama listening on http://127.0.0.1:${port}\n`)
    } finally {
      assert.equal(await child.stop(signal), 0)
    }
  })
}
