import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { canonicalJson, createAuditSink, verifyAuditFile } from '../../src/audit/index.js'
import { canonicalJsonWith } from '../../src/audit/canonical-json.js'
import { checkLine, sealRecord } from '../../src/audit/hash-chain.js'
import { captureLogger, sampleEvent } from './fixtures.js'

const root = mkdtempSync(join(tmpdir(), 'gatehouse-verify-'))
after(() => rmSync(root, { recursive: true, force: true }))

/** A chained audit file of `n` records, written by the real sink; returns its path and lines. */
async function auditFile(n: number): Promise<{ path: string; lines: string[] }> {
  const path = join(mkdtempSync(join(root, 'case-')), 'audit.jsonl')
  const sink = createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log })
  for (let i = 0; i < n; i++) sink.write(sampleEvent(i))
  await sink.close()
  return { path, lines: readFileSync(path, 'utf8').split('\n').filter((l) => l !== '') }
}

const rewrite = (path: string, lines: string[]): void => writeFileSync(path, `${lines.join('\n')}\n`)

test('an untouched file verifies', async () => {
  const { path } = await auditFile(6)
  const result = await verifyAuditFile(path)
  assert.equal(result.ok, true)
  assert.equal(result.lines, 6)
  assert.equal(result.firstBadLine, undefined)
})

test('an edited line is named', async () => {
  const { path, lines } = await auditFile(6)
  lines[3] = lines[3].replace('"status":200', '"status":201')
  rewrite(path, lines)
  const result = await verifyAuditFile(path)
  assert.equal(result.ok, false)
  assert.equal(result.firstBadLine, 4)
  assert.match(result.reason ?? '', /line 4 was edited/)
})

test('an edit that only reorders keys or reformats the line is not an edit of the record', async () => {
  const { path, lines } = await auditFile(3)
  const obj = JSON.parse(lines[1]) as Record<string, unknown>
  lines[1] = JSON.stringify(Object.fromEntries(Object.entries(obj).reverse()), null, 0)
  rewrite(path, lines)
  assert.equal((await verifyAuditFile(path)).ok, true)
})

test('a removed line is named by the first line that no longer follows', async () => {
  const { path, lines } = await auditFile(6)
  lines.splice(2, 1)
  rewrite(path, lines)
  const result = await verifyAuditFile(path)
  assert.equal(result.ok, false)
  assert.equal(result.firstBadLine, 3)
  assert.match(result.reason ?? '', /removed/)
})

test('reordered lines are named', async () => {
  const { path, lines } = await auditFile(6)
  ;[lines[2], lines[4]] = [lines[4], lines[2]]
  rewrite(path, lines)
  const result = await verifyAuditFile(path)
  assert.equal(result.ok, false)
  assert.equal(result.firstBadLine, 3)
  assert.match(result.reason ?? '', /out of order/)
})

test('a line that is not a record, and a removed first line with --prev, are named', async () => {
  const { path, lines } = await auditFile(4)
  rewrite(path, [...lines.slice(0, 2), 'hello', ...lines.slice(2)])
  const garbage = await verifyAuditFile(path)
  assert.deepEqual([garbage.ok, garbage.firstBadLine], [false, 3])
  assert.match(garbage.reason ?? '', /not an audit record/)

  const first = JSON.parse(lines[0]) as { prev: string }
  rewrite(path, lines.slice(1))
  assert.equal((await verifyAuditFile(path)).ok, true, 'without an anchor a cut head looks like a rotated file')
  const anchored = await verifyAuditFile(path, { prev: first.prev })
  assert.deepEqual([anchored.ok, anchored.firstBadLine], [false, 1])
})

test('a chain restarting from zeros (a stdout sink after a process restart) is reported, not failed', async () => {
  const a = await auditFile(2)
  const b = await auditFile(3)
  rewrite(a.path, [...a.lines, ...b.lines])
  const result = await verifyAuditFile(a.path)
  assert.deepEqual([result.ok, result.lines, result.restarts], [true, 5, [3]])
  rewrite(a.path, [...a.lines, ...b.lines.slice(1)])
  assert.deepEqual(await verifyAuditFile(a.path).then((r) => [r.ok, r.firstBadLine]), [false, 3])
})

