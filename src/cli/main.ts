import { parseArgs, flagString } from './args.js'
import { loadConfig, ConfigError } from '../config/index.js'
import { runSimCli } from '../sim/index.js'

const USAGE = `usage: gatehouse <command> [options]

  serve [--config FILE]          run the gateway (default: $GATEHOUSE_CONFIG or ./gatehouse.yaml;
                                 embedded defaults when neither exists)
  check-config FILE              validate a config file (exit 0 valid, 2 invalid)
  sim --port P --kind vllm|ollama [...]   one simulated replica (gatehouse sim --help)
  demo                           simulators + gateway with a ready API key, until Ctrl-C
  keys create|list|revoke|rotate  manage API keys over the admin API (gatehouse keys --help)
  audit verify FILE              check the audit trail's hash chain; names the first bad line
`

/** Entry point of `gatehouse`; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number | void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).runServe(rest)
    case 'demo':
      return (await import('./demo.js')).runDemo()
    case 'check-config':
      return checkConfig(rest)
    case 'sim':
      return runSimCli(rest)
    case 'audit':
      return (await import('./audit.js')).runAuditCli(rest)
    case 'keys':
      return (await import('./keys.js')).runKeysCli(rest)
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE)
      return 0
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}`)
      return 2
  }
}

function checkConfig(argv: string[]): number {
  const args = parseArgs(argv)
  const file = args.positional[0] ?? flagString(args, 'config')
  if (!file) {
    process.stderr.write('usage: gatehouse check-config FILE\n')
    return 2
  }
  try {
    loadConfig(file)
    process.stdout.write(`${file}: valid\n`)
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`)
      return 2
    }
    throw err
  }
}
