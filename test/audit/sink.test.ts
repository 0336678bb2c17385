import { after, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAuditSink, verifyAuditFile, GENESIS_HASH, type ChainedAuditSink } from '../../src/audit/index.js'
import { captureLogger, RecordingStream, sampleEvent, SPEC_FIELDS } from './fixtures.js'

/** Closes the sink when the test ends, even when an assertion failed first (close is idempotent). */
function closing(t: TestContext, sink: ChainedAuditSink): ChainedAuditSink {
  t.after(() => sink.close())
  return sink
}

const root = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'))
after(() => rmSync(root, { recursive: true, force: true }))
const tmp = (): string => mkdtempSync(join(root, 'case-'))
const readLines = (path: string): Record<string, unknown>[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)

test('file sink writes one line per event, in order, with every SPEC field and a chained hash', async (t) => {
  const path = join(tmp(), 'nested', 'audit.jsonl')
  const { log } = captureLogger()
  const sink = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log }))
  for (let i = 0; i < 5; i++) sink.write(sampleEvent(i))
  await sink.close()
  const lines = readLines(path)
  assert.deepEqual(
    lines.map((l) => l.requestId),
    ['req-0', 'req-1', 'req-2', 'req-3', 'req-4'],
  )
  for (const line of lines) {
    for (const field of SPEC_FIELDS) assert.ok(field in line, `missing ${field}`)
    assert.match(String(line.hash), /^[0-9a-f]{64}$/)
  }
  assert.equal(lines[0].prev, GENESIS_HASH)
  assert.equal(lines[1].prev, lines[0].hash)
  assert.equal(lines[0].promptTokens, 10)
  assert.equal(lines[0].reason, null)
  assert.equal(sink.lastHash(), lines[4].hash)
  assert.deepEqual(await verifyAuditFile(path), {
    ok: true,
    lines: 5,
    firstPrev: GENESIS_HASH,
    lastHash: lines[4].hash,
    restarts: [],
  })
})

test('events queued together go out in one write call per batch', async (t) => {
  const out = new RecordingStream()
  const { log } = captureLogger()
  const sink = closing(t, createAuditSink({ sink: 'stdout', path: '-', includePrompts: false }, { log, stdout: out, batchSize: 100 }))
  for (let i = 0; i < 250; i++) sink.write(sampleEvent(i))
  await sink.flush()
  assert.deepEqual(
    out.chunks.map((c) => c.split('\n').length - 1),
    [100, 100, 50],
  )
  assert.deepEqual(
    out.lines().map((l) => (JSON.parse(l) as { requestId: string }).requestId),
    Array.from({ length: 250 }, (_, i) => `req-${i}`),
  )
  await sink.close()
})

test('a failed write is counted once per event, reported without content, retried, and health returns', async (t) => {
  const out = new RecordingStream(3)
  const { log, lines: logLines } = captureLogger()
  let errors = 0
  const sink = closing(t, createAuditSink(
    { sink: 'stdout', path: '-', includePrompts: false },
    { log, stdout: out, onWriteError: (n) => (errors += n) },
  ))
  for (let i = 0; i < 4; i++) sink.write(sampleEvent(i, { reason: 'secret-reason-text' }))
  await sink.flush()
  assert.equal(sink.isHealthy(), false)
  assert.equal(errors, 4)
  assert.equal(sink.queued(), 4)
  const report = logLines.join('')
  assert.match(report, /audit write failed/)
  assert.match(report, /EIO/)
  assert.doesNotMatch(report, /secret-reason-text|req-0|user-0/)
  // The sink retries with backoff until the stream takes the batch.
  while (!sink.isHealthy()) await new Promise((r) => setTimeout(r, 20))
  await sink.flush()
  assert.equal(errors, 4, 'retries of the same events are not counted again')
  assert.equal(sink.queued(), 0)
  const written = out.lines().map((l) => JSON.parse(l) as { requestId: string; prev: string; hash: string })
  assert.deepEqual(
    written.map((l) => l.requestId),
    ['req-0', 'req-1', 'req-2', 'req-3'],
  )
  assert.equal(written[0].prev, GENESIS_HASH)
  assert.equal(written[3].prev, written[2].hash)
  assert.match(logLines.join(''), /audit writes recovered/)
  await sink.close()
})

