import type { Redis } from 'ioredis'
import { ServiceUnavailable } from '../errors/index.js'
import type { Logger } from '../log/index.js'
import { LastUsedTracker } from './keys-last-used.js'
import { buildRecord, freezeRecord, laterOf, newKeyId } from './keys-record.js'
import { REVOKE_SCRIPT, ROTATE_SCRIPT, TOUCH_SCRIPT, decodeRecord, encodeRecord, keyStoreKeys } from './keys-redis-codec.js'
import type { ApiKeyRecord, KeyStore, RotateResult } from './keys-types.js'

export interface RedisKeyStoreOptions {
  /** The shared command connection (not closed by the store). */
  redis: Redis
  /** A connection of its own for pub/sub; the store closes it. */
  subscriber: Redis
  prefix: string
  log: Logger
  /** A cached key is re-read after this long even without an invalidation message. */
  cacheTtlMs?: number
  cacheSize?: number
  flushIntervalMs?: number
  /** How often the subscriber connection is pinged (default 2 s). */
  heartbeatMs?: number
}

interface CacheEntry {
  record: ApiKeyRecord
  cachedAt: number
}

function unavailable(err: unknown): ServiceUnavailable {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name
  return new ServiceUnavailable('the key store is unavailable; try again shortly', { reason: `store_${code}` })
}

/**
 * Keys in Redis, shared by every gateway replica: a hash per key, an index from key hash to
 * id, and a set of ids. Each replica keeps verified keys in a local cache so the hot path
 * makes no Redis round trip; revocation and rotation publish the key id and every replica
 * drops it at once. The cache is used only while the subscription is live (a replica that
 * cannot hear invalidations must not trust its cache), is emptied on every (re)subscribe,
 * and each entry is re-read after `cacheTtlMs` in case a message was lost anyway.
 */
export function createRedisKeyStore(opts: RedisKeyStoreOptions): KeyStore {
  const { redis, subscriber, log } = opts
  const keys = keyStoreKeys(opts.prefix)
  const ttlMs = opts.cacheTtlMs ?? 30_000
  const maxEntries = opts.cacheSize ?? 10_000
  const cache = new Map<string, CacheEntry>()
  let listening = false
  // Bumped by every invalidation: a lookup that started before one must not fill the cache.
  let generation = 0

  function dropAll(): void {
    cache.clear()
    generation++
  }

  function dropId(id: string): void {
    generation++
    for (const [hash, entry] of cache) if (entry.record.id === id) cache.delete(hash)
  }

  subscriber.on('message', (channel: string, id: string) => {
    if (channel === keys.channel) dropId(id)
  })
  subscriber.on('close', () => {
    listening = false
    dropAll()
  })
  const subscribe = () => {
    subscriber.subscribe(keys.channel).then(
      () => {
        // Messages sent while we were away are lost: start from an empty cache.
        dropAll()
        listening = true
      },
      (err: unknown) => log.warn('key invalidation subscribe failed', { error: (err as Error).message }),
    )
  }
  subscriber.on('ready', subscribe)
  if (subscriber.status === 'ready') subscribe()
  // A subscription sends no commands, so a dead path (no reset, no messages) would leave the
  // cache trusted while invalidations are lost. A PING now and then arms the connection's
  // socket timeout: without an answer the socket is dropped, `close` empties the cache, and
  // lookups go to Redis until the subscription is back.
  const heartbeat = setInterval(() => {
    if (listening) subscriber.ping().catch(() => undefined)
  }, opts.heartbeatMs ?? 2000)
  heartbeat.unref()

  const tracker = new LastUsedTracker(
    async (batch) => {
      const pipeline = redis.pipeline()
      for (const [id, at] of batch) pipeline.eval(TOUCH_SCRIPT, 1, keys.record(id), at)
      const results = (await pipeline.exec()) ?? []
      const failed = results.find(([err]) => err)
      if (failed) throw failed[0]
    },
    log,
    opts.flushIntervalMs,
  )

  const withPendingUse = (record: ApiKeyRecord): ApiKeyRecord => {
    const pending = tracker.peek(record.id)
    return pending ? freezeRecord({ ...record, lastUsedAt: laterOf(record.lastUsedAt, pending) }) : record
  }

  async function read(id: string): Promise<ApiKeyRecord | null> {
    try {
      return decodeRecord(await redis.hgetall(keys.record(id)))
    } catch (err) {
      throw unavailable(err)
    }
  }

  return {
    async create(input) {
      const record = buildRecord(input, newKeyId(), new Date())
      try {
        await redis
          .multi()
          .hset(keys.record(record.id), encodeRecord(record))
          .set(keys.byHash(record.hash), record.id)
          .sadd(keys.ids, record.id)
          .exec()
      } catch (err) {
        throw unavailable(err)
      }
      return record
    },
    async get(id) {
      const record = await read(id)
      return record ? withPendingUse(record) : null
    },
    async list() {
      try {
        const ids = await redis.smembers(keys.ids)
        const pipeline = redis.pipeline()
        for (const id of ids) pipeline.hgetall(keys.record(id))
        const results = (await pipeline.exec()) ?? []
        const records: ApiKeyRecord[] = []
        for (const [err, fields] of results) {
          if (err) throw err
          const record = decodeRecord(fields as Record<string, string>)
          if (record) records.push(withPendingUse(record))
        }
        return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      } catch (err) {
        throw unavailable(err)
      }
    },
    async revoke(id) {
      let found: unknown
      try {
        found = await redis.eval(REVOKE_SCRIPT, 1, keys.record(id), new Date().toISOString(), id, keys.channel)
      } catch (err) {
        throw unavailable(err)
      }
      dropId(id)
      return found === 1 ? read(id) : null
    },
    async rotate(id, newHash): Promise<RotateResult> {
      let outcome: unknown
      try {
        outcome = await redis.eval(ROTATE_SCRIPT, 2, keys.record(id), keys.byHash(newHash), keys.hashPrefix, id, newHash, keys.channel)
      } catch (err) {
        throw unavailable(err)
      }
      dropId(id)
      if (outcome === 'not_found' || outcome === 'revoked') return { ok: false, reason: outcome }
      const record = await read(id)
      return record ? { ok: true, record } : { ok: false, reason: 'not_found' }
    },
    async findByHash(hash) {
      const now = Date.now()
      const hit = cache.get(hash)
      if (hit && listening && now - hit.cachedAt < ttlMs) return hit.record
      if (hit) cache.delete(hash)
      const startedAt = generation
      let record: ApiKeyRecord | null
      try {
        const id = await redis.get(keys.byHash(hash))
        record = id ? decodeRecord(await redis.hgetall(keys.record(id))) : null
      } catch (err) {
        throw unavailable(err)
      }
      // Only when nothing was invalidated meanwhile, and only verified keys: unknown hashes
      // come from clients and would let them fill the cache.
      if (record && record.hash === hash && listening && startedAt === generation) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!)
        cache.set(hash, { record, cachedAt: now })
      }
      return record && record.hash === hash ? record : null
    },
    touch(id) {
      tracker.touch(id)
    },
    async close() {
      clearInterval(heartbeat)
      await tracker.close()
      subscriber.removeAllListeners('message')
      subscriber.disconnect()
    },
  }
}
