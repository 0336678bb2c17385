import { parseArgs, flagString } from './args.js'
import { GENESIS_HASH, verifyAuditFile, type VerifyResult } from '../audit/index.js'

const USAGE = `usage: gatehouse audit verify FILE [--prev HASH]

  Checks the audit file's hash chain. Exit 0 when intact, 1 naming the first line that was
  edited, removed or reordered, 2 on a usage or read error. --prev: the hash the file must
  continue from (the previous file's last hash, printed by verify, after a rotation).
`

/** `gatehouse audit ...`; resolves to the exit code. */
export async function runAuditCli(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub !== 'verify') {
    const help = sub === undefined || sub === '--help' || sub === 'help'
    process.stderr.write(help ? USAGE : `unknown audit command "${sub}"\n${USAGE}`)
    return 2
  }
  const args = parseArgs(rest)
  const file = args.positional[0]
  const prev = flagString(args, 'prev')
  if (!file || args.positional.length > 1 || (args.flags.has('prev') && !prev)) {
    process.stderr.write(USAGE)
    return 2
  }
  let result: VerifyResult
  try {
    result = await verifyAuditFile(file, { prev })
  } catch (err) {
    process.stderr.write(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}\n`)
    return 2
  }
  if (!result.ok) {
    process.stdout.write(`${file}: FAILED at line ${result.firstBadLine}: ${result.reason}\n`)
    return 1
  }
  const start =
    result.firstPrev === undefined
      ? 'empty'
      : result.firstPrev === GENESIS_HASH
        ? 'starts a new chain'
        : `continues from ${result.firstPrev}`
  process.stdout.write(`${file}: OK, ${result.lines} lines, chain intact (${start})\n`)
  if (result.restarts.length > 0) {
    // Expected from a stdout sink (each process start begins a chain); unexpected in a file.
    const at = result.restarts.join(', ')
    process.stdout.write(`new chain started at line ${at} (a process restart on a stdout sink)\n`)
  }
  if (result.lastHash) process.stdout.write(`last hash ${result.lastHash}\n`)
  return 0
}
