import { after, before, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { Redis } from 'ioredis'
import { newApiKey } from '../../src/auth/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient, createRedisKeyStore, type KeyStore } from '../../src/store/index.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { waitUntil } from './harness.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// A replica whose invalidation subscription goes silent (a dead path: no reset, no messages)
// must stop trusting its key cache; otherwise a key revoked elsewhere keeps working on it for
// as long as the cache entry lives. Only the subscriber connection goes through the proxy.

let redis: RedisHandle
let proxy: TcpProxy
const clients: Redis[] = []
const stores: KeyStore[] = []

async function ready(client: Redis): Promise<Redis> {
  if (client.status !== 'ready') await once(client, 'ready')
  clients.push(client)
  return client
}

before(async () => {
  redis = await startRedis()
  proxy = await startTcpProxy(redis.port)
})
after(async () => {
  for (const s of stores) await s.close()
  for (const c of clients) c.disconnect()
  await proxy?.close()
  await redis?.stop()
})

it('a silent subscription drops the key cache: a key revoked by another replica is refused', async () => {
  const prefix = 'faults-sub:'
  const viaProxy = await ready(createRedisClient(`redis://127.0.0.1:${proxy.port}`, silentLogger, 'sub-proxied'))
  // A long cache lifetime: only the heartbeat can make this replica look again.
  const watched = createRedisKeyStore({
    redis: await ready(createRedisClient(redis.url, silentLogger, 'cmd-a')),
    subscriber: viaProxy,
    prefix,
    log: silentLogger,
    cacheTtlMs: 600_000,
    heartbeatMs: 200,
  })
  const other = createRedisKeyStore({
    redis: await ready(createRedisClient(redis.url, silentLogger, 'cmd-b')),
    subscriber: await ready(createRedisClient(redis.url, silentLogger, 'sub-b')),
    prefix,
    log: silentLogger,
  })
  stores.push(watched, other)
  const { hash } = newApiKey()
  const record = await other.create({ name: 'k', subject: null, roles: ['user'], models: null, limits: null, expiresAt: null, hash })
  // Subscribed and cached on the watched replica.
  assert.ok(await waitUntil(async () => (await watched.findByHash(hash))?.id === record.id))

  proxy.setMode({ kind: 'blackhole' })
  await other.revoke(record.id)
  const refused = await waitUntil(async () => (await watched.findByHash(hash))?.revokedAt != null, 15_000)
  assert.ok(refused, 'the replica kept serving a revoked key from its cache while its subscription was dead')
  proxy.setMode({ kind: 'pass' })
})