test('a sink on /dev/full counts every event, reports on stderr, is unhealthy, and counts the loss at close', async (t) => {
  const { log, lines: logLines } = captureLogger()
  let errors = 0
  let dropped = 0
  const sink = closing(t, createAuditSink(
    { sink: 'file', path: '/dev/full', includePrompts: false },
    { log, onWriteError: (n) => (errors += n), onDrop: (n) => (dropped += n) },
  ))
  for (let i = 0; i < 3; i++) sink.write(sampleEvent(i))
  await sink.flush()
  assert.equal(sink.isHealthy(), false)
  assert.equal(errors, 3)
  assert.match(logLines.join(''), /"code":"ENOSPC"/)
  await sink.close()
  assert.equal(errors, 3, 'events already counted are not counted twice')
  assert.equal(dropped, 3)
  assert.match(logLines.join(''), /audit events lost/)
})

test('when the queue is full the oldest events are dropped, counted and reported', async (t) => {
  const out = new RecordingStream(Number.MAX_SAFE_INTEGER)
  const { log, lines: logLines } = captureLogger()
  let errors = 0
  let dropped = 0
  const sink = closing(t, createAuditSink(
    { sink: 'stdout', path: '-', includePrompts: false },
    { log, stdout: out, maxQueue: 5, batchSize: 2, onWriteError: (n) => (errors += n), onDrop: (n) => (dropped += n) },
  ))
  for (let i = 0; i < 5; i++) sink.write(sampleEvent(i))
  await sink.flush()
  for (let i = 5; i < 8; i++) sink.write(sampleEvent(i))
  assert.equal(sink.queued(), 5)
  assert.equal(dropped, 3)
  // The 2 events of the failed batch, plus req-2, dropped before it was ever tried.
  assert.equal(errors, 3)
  assert.match(logLines.join(''), /audit events lost/)
  out.failures = 0
  await sink.flush()
  assert.deepEqual(
    out.lines().map((l) => (JSON.parse(l) as { requestId: string }).requestId),
    ['req-3', 'req-4', 'req-5', 'req-6', 'req-7'],
    'the oldest events are the ones dropped',
  )
  await sink.close()
})

test('close flushes what is queued', async (t) => {
  const path = join(tmp(), 'audit.jsonl')
  const sink = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log, flushIntervalMs: 60_000 }))
  sink.write(sampleEvent(1))
  sink.write(sampleEvent(2))
  await sink.close()
  assert.equal(readLines(path).length, 2)
})

test('reopen after a rename writes a new file whose chain continues from the old one', async (t) => {
  const dir = tmp()
  const path = join(dir, 'audit.jsonl')
  const sink = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log }))
  for (let i = 0; i < 3; i++) sink.write(sampleEvent(i))
  await sink.flush()
  renameSync(path, `${path}.1`)
  sink.write(sampleEvent(3))
  await sink.reopen()
  sink.write(sampleEvent(4))
  await sink.close()
  const old = readLines(`${path}.1`)
  const fresh = readLines(path)
  assert.equal(old.length + fresh.length, 5)
  assert.deepEqual(
    [...old, ...fresh].map((l) => l.requestId),
    ['req-0', 'req-1', 'req-2', 'req-3', 'req-4'],
  )
  assert.equal(fresh[0].prev, old[old.length - 1].hash)
  const first = await verifyAuditFile(`${path}.1`)
  assert.equal(first.ok, true)
  const second = await verifyAuditFile(path, { prev: first.lastHash })
  assert.equal(second.ok, true)
  assert.equal(second.lines, fresh.length)
  assert.equal((await verifyAuditFile(path, { prev: GENESIS_HASH })).ok, false)
})

