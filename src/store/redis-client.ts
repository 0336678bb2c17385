import { Redis } from 'ioredis'
import type { Logger } from '../log/index.js'

/** No reply this long after a command: the connection is taken for dead and replaced. */
export const SOCKET_TIMEOUT_MS = 5000

/**
 * A Redis connection that fails fast instead of queueing: while Redis is unreachable every
 * command rejects at once (so the gateway answers 503, fail closed), and the client keeps
 * reconnecting in the background so service resumes within a second or two of Redis returning.
 */
export function createRedisClient(url: string, log: Logger, name = 'gatehouse'): Redis {
  const client = new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    // Commands issued in the same tick by concurrent requests go out in one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 2000,
    // A connection that goes silent without a reset (a dead network path, a Redis moved to
    // another node) never errors on its own, so every command would time out forever: when
    // nothing comes back this long after a command, the socket is destroyed and the client
    // reconnects on a fresh one.
    socketTimeout: SOCKET_TIMEOUT_MS,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * times, 1000),
  })
  let wasReady = false
  client.on('ready', () => {
    if (wasReady) log.info('redis reconnected')
    wasReady = true
  })
  client.on('error', (err: NodeJS.ErrnoException) => {
    // ioredis reports every failed reconnect; log the code, never the URL (it may hold a password).
    log.warn('redis error', { code: err.code ?? err.name })
  })
  return client
}

/** True when the client is connected and ready for commands. */
export function redisIsReady(client: Redis): boolean {
  return client.status === 'ready'
}
