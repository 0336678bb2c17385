import { parseArgs, flagString, flagNumber, type ParsedArgs } from '../cli/args.js'

/** Which real server the simulator imitates. */
export type SimKind = 'vllm' | 'ollama'

/** Settings that `POST /sim/config` may change while the simulator runs. */
export interface SimSettings {
  ttftMs: number
  itlMs: number
  tokens: number
  maxBatch: number
  errorRate: number
  errorStatus: number
  hangRate: number
  dropRate: number
  dropAfter: number
}

/** Everything `startSimulator` accepts; every field has a default. */
export interface SimOptions extends Partial<SimSettings> {
  port?: number
  host?: string
  kind?: SimKind
  /** Served model ids; the first is the "root" model (vLLM) / the metrics label. */
  models?: string[]
  /** Like --model: one id or a comma-separated list (used when `models` is absent). */
  model?: string
  id?: string
  /** Like `vllm --api-key`: /v1/* then need `Authorization: Bearer <apiKey>`. */
  apiKey?: string
  embedDim?: number
}

export const DEFAULT_SETTINGS: Readonly<SimSettings> = Object.freeze({
  ttftMs: 0,
  itlMs: 0,
  tokens: 16,
  maxBatch: 256,
  errorRate: 0,
  errorStatus: 500,
  hangRate: 0,
  dropRate: 0,
  dropAfter: 2,
})

type Rule = 'rate' | 'nonNegative' | 'positiveInt' | 'nonNegativeInt' | 'status'

const RULES: Record<keyof SimSettings, Rule> = {
  ttftMs: 'nonNegative',
  itlMs: 'nonNegative',
  tokens: 'positiveInt',
  maxBatch: 'positiveInt',
  errorRate: 'rate',
  errorStatus: 'status',
  hangRate: 'rate',
  dropRate: 'rate',
  dropAfter: 'nonNegativeInt',
}

const RULE_TEXT: Record<Rule, string> = {
  rate: 'a number between 0 and 1',
  nonNegative: 'a number >= 0',
  positiveInt: 'an integer >= 1',
  nonNegativeInt: 'an integer >= 0',
  status: 'an HTTP status between 400 and 599',
}

function fits(rule: Rule, v: number): boolean {
  if (!Number.isFinite(v)) return false
  switch (rule) {
    case 'rate':
      return v >= 0 && v <= 1
    case 'nonNegative':
      return v >= 0
    case 'positiveInt':
      return Number.isInteger(v) && v >= 1
    case 'nonNegativeInt':
      return Number.isInteger(v) && v >= 0
    case 'status':
      return Number.isInteger(v) && v >= 400 && v <= 599
  }
}

/**
 * Checks a partial settings object (from flags or `POST /sim/config`): returns the accepted
 * values, or one problem per bad or unknown key, so a caller can report them all at once.
 */
export function checkSettings(patch: Record<string, unknown>): { settings: Partial<SimSettings>; problems: string[] } {
  const settings: Partial<SimSettings> = {}
  const problems: string[] = []
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue
    if (!(key in RULES)) {
      problems.push(`${key}: unknown setting (known: ${Object.keys(RULES).join(', ')})`)
      continue
    }
    const name = key as keyof SimSettings
    if (typeof value !== 'number' || !fits(RULES[name], value)) {
      problems.push(`${key}: expected ${RULE_TEXT[RULES[name]]}, got ${JSON.stringify(value)}`)
      continue
    }
    settings[name] = value
  }
  return { settings, problems }
}

