import type { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { createRedisClient } from './redis-client.js'
import { createEmbeddedKeyStore } from './keys-embedded.js'
import { createRedisKeyStore } from './keys-redis.js'
import type { KeyStore } from './keys-types.js'

/**
 * The key store the config asks for: Redis (shared by every gateway replica, with its own
 * pub/sub connection for invalidations) when `redis` is given, else the embedded file store.
 */
export function createKeyStore(config: Config, redis: Redis | null, log: Logger): KeyStore {
  if (redis) {
    if (!config.store.redis) throw new Error('createKeyStore: a Redis client was given but store.redis is empty')
    return createRedisKeyStore({
      redis,
      subscriber: createRedisClient(config.store.redis, log, 'gatehouse-keys-sub'),
      prefix: config.store.keyPrefix,
      log,
    })
  }
  return createEmbeddedKeyStore({ dataDir: config.store.dataDir, log })
}
