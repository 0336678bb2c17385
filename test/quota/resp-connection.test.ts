import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { LuaScript, RespConnection, RespUnavailable } from '../../src/store/resp-connection.js'
import { RespError } from '../../src/store/resp-parser.js'
import { freePort } from '../helpers/ports.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { captureLogger, endpointFromUrl, eventually } from './quota-helpers.js'

// The quota scripts' own connection, against a real redis-server: order, script reloading,
// failing fast, timeouts and authentication.

const ADD = new LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
let redis: RedisHandle
let admin: Redis
const open: RespConnection[] = []

function connect(url: string, opts: Partial<ConstructorParameters<typeof RespConnection>[2]> = {}, log = silentLogger): RespConnection {
  const c = new RespConnection(endpointFromUrl(url), log, { name: 'resp-test', scripts: [ADD], ...opts })
  open.push(c)
  return c
}

before(async () => {
  redis = await startRedis()
  admin = createRedisClient(redis.url, silentLogger, 'resp-test-admin')
  assert.ok(await eventually(() => admin.status === 'ready', 5000))
})

after(async () => {
  await Promise.all(open.map((c) => c.close()))
  admin?.disconnect()
  await redis?.stop()
})

test('commands issued in one tick run in the order issued, each answered in turn', async () => {
  const c = connect(redis.url)
  assert.ok(await eventually(() => c.isReady(), 5000))
  const replies = await Promise.all([
    c.evalsha(ADD, 1, ['resp:order', 5]),
    c.call(['GET', 'resp:order']),
    c.evalsha(ADD, 1, ['resp:order', -2]),
    c.call(['GET', 'resp:order']),
    c.call(['NOSUCHCOMMAND']),
    c.call(['HGETALL', 'resp:none']),
  ])
  assert.deepEqual(replies.slice(0, 4), [5, '5', 3, '3'])
  assert.ok(replies[4] instanceof RespError && /unknown command/i.test(replies[4].message))
  assert.deepEqual(replies[5], [])
})

test('scripts flushed from Redis behind its back still run (NOSCRIPT → EVAL), and are loaded again on a new connection', async () => {
  const c = connect(redis.url)
  assert.ok(await eventually(() => c.isReady(), 5000))
  await admin.script('FLUSH')
  assert.equal(await c.evalsha(ADD, 1, ['resp:flushed', 4]), 4)
  await admin.script('FLUSH')
  await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  assert.ok(await eventually(() => !c.isReady(), 5000), 'the kill was noticed')
  assert.ok(await eventually(() => c.isReady(), 5000), 'reconnected')
  assert.deepEqual(await admin.script('EXISTS', ADD.sha), [1], 'the script was loaded on the new connection')
})

test('nothing listening: every call rejects at once, unavailable', async () => {
  const c = connect(`redis://127.0.0.1:${await freePort()}`)
  await assert.rejects(c.call(['PING']), RespUnavailable)
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(c.isReady(), false)
  await assert.rejects(c.evalsha(ADD, 1, ['k', 1]), RespUnavailable)
})

test('Redis stops answering: the call fails after the command timeout, the owner is told, and a new connection serves again', async () => {
  let timeouts = 0
  const c = connect(redis.url, { commandTimeoutMs: 300, onTimeout: () => timeouts++ })
  assert.ok(await eventually(() => c.isReady(), 5000))
  // CLIENT PAUSE holds every client's commands on the server: the socket stays open, silent.
  await admin.call('CLIENT', 'PAUSE', '800', 'ALL')
  await assert.rejects(c.call(['PING']), RespUnavailable)
  assert.equal(timeouts, 1)
  const ping = () => c.call(['PING']).catch((err: Error) => err.name)
  assert.ok(await eventually(async () => (await ping()) === 'PONG', 5000))
})

test('a password in the URL authenticates; a wrong one is refused, logged by its code only, never ready', async () => {
  const secured = await startRedis()
  try {
    const setup = createRedisClient(secured.url, silentLogger, 'resp-test-setup')
    assert.ok(await eventually(() => setup.status === 'ready', 5000))
    await setup.call('ACL', 'SETUSER', 'quota', 'on', '>s3cret-pass', '~*', '+@all')
    // The manifests' form: a password for the default user only (`redis://:pass@host`).
    await setup.call('CONFIG', 'SET', 'requirepass', 'default-pass')
    setup.disconnect()
    const passwordOnly = connect(`redis://:default-pass@127.0.0.1:${secured.port}`)
    assert.ok(await eventually(() => passwordOnly.isReady(), 5000))
    assert.equal(await passwordOnly.call(['PING']), 'PONG')
    const good = connect(`redis://quota:s3cret-pass@127.0.0.1:${secured.port}/2`)
    assert.ok(await eventually(() => good.isReady(), 5000))
    await good.call(['SET', 'resp:db', 'x'])
    assert.deepEqual(await good.call(['CLIENT', 'INFO']).then((info) => /db=2/.test(String(info))), true)
    const log = captureLogger()
    const bad = connect(`redis://quota:wrong-pass@127.0.0.1:${secured.port}`, {}, log)
    assert.ok(await eventually(() => log.lines.some((l) => l.level === 'error'), 5000))
    assert.equal(bad.isReady(), false)
    const text = JSON.stringify(log.lines)
    assert.match(text, /WRONGPASS/)
    assert.doesNotMatch(text, /wrong-pass|s3cret|default-pass/)
  } finally {
    await secured.stop()
  }
})
