import type { Limits } from '../config/index.js'

/** An API key as stored: everything but the secret, which only exists as `hash`. */
export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  readonly subject: string
  readonly roles: readonly string[]
  /** Model names/globs narrowing the roles' models; null = the roles' models. */
  readonly models: readonly string[] | null
  /** Lower limits than the roles'; null = the roles' limits. */
  readonly limits: Limits | null
  readonly createdAt: string
  readonly expiresAt: string | null
  readonly revokedAt: string | null
  readonly lastUsedAt: string | null
  /** Hex SHA-256 of the key; lookups go by it. */
  readonly hash: string
}

/** What the admin API supplies to create a key (the store picks `id` and `createdAt`). */
export interface NewApiKey {
  name: string
  /** Null: `key:{id}`. */
  subject: string | null
  roles: readonly string[]
  models: readonly string[] | null
  limits: Limits | null
  expiresAt: string | null
  hash: string
}

/** Outcome of a rotation: the new record, or why it could not happen. */
export type RotateResult = { ok: true; record: ApiKeyRecord } | { ok: false; reason: 'not_found' | 'revoked' }

/**
 * Where API keys live: in-process with a file in dataDir (embedded) or in Redis shared by all
 * gateway replicas. `findByHash` is the hot path and answers from a local cache when it can;
 * a revocation or rotation is visible to every replica's `findByHash` within one second.
 */
export interface KeyStore {
  create(input: NewApiKey): Promise<ApiKeyRecord>
  get(id: string): Promise<ApiKeyRecord | null>
  list(): Promise<ApiKeyRecord[]>
  /** Marks the key revoked (idempotent: the first `revokedAt` stays); null when unknown. */
  revoke(id: string): Promise<ApiKeyRecord | null>
  /** Replaces the key's hash: the old secret stops working everywhere. */
  rotate(id: string, newHash: string): Promise<RotateResult>
  findByHash(hash: string): Promise<ApiKeyRecord | null>
  /** Notes a use; kept in memory and written in batches, never on the request path. */
  touch(id: string): void
  /** Flushes pending `lastUsedAt` values and stops background work. */
  close(): Promise<void>
}

/** A new key id: `key_` and 16 random base64url characters (not a secret). */
export const KEY_ID_PATTERN = /^key_[A-Za-z0-9_-]{16}$/
