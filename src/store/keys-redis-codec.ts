import type { Limits } from '../config/index.js'
import { freezeRecord } from './keys-record.js'
import type { ApiKeyRecord } from './keys-types.js'

/** Redis key names of the key store, all under the configured prefix. */
export function keyStoreKeys(prefix: string) {
  return {
    record: (id: string) => `${prefix}key:${id}`,
    byHash: (hash: string) => `${prefix}keyhash:${hash}`,
    hashPrefix: `${prefix}keyhash:`,
    ids: `${prefix}keys`,
    channel: `${prefix}keys:invalidate`,
  }
}

/** A record as the fields of one Redis hash (empty string for null). */
export function encodeRecord(record: ApiKeyRecord): Record<string, string> {
  return {
    id: record.id,
    name: record.name,
    subject: record.subject,
    roles: JSON.stringify(record.roles),
    models: record.models ? JSON.stringify(record.models) : '',
    limits: record.limits ? JSON.stringify(record.limits) : '',
    createdAt: record.createdAt,
    expiresAt: record.expiresAt ?? '',
    revokedAt: record.revokedAt ?? '',
    lastUsedAt: record.lastUsedAt ?? '',
    hash: record.hash,
  }
}

/** The record from HGETALL's answer, or null when the hash does not exist or is incomplete. */
export function decodeRecord(fields: Record<string, string>): ApiKeyRecord | null {
  if (!fields.id || !fields.hash) return null
  return freezeRecord({
    id: fields.id,
    name: fields.name ?? '',
    subject: fields.subject ?? `key:${fields.id}`,
    roles: JSON.parse(fields.roles || '[]') as string[],
    models: fields.models ? (JSON.parse(fields.models) as string[]) : null,
    limits: fields.limits ? (JSON.parse(fields.limits) as Limits) : null,
    createdAt: fields.createdAt ?? '',
    expiresAt: fields.expiresAt || null,
    revokedAt: fields.revokedAt || null,
    lastUsedAt: fields.lastUsedAt || null,
    hash: fields.hash,
  })
}

// Revocation keeps the hash index, so the old secret is refused as `revoked`, not `unknown`.
// Publishing from the script means no replica can miss a change that was committed.
export const REVOKE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local revoked = redis.call('HGET', KEYS[1], 'revokedAt')
if not revoked or revoked == '' then
  redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[2])
end
return 1
`

export const ROTATE_SCRIPT = `
local old = redis.call('HGET', KEYS[1], 'hash')
if not old then return 'not_found' end
local revoked = redis.call('HGET', KEYS[1], 'revokedAt')
if revoked and revoked ~= '' then return 'revoked' end
redis.call('DEL', ARGV[1] .. old)
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'hash', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 'ok'
`

// lastUsedAt only moves forward, whichever replica flushes last.
export const TOUCH_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[1], 'lastUsedAt')
if not current or current < ARGV[1] then redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1]) end
return 1
`
