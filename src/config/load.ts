import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { configSchema, crossReferenceProblems, type Config } from './schema.js'
import { embeddedDefaults } from './defaults.js'

/** Thrown when a config cannot be used; `problems` holds one line per problem, with its path. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`)
  }
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Replaces `${NAME}` and `${NAME:-default}` inside string values. Done after YAML parsing,
 * on strings only, so a secret containing YAML syntax cannot change the document's shape.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (_m, name: string, fallback: string | undefined) => {
      const found = env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      problems.push(`${path || '(root)'}: environment variable ${name} is not set`)
      return ''
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`, problems))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = substituteEnv(v, env, path ? `${path}.${k}` : k, problems)
    }
    return out
  }
  return value
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${String(part)}` : String(part)
  }
  return out || '(root)'
}

/** Validates an already parsed document; returns the frozen config or throws ConfigError. */
export function parseConfig(doc: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = []
  const substituted = substituteEnv(doc ?? {}, env, '', problems)
  const result = configSchema.safeParse(substituted)
  problems.push(...crossReferenceProblems(substituted))
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push(`${formatPath([...issue.path, key])}: unknown key`)
      } else {
        problems.push(`${formatPath(issue.path)}: ${issue.message}`)
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze(result.data as Config)
}

/** Reads and validates a YAML config file, or the embedded defaults when `file` is null. */
export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): Config {
  if (file === null) return parseConfig(embeddedDefaults(env), env)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`])
  }
  let doc: unknown
  try {
    doc = parseYaml(text, { prettyErrors: true })
  } catch (err) {
    // The parser's code (e.g. BAD_INDENT), not its message: the message quotes the line,
    // which may hold a secret.
    const e = err as { linePos?: { line: number }[]; code?: string }
    const line = e.linePos?.[0]?.line
    throw new ConfigError([`${file}${line ? `:${line}` : ''}: not valid YAML${e.code ? ` (${e.code})` : ''}`])
  }
  return parseConfig(doc, env)
}
