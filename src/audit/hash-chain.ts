import { hash as digest } from 'node:crypto'
import { canonicalJson, encodeRecordWith } from './canonical-json.js'

/** `prev` of the first record of a new chain. */
export const GENESIS_HASH = '0'.repeat(64)

const HEX64 = /^[0-9a-f]{64}$/

export function isChainHash(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value)
}

/** SHA-256 (hex) over the previous record's hash followed by this record's canonical JSON. */
export function chainHash(prev: string, canonicalBody: string): string {
  // One-shot hashing: no Hash object per audit line.
  return digest('sha256', prev + canonicalBody, 'hex')
}

/**
 * One audit line (without the newline) chained to `prev`. The line keeps the record's own key
 * order for people reading it, then `prev` and `hash`; the hash covers the canonical form of
 * everything but `hash`, so key order on disk does not matter to verification. Each value is
 * encoded once for both texts.
 */
export function sealRecord(record: object, prev: string): { line: string; hash: string } {
  // An own `prev` or `hash` member (events have neither) gives way to the chain's own.
  const { canonical, members } = encodeRecordWith(record, { prev, hash: undefined })
  const hash = chainHash(prev, canonical)
  return { line: `{${members}${members === '' ? '' : ','}"prev":"${prev}","hash":"${hash}"}`, hash }
}

/** What a line claims about itself: its hash and prev, and whether its content still matches its hash. */
export type LineCheck =
  | { kind: 'invalid'; why: string }
  | { kind: 'record'; prev: string; hash: string; intact: boolean }

export function checkLine(line: string): LineCheck {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return { kind: 'invalid', why: 'not valid JSON' }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { kind: 'invalid', why: 'not a JSON object' }
  }
  const record = parsed as Record<string, unknown>
  const { hash, prev } = record
  if (!isChainHash(hash) || !isChainHash(prev)) {
    return { kind: 'invalid', why: 'no hash chain fields (hash, prev)' }
  }
  delete record.hash
  return { kind: 'record', prev, hash, intact: chainHash(prev, canonicalJson(record)) === hash }
}

/** The `hash` of a line if it is a chained record (content not re-checked), else null. */
export function recordHash(line: string): string | null {
  try {
    const parsed: unknown = JSON.parse(line)
    if (parsed !== null && typeof parsed === 'object') {
      const hash = (parsed as { hash?: unknown }).hash
      if (isChainHash(hash)) return hash
    }
  } catch {
    // Not a record: the caller decides what a missing hash means.
  }
  return null
}
