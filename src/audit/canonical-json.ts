/**
 * JSON with object keys sorted (by UTF-16 code unit) at every level and no whitespace: the
 * form the hash chain covers. It follows JSON.stringify's rules for everything else (toJSON,
 * undefined members skipped, non-finite numbers as null), so a record and its parsed line
 * give the same text, and `jq -cS 'del(.hash)'` rebuilds it from a line.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, false) ?? 'null'
}

/** canonicalJson of `record` with `extra`'s members added, without copying the record. */
export function canonicalJsonWith(record: object, extra: Readonly<Record<string, unknown>>): string {
  const own = record as Record<string, unknown>
  const keys = Object.keys(own)
  const extraKeys = Object.keys(extra)
  for (const k of extraKeys) if (!(k in own)) keys.push(k)
  return members(keys.sort(), (k) => (Object.hasOwn(extra, k) ? extra[k] : own[k]))
}

function encode(value: unknown, inArray: boolean): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON()
  }
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value)
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
