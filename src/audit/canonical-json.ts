/**
 * JSON with object keys sorted (by UTF-16 code unit) at every level and no whitespace: the
 * form the hash chain covers. It follows JSON.stringify's rules for everything else (toJSON,
 * undefined members skipped, non-finite numbers as null), so a record and its parsed line
 * give the same text, and `jq -cS 'del(.hash)'` rebuilds it from a line.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, false) ?? 'null'
}

/** One record shape: its members in canonical order, and which own keys the line shows. */
interface ShapePlan {
  ownKeys: readonly string[]
  extraKeys: readonly string[]
  /** Canonical order; `own` is the member's index in ownKeys, or -1 when it comes from extra. */
  sorted: readonly { key: string; own: number; name: string }[]
  /** Own keys not overridden by an extra member, in the record's order, with their `"name":`. */
  shown: readonly { own: number; name: string }[]
}

// Audit records come in a handful of shapes (one per event type, with or without prompts):
// their key order is worked out once per shape, not sorted and re-encoded per line.
const plans: ShapePlan[] = []
const MAX_PLANS = 32

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function planFor(ownKeys: string[], extraKeys: string[]): ShapePlan {
  for (const p of plans) if (sameKeys(p.ownKeys, ownKeys) && sameKeys(p.extraKeys, extraKeys)) return p
  const all = new Map<string, number>()
  ownKeys.forEach((k, i) => all.set(k, i))
  for (const k of extraKeys) all.set(k, -1)
  const name = (key: string): string => `${JSON.stringify(key)}:`
  const sorted = [...all.keys()].sort().map((key) => ({ key, own: all.get(key) ?? -1, name: name(key) }))
  const shown = ownKeys.flatMap((key, own) => (extraKeys.includes(key) ? [] : [{ own, name: name(key) }]))
  const plan = { ownKeys, extraKeys, sorted, shown }
  if (plans.length >= MAX_PLANS) plans.shift()
  plans.push(plan)
  return plan
}

/** canonicalJson of `record` with `extra`'s members added, without copying the record. */
export function canonicalJsonWith(record: object, extra: Readonly<Record<string, unknown>>): string {
  return encodeRecordWith(record, extra).canonical
}

/**
 * Encodes each member of `record` once and returns two texts: the canonical JSON of the
 * record with `extra`'s members added (what the hash covers), and the record's own members
 * in its own key order, without braces (what an audit line shows first; nested objects in
 * canonical order). An extra member replaces an own one of the same name in both.
 */
export function encodeRecordWith(record: object, extra: Readonly<Record<string, unknown>>): { canonical: string; members: string } {
  const own = record as Record<string, unknown>
  const plan = planFor(Object.keys(own), Object.keys(extra))
  // Each own member's `"name":value` text, made once for both texts.
  const pieces: (string | undefined)[] = new Array(plan.ownKeys.length)
  let members = ''
  for (const m of plan.shown) {
    const v = encode(own[plan.ownKeys[m.own]], false)
    if (v === undefined) continue
    const piece = m.name + v
    pieces[m.own] = piece
    members = members === '' ? piece : `${members},${piece}`
  }
  let canonical = '{'
  for (const m of plan.sorted) {
    let piece: string | undefined
    if (m.own >= 0) {
      piece = pieces[m.own]
    } else {
      const v = encode(extra[m.key], false)
      piece = v === undefined ? undefined : m.name + v
    }
    if (piece === undefined) continue
    canonical = canonical.length > 1 ? `${canonical},${piece}` : canonical + piece
  }
  return { canonical: `${canonical}}`, members }
}

function encode(value: unknown, inArray: boolean): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON()
  }
  switch (typeof value) {
    case 'string':
      return jsonString(value)
    case 'number':
      // What JSON.stringify gives, without the call.
      return Number.isFinite(value) ? String(value) : 'null'
    case 'boolean':
      return value ? 'true' : 'false'
    case 'undefined':
    case 'function':
    case 'symbol':
      return inArray ? 'null' : undefined
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt is not JSON')
  }
  if (value === null) return 'null'
  if (Array.isArray(value)) return `[${value.map((v) => encode(v, true)).join(',')}]`
  const obj = value as Record<string, unknown>
  return members(Object.keys(obj).sort(), (k) => obj[k])
}

// A string with nothing to escape (no quote, backslash, control character or surrogate) is
// its JSON text in quotes: most audit values (ids, names, timestamps), for a fraction of what
// JSON.stringify costs per call.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

function members(sortedKeys: readonly string[], get: (key: string) => unknown): string {
  let out = '{'
  for (const key of sortedKeys) {
    const v = encode(get(key), false)
    if (v === undefined) continue
    if (out.length > 1) out += ','
    out += `${JSON.stringify(key)}:${v}`
  }
  return `${out}}`
}
