import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { serve, type ServerType } from '@hono/node-server'
import { runKeysCli, type KeysCliIo } from '../../src/cli/keys.js'
import { freePort } from '../helpers/ports.js'
import { ADMIN_TOKEN, adminHarness, type Harness } from './harness.js'

function io(env: NodeJS.ProcessEnv = {}): KeysCliIo & { stdout: () => string; stderr: () => string } {
  let out = ''
  let err = ''
  return { env, out: (t) => (out += t), err: (t) => (err += t), stdout: () => out, stderr: () => err }
}

describe('gatehouse keys (CLI over the admin API)', () => {
  let h: Harness
  let server: ServerType
  let url: string

  before(async () => {
    h = adminHarness()
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    await new Promise<void>((resolve) => {
      server = serve({ fetch: h.app.fetch, port, hostname: '127.0.0.1' }, () => resolve())
    })
  })
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await h.close()
  })

  it('creates, lists, rotates and revokes a key', async () => {
    const c = io({ GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    const code = await runKeysCli(['create', '--url', url, '--name', 'cli-key', '--roles', 'analyst,batch', '--models', 'llama-*', '--expires-at', '2999-01-01'], c)
    assert.equal(code, 0, c.stderr())
    const [id, key] = c.stdout().trim().split('\n')
    assert.match(id, /^key_/)
    assert.match(key, /^ghk_/)
    const p = await h.auth.authenticate(`Bearer ${key}`)
    assert.deepEqual([p.keyId, p.roles, p.keyModels], [id, ['analyst', 'batch'], ['llama-*']])

    const l = io()
    assert.equal(await runKeysCli(['list', '--url', url, '--admin-token', ADMIN_TOKEN], l), 0)
    assert.match(l.stdout(), new RegExp(`${id}\\s+cli-key\\s+key:${id}\\s+analyst,batch\\s+2999-01-01`))
    assert.ok(!l.stdout().includes(key))

    const r = io({ GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    assert.equal(await runKeysCli(['rotate', id, '--url', url], r), 0)
    const newKey = r.stdout().trim().split('\n')[1]
    assert.notEqual(newKey, key)
    assert.equal((await h.auth.authenticate(`Bearer ${newKey}`)).keyId, id)

    const d = io({ GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    assert.equal(await runKeysCli(['revoke', id, '--url', url], d), 0)
    assert.match(d.stdout(), new RegExp(`${id} revoked at `))
    await assert.rejects(h.auth.authenticate(`Bearer ${newKey}`), { reason: 'revoked' })
  })

  it('exits 2 on bad usage and 1 when the gateway refuses, without printing the token', async () => {
    const noToken = io()
    assert.equal(await runKeysCli(['list', '--url', url], noToken), 2)
    assert.match(noToken.stderr(), /admin token/)
    assert.equal(await runKeysCli(['create', '--url', url, '--admin-token', ADMIN_TOKEN], io()), 2)
    assert.equal(await runKeysCli(['explode', '--url', url, '--admin-token', ADMIN_TOKEN], io()), 2)

    const wrong = io()
    assert.equal(await runKeysCli(['list', '--url', url, '--admin-token', 'not-the-token-at-all'], wrong), 1)
    assert.match(wrong.stderr(), /401/)
    assert.ok(!wrong.stderr().includes('not-the-token-at-all'))

    const badRole = io({ GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    assert.equal(await runKeysCli(['create', '--url', url, '--name', 'x', '--roles', 'root'], badRole), 1)
    assert.match(badRole.stderr(), /400: unknown role "root"/)

    const down = io({ GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN })
    assert.equal(await runKeysCli(['list', '--url', `http://127.0.0.1:${await freePort()}`], down), 1)
    assert.match(down.stderr(), /cannot reach/)
  })
})
