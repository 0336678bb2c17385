import { randomBytes } from 'node:crypto'
import type { ApiKeyRecord, NewApiKey } from './keys-types.js'

/** A fresh key id (`key_` + 12 random bytes, base64url). Ids are public, not secrets. */
export function newKeyId(): string {
  return `key_${randomBytes(12).toString('base64url')}`
}

/** The record for a new key: frozen, `subject` defaulting to `key:{id}`. */
export function buildRecord(input: NewApiKey, id: string, now: Date): ApiKeyRecord {
  return freezeRecord({
    id,
    name: input.name,
    subject: input.subject ?? `key:${id}`,
    roles: [...input.roles],
    models: input.models ? [...input.models] : null,
    limits: input.limits ? { ...input.limits } : null,
    createdAt: now.toISOString(),
    expiresAt: input.expiresAt,
    revokedAt: null,
    lastUsedAt: null,
    hash: input.hash,
  })
}

/** Records are shared between callers and caches, so none may change one in place. */
export function freezeRecord(record: ApiKeyRecord): ApiKeyRecord {
  Object.freeze(record.roles)
  if (record.models) Object.freeze(record.models)
  if (record.limits) Object.freeze(record.limits)
  return Object.freeze(record)
}

/** The later of two ISO timestamps (either may be null). */
export function laterOf(a: string | null, b: string | null | undefined): string | null {
  if (!b) return a
  if (!a) return b
  return a >= b ? a : b
}