test('a restarted sink continues the chain of the existing file', async (t) => {
  const path = join(tmp(), 'audit.jsonl')
  const first = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log }))
  first.write(sampleEvent(1))
  await first.close()
  const second = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log }))
  second.write(sampleEvent(2))
  await second.close()
  const lines = readLines(path)
  assert.equal(lines[1].prev, lines[0].hash)
  assert.equal((await verifyAuditFile(path)).ok, true)
})

test('a partial last line left by a crash is cut at open, reported, and the chain goes on', async (t) => {
  const path = join(tmp(), 'audit.jsonl')
  const first = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log: captureLogger().log }))
  first.write(sampleEvent(1))
  await first.close()
  appendFileSync(path, '{"ts":"2025-01-01T00:00:00.000Z","type":"req')
  const { log, lines: logLines } = captureLogger()
  const second = closing(t, createAuditSink({ sink: 'file', path, includePrompts: false }, { log }))
  second.write(sampleEvent(2))
  await second.close()
  assert.match(logLines.join(''), /partial line/)
  assert.deepEqual(await verifyAuditFile(path).then((r) => [r.ok, r.lines]), [true, 2])
})

test('prompts are stored only with includePrompts, and credential-shaped text never', async (t) => {
  const dir = tmp()
  for (const includePrompts of [false, true]) {
    const path = join(dir, `audit-${includePrompts}.jsonl`)
    const sink = closing(t, createAuditSink({ sink: 'file', path, includePrompts }, { log: captureLogger().log }))
    sink.write(
      sampleEvent(1, {
        prompt: [{ role: 'user', content: 'the launch code is 1234' }],
        completion: 'noted',
        reason: 'bad key ghk_abcDEF123456',
        userAgent: 'curl Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
      }),
    )
    await sink.close()
    const text = readFileSync(path, 'utf8')
    assert.equal(text.includes('launch code'), includePrompts)
    assert.equal(text.includes('"completion":"noted"'), includePrompts)
    assert.ok(!text.includes('ghk_abc'))
    assert.ok(!text.includes('eyJhbGci'))
    assert.match(text, /\[redacted\]/)
    assert.equal((await verifyAuditFile(path)).ok, true)
  }
})

test('an audit path that cannot be opened makes the sink unhealthy from the start', async (t) => {
  const dir = tmp()
  const blocker = join(dir, 'not-a-dir')
  writeFileSync(blocker, '')
  let errors = 0
  const { log, lines } = captureLogger()
  const sink = closing(t, createAuditSink(
    { sink: 'file', path: join(blocker, 'audit.jsonl'), includePrompts: false },
    { log, onWriteError: (n) => (errors += n) },
  ))
  await sink.flush()
  assert.equal(sink.isHealthy(), false)
  assert.match(lines.join(''), /"code":"(ENOTDIR|EEXIST)"/)
  sink.write(sampleEvent(1))
  await sink.flush()
  assert.equal(errors, 1)
  await sink.close()
})

test('an event that cannot be serialized is dropped and counted, and does not block the others', async (t) => {
  const out = new RecordingStream()
  const { log, lines } = captureLogger()
  let errors = 0
  let dropped = 0
  const sink = closing(t, createAuditSink(
    { sink: 'stdout', path: '-', includePrompts: true },
    { log, stdout: out, onWriteError: (n) => (errors += n), onDrop: (n) => (dropped += n) },
  ))
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  sink.write(sampleEvent(1))
  sink.write(sampleEvent(2, { prompt: cyclic }))
  sink.write(sampleEvent(3))
  await sink.flush()
  assert.deepEqual(
    out.lines().map((l) => (JSON.parse(l) as { requestId: string }).requestId),
    ['req-1', 'req-3'],
  )
  assert.deepEqual([errors, dropped, sink.isHealthy()], [1, 1, true])
  assert.match(lines.join(''), /could not be serialized/)
})