test('a sealed line reads as the record (its own key order) plus prev and hash, and checks intact', () => {
  const primitive = fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined))
  const value = fc.oneof(primitive, fc.array(primitive, { maxLength: 4 }), fc.jsonValue())
  const key = fc.oneof(fc.constantFrom('ts', 'type', 'roles', 'status', '10', '9', 'zeta', 'Alpha', 'prev', 'hash'), fc.string())
  const prev = 'ab'.repeat(32)
  fc.assert(
    fc.property(fc.array(fc.tuple(key, value), { maxLength: 12 }), (pairs) => {
      const record: Record<string, unknown> = {}
      for (const [k, v] of pairs) if (k !== '__proto__') record[k] = v
      const { line, hash } = sealRecord(record, prev)
      const check = checkLine(line)
      assert.deepEqual(check, { kind: 'record', prev, hash, intact: true })
      const parsed = JSON.parse(line) as Record<string, unknown>
      const plain = JSON.parse(JSON.stringify(record)) as Record<string, unknown>
      delete plain.prev
      delete plain.hash
      assert.deepEqual(parsed, { ...plain, prev, hash })
      assert.deepEqual(Object.keys(parsed), [...Object.keys(plain), 'prev', 'hash'], 'own order, then prev and hash')
    }),
    { numRuns: 1000 },
  )
  assert.equal(sealRecord({}, prev).line, `{"prev":"${prev}","hash":"${sealRecord({}, prev).hash}"}`)
})

test('canonical JSON is the same for a value and for its parsed JSON text', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assert.equal(canonicalJson(JSON.parse(JSON.stringify(value)) as unknown), canonicalJson(value))
    }),
  )
  assert.equal(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }], e: undefined }), '{"a":[{"c":"x"}],"b":1}')
})

test('a record and an extra member give the text of canonicalJson over both, flat or nested', () => {
  const primitive = fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined))
  const value = fc.oneof(primitive, fc.array(primitive, { maxLength: 4 }), fc.jsonValue())
  // Keys like an audit line's, plus integer-like and __proto__ keys that objects order or treat specially.
  const key = fc.oneof(fc.constantFrom('ts', 'type', 'roles', 'status', '10', '9', '__proto__', 'zeta', 'Alpha'), fc.string())
  fc.assert(
    fc.property(fc.array(fc.tuple(key, value), { maxLength: 12 }), fc.string(), (pairs, prev) => {
      const record: Record<string, unknown> = {}
      for (const [k, v] of pairs) Object.defineProperty(record, k, { value: v, enumerable: true, writable: true, configurable: true })
      const whole: Record<string, unknown> = {}
      for (const k of Object.keys(record)) Object.defineProperty(whole, k, { value: record[k], enumerable: true, writable: true, configurable: true })
      Object.defineProperty(whole, 'prev', { value: prev, enumerable: true, writable: true, configurable: true })
      assert.equal(canonicalJsonWith(record, { prev }), canonicalJson(whole))
    }),
    { numRuns: 2000 },
  )
  // The key order is kept per record shape: the same keys with new values, and key lists that
  // would read alike if joined, each get their own text.
  assert.equal(canonicalJsonWith({ b: 1, a: 'x' }, { prev: 'p' }), '{"a":"x","b":1,"prev":"p"}')
  assert.equal(canonicalJsonWith({ b: 2, a: 'y' }, { prev: 'q' }), '{"a":"y","b":2,"prev":"q"}')
  assert.equal(canonicalJsonWith({ 'a\u0000b': 1 }, { prev: 'p' }), '{"a\\u0000b":1,"prev":"p"}')
  assert.equal(canonicalJsonWith({ a: 1, b: 2 }, { prev: 'p' }), '{"a":1,"b":2,"prev":"p"}')
  assert.equal(canonicalJsonWith({ a: 1, prev: 'own' }, { prev: 'p' }), '{"a":1,"prev":"p"}')
})
