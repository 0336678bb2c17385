export { createRedisClient, redisIsReady } from './redis-client.js'
export { writeFileAtomic } from './atomic-file.js'
