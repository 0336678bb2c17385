import { parseArgs } from '../cli/args.js'
import { optionsFromArgs, SIM_HELP, SimUsageError, type SimOptions } from './options.js'
import { startSimulator } from './server.js'

/**
 * `gatehouse sim [flags]`: one simulated replica until SIGTERM or SIGINT. Resolves 0 after a
 * clean stop, 2 on bad flags, 1 when it cannot listen.
 */
export async function runSimCli(argv: string[]): Promise<number> {
  const args = parseArgs(argv)
  if (args.flags.has('help') || argv.includes('-h')) {
    process.stdout.write(SIM_HELP)
    return 0
  }
  let options: SimOptions
  try {
    options = optionsFromArgs(args)
  } catch (err) {
    if (!(err instanceof SimUsageError)) throw err
    process.stderr.write(`${err.problems.join('\n')}\nsee: gatehouse sim --help\n`)
    return 2
  }
  const kind = options.kind ?? 'vllm'
  let sim
  try {
    sim = await startSimulator(options)
  } catch (err) {
    process.stderr.write(`sim: cannot listen on ${options.host}:${options.port}: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
  const running = sim
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      running.close().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    // Handlers first: whoever waits for the line below may signal right after reading it.
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.stdout.write(`sim ${kind} listening on ${running.url}\n`)
  })
}
