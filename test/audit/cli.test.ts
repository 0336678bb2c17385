import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAuditSink } from '../../src/audit/index.js'
import { BIN } from '../helpers/processes.js'
import { captureLogger, sampleEvent } from './fixtures.js'

function verifyCli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'verify', ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('gatehouse audit verify: exit 0 with the count, 1 naming the bad line, 2 on usage errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.jsonl')
  const sink = createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log })
  for (let i = 0; i < 4; i++) sink.write(sampleEvent(i))
  await sink.close()

  const ok = verifyCli(path)
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout, /OK, 4 lines/)
  const lastHash = /last hash ([0-9a-f]{64})/.exec(ok.stdout)?.[1]
  assert.equal(lastHash, sink.lastHash())

  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '')
  const tampered = join(dir, 'tampered.jsonl')
  writeFileSync(tampered, `${[lines[0], lines[1].replace('"req-1"', '"req-X"'), lines[2], lines[3]].join('\n')}\n`)
  const bad = verifyCli(tampered)
  assert.equal(bad.code, 1)
  assert.match(bad.stdout, /FAILED at line 2: line 2 was edited/)

  const removed = join(dir, 'removed.jsonl')
  writeFileSync(removed, `${[lines[0], lines[2], lines[3]].join('\n')}\n`)
  const gap = verifyCli(removed)
  assert.equal(gap.code, 1)
  assert.match(gap.stdout, /FAILED at line 2/)

  assert.equal(verifyCli(join(dir, 'missing.jsonl')).code, 2)
  assert.equal(verifyCli().code, 2)
})