export const SIM_HELP = `usage: gatehouse sim --port P [options]

One simulated vLLM (or Ollama) replica for demos, tests and benchmarks.

  --port N            listen port (required; 0 picks a free one)
  --host H            listen address (default 127.0.0.1)
  --kind K            vllm | ollama (default vllm)
  --model NAMES       served model id, or a comma-separated list (default sim-model)
  --id NAME           replica id, sent as x-sim-replica and in /sim/stats (default <kind>-<port>)
  --ttft-ms N         time to first token in ms (default 0)
  --itl-ms N          time between tokens in ms (default 0)
  --tokens N          completion tokens per reply (default 16); a request's max_tokens,
                      max_completion_tokens or max_output_tokens lowers it
  --max-batch N       requests generating at once; the rest wait in a FIFO queue (default 256)
  --error-rate F      0..1: share of inference requests answered with --error-status (default 0)
  --error-status N    status of injected errors (default 500), vLLM/Ollama-shaped error JSON
  --hang-rate F       0..1: share of inference requests accepted and never answered (default 0)
  --drop-rate F       0..1: share of inference requests whose connection is destroyed (default 0)
  --drop-after N      streams are dropped after N content chunks (default 2); non-streaming
                      replies are dropped without an answer
  --api-key KEY       like vllm --api-key: /v1/* need "Authorization: Bearer KEY", else 401
  --embed-dim N       embedding vector size (default 64)
  --help              this text

Control (never behind --api-key):
  POST /sim/config     JSON with any of ttftMs itlMs tokens maxBatch errorRate errorStatus
                       hangRate dropRate dropAfter: changes them live, answers the settings
  GET  /sim/stats      {id, kind, requests, byPath, running, waiting, completed, aborted, errors, ...}
  GET  /sim/requests   the last 50 requests received (?path= filters); DELETE clears them
`

const FLAG_TO_SETTING: Record<string, keyof SimSettings> = {
  'ttft-ms': 'ttftMs',
  'itl-ms': 'itlMs',
  tokens: 'tokens',
  'max-batch': 'maxBatch',
  'error-rate': 'errorRate',
  'error-status': 'errorStatus',
  'hang-rate': 'hangRate',
  'drop-rate': 'dropRate',
  'drop-after': 'dropAfter',
}

const OTHER_FLAGS = new Set(['port', 'host', 'kind', 'model', 'id', 'api-key', 'embed-dim', 'help'])

/** Thrown for bad command-line flags; the CLI prints the problems and exits 2. */
export class SimUsageError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'))
    this.name = 'SimUsageError'
  }
}

/** Turns `gatehouse sim` flags into options; throws SimUsageError listing every problem. */
export function optionsFromArgs(args: ParsedArgs): SimOptions {
  const problems: string[] = []
  for (const name of args.flags.keys()) {
    if (!OTHER_FLAGS.has(name) && !(name in FLAG_TO_SETTING)) problems.push(`--${name}: unknown flag`)
  }
  if (args.positional.length > 0) problems.push(`unexpected argument "${args.positional[0]}"`)
  const number = (flag: string, fallback: number): number => {
    try {
      return flagNumber(args, flag, fallback)
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err))
      return fallback
    }
  }
  const port = number('port', -1)
  if (!args.flags.has('port')) problems.push('--port: required')
  else if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push('--port: expected 0..65535')
  const kind = flagString(args, 'kind') ?? 'vllm'
  if (kind !== 'vllm' && kind !== 'ollama') problems.push(`--kind: expected vllm or ollama, got "${kind}"`)
  const models = (flagString(args, 'model') ?? 'sim-model').split(',').map((m) => m.trim()).filter(Boolean)
  if (models.length === 0) problems.push('--model: expected at least one name')
  const embedDim = number('embed-dim', 64)
  if (!Number.isInteger(embedDim) || embedDim < 1) problems.push('--embed-dim: expected an integer >= 1')

  const raw: Record<string, unknown> = {}
  for (const [flag, setting] of Object.entries(FLAG_TO_SETTING)) {
    if (args.flags.has(flag)) raw[setting] = number(flag, Number.NaN)
  }
  const { settings, problems: settingProblems } = checkSettings(raw)
  for (const p of settingProblems) {
    const [setting] = p.split(':')
    const flag = Object.entries(FLAG_TO_SETTING).find(([, s]) => s === setting)?.[0] ?? setting
    problems.push(`--${flag}${p.slice(setting.length)}`)
  }
  for (const flag of ['host', 'id', 'api-key', 'model', 'kind']) {
    if (args.flags.get(flag) === true) problems.push(`--${flag}: expected a value`)
  }
  if (problems.length > 0) throw new SimUsageError(problems)
  return {
    ...settings,
    port,
    host: flagString(args, 'host') ?? '127.0.0.1',
    kind: kind as SimKind,
    models,
    id: flagString(args, 'id'),
    apiKey: flagString(args, 'api-key'),
    embedDim,
  }
}

/** Convenience for callers holding raw argv. */
export function optionsFromArgv(argv: readonly string[]): SimOptions {
  return optionsFromArgs(parseArgs(argv))
}
