import { existsSync } from 'node:fs'
import { parseArgs, flagString, flagNumber } from './args.js'
import { loadConfig, ConfigError } from '../config/index.js'
import { createLogger, type LogLevel } from '../log/index.js'
import { startGateway } from '../main.js'

/**
 * `gatehouse serve [--config FILE] [--grace-ms N]`: runs until SIGTERM/SIGINT, then stops
 * accepting, lets streams in flight finish within the grace period, flushes the audit trail
 * and exits 0. SIGHUP reopens the audit file (logrotate).
 */
export async function runServe(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseArgs(argv)
  const explicit = flagString(args, 'config') ?? args.positional[0] ?? env.GATEHOUSE_CONFIG
  const file = explicit ?? (existsSync('gatehouse.yaml') ? 'gatehouse.yaml' : null)
  const level = (env.GATEHOUSE_LOG_LEVEL ?? 'info') as LogLevel
  const log = createLogger(['debug', 'info', 'warn', 'error'].includes(level) ? level : 'info')
  let config
  try {
    config = loadConfig(file, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`)
      return 2
    }
    throw err
  }
  if (file === null) log.info('no config file: running on embedded defaults')
  const graceMs = flagNumber(args, 'grace-ms', 30_000)
  const gateway = await startGateway(config, log)
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal, graceMs })
      gateway.close(graceMs).then(resolve, (err: unknown) => {
        log.error('error while stopping', { error: String(err) })
        resolve()
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => {
      gateway.reopenAudit().catch((err: unknown) => log.error('audit reopen failed', { error: String(err) }))
    })
  })
  return 0
}
