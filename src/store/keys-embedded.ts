import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../log/index.js'
import { writeFileAtomic } from './atomic-file.js'
import { LastUsedTracker } from './keys-last-used.js'
import { buildRecord, freezeRecord, laterOf, newKeyId } from './keys-record.js'
import type { ApiKeyRecord, KeyStore, NewApiKey, RotateResult } from './keys-types.js'

export interface EmbeddedKeyStoreOptions {
  dataDir: string
  log: Logger
  /** How often `lastUsedAt` values are written to the file. */
  flushIntervalMs?: number
}

interface KeysFile {
  version: 1
  keys: ApiKeyRecord[]
}

function load(path: string): ApiKeyRecord[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  // A damaged file stops the start: silently starting empty would lose every issued key.
  const doc = JSON.parse(text) as Partial<KeysFile>
  if (doc.version !== 1 || !Array.isArray(doc.keys)) throw new Error(`${path}: not a gatehouse keys file`)
  return doc.keys.map(freezeRecord)
}

/**
 * Keys in process memory, persisted to `{dataDir}/keys.json` with an atomic replace after
 * every change, so a restart keeps them. One gateway process only: use Redis to share.
 */
export function createEmbeddedKeyStore(opts: EmbeddedKeyStoreOptions): KeyStore {
  const path = join(opts.dataDir, 'keys.json')
  const byId = new Map<string, ApiKeyRecord>()
  const idByHash = new Map<string, string>()
  for (const record of load(path)) {
    byId.set(record.id, record)
    idByHash.set(record.hash, record.id)
  }

  // Changes run one at a time; a change whose file write fails is undone, so memory and
  // disk never disagree about which keys exist. A change without `undo` changed nothing.
  let queue: Promise<unknown> = Promise.resolve()
  function exclusive<T>(change: () => { result: T; undo?: () => void }): Promise<T> {
    const run = queue.then(async () => {
      const applied = change()
      if (!applied.undo) return applied.result
      try {
        await persist()
      } catch (err) {
        applied.undo()
        throw err
      }
      return applied.result
    })
    queue = run.catch(() => undefined)
    return run
  }

  function persist(): Promise<void> {
    const doc: KeysFile = { version: 1, keys: [...byId.values()] }
    return writeFileAtomic(path, `${JSON.stringify(doc, null, 2)}\n`)
  }

  function replace(next: ApiKeyRecord): () => void {
    const prev = byId.get(next.id)!
    byId.set(next.id, next)
    if (prev.hash !== next.hash) {
      idByHash.delete(prev.hash)
      idByHash.set(next.hash, next.id)
    }
    return () => {
      byId.set(prev.id, prev)
      if (prev.hash !== next.hash) {
        idByHash.delete(next.hash)
        idByHash.set(prev.hash, prev.id)
      }
    }
  }

  const tracker = new LastUsedTracker(
    async (batch) => {
      await exclusive(() => {
        const undos: (() => void)[] = []
        for (const [id, at] of batch) {
          const record = byId.get(id)
          if (record) undos.push(replace(freezeRecord({ ...record, lastUsedAt: laterOf(record.lastUsedAt, at) })))
        }
        return { result: true, undo: undos.length ? () => undos.reverse().forEach((u) => u()) : undefined }
      })
    },
    opts.log,
    opts.flushIntervalMs,
  )

  const withPendingUse = (record: ApiKeyRecord): ApiKeyRecord => {
    const pending = tracker.peek(record.id)
    return pending ? freezeRecord({ ...record, lastUsedAt: laterOf(record.lastUsedAt, pending) }) : record
  }

  return {
    async create(input: NewApiKey) {
      return exclusive(() => {
        const record = buildRecord(input, newKeyId(), new Date())
        byId.set(record.id, record)
        idByHash.set(record.hash, record.id)
        return {
          result: record,
          undo: () => {
            byId.delete(record.id)
            idByHash.delete(record.hash)
          },
        }
      })
    },
    async get(id) {
      const record = byId.get(id)
      return record ? withPendingUse(record) : null
    },
    async list() {
      return [...byId.values()].map(withPendingUse)
    },
    revoke(id) {
      return exclusive<ApiKeyRecord | null>(() => {
        const record = byId.get(id)
        if (!record) return { result: null }
        if (record.revokedAt) return { result: record }
        const next = freezeRecord({ ...record, revokedAt: new Date().toISOString() })
        return { result: next, undo: replace(next) }
      })
    },
    rotate(id, newHash) {
      return exclusive<RotateResult>(() => {
        const record = byId.get(id)
        if (!record) return { result: { ok: false, reason: 'not_found' } }
        if (record.revokedAt) return { result: { ok: false, reason: 'revoked' } }
        const next = freezeRecord({ ...record, hash: newHash })
        return { result: { ok: true, record: next }, undo: replace(next) }
      })
    },
    async findByHash(hash) {
      const id = idByHash.get(hash)
      return id === undefined ? null : (byId.get(id) ?? null)
    },
    touch(id) {
      tracker.touch(id)
    },
    async close() {
      await tracker.close()
      await queue
    },
  }
}
