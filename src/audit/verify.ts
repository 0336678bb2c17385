import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { GENESIS_HASH, checkLine } from './hash-chain.js'

export interface VerifyResult {
  ok: boolean
  /** Lines in the file. */
  lines: number
  /** 1-based number of the first line that fails, when not ok. */
  firstBadLine?: number
  reason?: string
  /** `prev` of the first record: 64 zeros for a new chain, else the hash it continues from. */
  firstPrev?: string
  /** Hash of the last record (the chain head), when ok. */
  lastHash?: string
  /** Lines after the first where a new chain starts (prev = 64 zeros): a process restart on a stdout sink. */
  restarts: number[]
}

export interface VerifyOptions {
  /** The hash the file must continue from (the previous file's last hash, after rotation). */
  prev?: string
}

/**
 * Re-computes every line's hash and checks each line chains to the one before; reports the
 * first line that was edited, or where lines were removed or reordered. Reads the file as a
 * stream (a second pass only when the chain breaks, to tell reordering from removal).
 */
export async function verifyAuditFile(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  // Fails early and plainly (ENOENT, EISDIR) instead of mid-stream.
  if (!(await stat(path)).isFile()) throw new Error(`${path}: not a regular file`)
  let lines = 0
  let expectedPrev: string | null = opts.prev ?? null
  let firstPrev: string | undefined
  let bad: { line: number; reason: string; missingPrev?: string } | null = null
  const restarts: number[] = []
  for await (const line of readLines(path)) {
    lines++
    if (bad) continue
    const check = checkLine(line)
    if (check.kind === 'invalid') {
      bad = { line: lines, reason: `line ${lines} is not an audit record (${check.why})` }
      continue
    }
    if (!check.intact) {
      bad = { line: lines, reason: `line ${lines} was edited: its content does not match its hash` }
      continue
    }
    if (check.prev === GENESIS_HASH && lines > 1) {
      // A stdout stream starts a new chain at every process start; say so rather than fail.
      restarts.push(lines)
    } else if (expectedPrev !== null && check.prev !== expectedPrev) {
      bad = { line: lines, reason: '', missingPrev: check.prev }
      continue
    }
    firstPrev ??= check.prev
    expectedPrev = check.hash
  }
  if (!bad) {
    const lastHash = lines > 0 && expectedPrev !== null ? expectedPrev : undefined
    return { ok: true, lines, firstPrev, lastHash, restarts }
  }
  if (bad.missingPrev !== undefined) bad.reason = await explainBreak(path, bad.line, bad.missingPrev)
  return { ok: false, lines, firstBadLine: bad.line, reason: bad.reason, firstPrev, restarts }
}

async function explainBreak(path: string, lineNo: number, prev: string): Promise<string> {
  if (lineNo === 1) {
    return prev === GENESIS_HASH
      ? 'line 1 starts a new chain, but a previous hash was given'
      : 'line 1 does not continue from the given hash: lines before it were removed, or this is not the next file'
  }
  let n = 0
  let found = 0
  for await (const line of readLines(path)) {
    n++
    const check = checkLine(line)
    if (check.kind === 'record' && check.hash === prev) {
      found = n
      break
    }
  }
  if (found > lineNo) {
    return `line ${lineNo} is out of order: it belongs after line ${found} (lines were reordered)`
  }
  if (found > 0) {
    return `line ${lineNo} is out of order: it belongs after line ${found}, not line ${lineNo - 1} (reordered or copied)`
  }
  return (
    `line ${lineNo} does not follow line ${lineNo - 1}: ` +
    `the line(s) between them were removed, or line ${lineNo - 1} was replaced`
  )
}

async function* readLines(path: string): AsyncGenerator<string> {
  const input = createReadStream(path, { encoding: 'utf8' })
  try {
    yield* createInterface({ input, crlfDelay: Infinity })
  } finally {
    input.destroy()
  }
}
