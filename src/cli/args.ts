/** Minimal `--flag value` / `--flag=value` / `--bool` parser for the CLI's subcommands. */
export interface ParsedArgs {
  flags: Map<string, string | true>
  positional: string[]
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>()
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      if (eq > 0) {
        flags.set(arg.slice(2, eq), arg.slice(eq + 1))
      } else {
        const next = argv[i + 1]
        if (next !== undefined && !next.startsWith('--')) {
          flags.set(arg.slice(2), next)
          i++
        } else {
          flags.set(arg.slice(2), true)
        }
      }
    } else {
      positional.push(arg)
    }
  }
  return { flags, positional }
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name)
  return typeof v === 'string' ? v : undefined
}

export function flagNumber(args: ParsedArgs, name: string, fallback: number): number {
  const v = flagString(args, name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isFinite(n)) throw new Error(`--${name}: expected a number, got "${v}"`)
  return n
}
