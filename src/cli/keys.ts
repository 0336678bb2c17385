import { parseArgs, flagString, type ParsedArgs } from './args.js'

const USAGE = `usage: gatehouse keys <create|list|revoke|rotate> [options]

  create --name NAME --roles a,b [--subject S] [--models m1,llama-*] [--expires-at ISO]
  list
  revoke KEY_ID
  rotate KEY_ID

  --url URL             the gateway (default $GATEHOUSE_URL or http://127.0.0.1:8080)
  --admin-token TOKEN   default $GATEHOUSE_ADMIN_TOKEN
  --json                print the raw JSON answer
`

/** Where the CLI reads its environment and writes its output (tests pass their own). */
export interface KeysCliIo {
  env: NodeJS.ProcessEnv
  out: (text: string) => void
  err: (text: string) => void
}

const defaultIo: KeysCliIo = {
  env: process.env,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
}

class UsageError extends Error {}

const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined)

function createBody(args: ParsedArgs): Record<string, unknown> {
  const name = flagString(args, 'name')
  const roles = list(flagString(args, 'roles'))
  if (!name || !roles) throw new UsageError('keys create needs --name and --roles')
  const body: Record<string, unknown> = { name, roles }
  const subject = flagString(args, 'subject')
  const models = list(flagString(args, 'models'))
  const expiresAt = flagString(args, 'expires-at')
  if (subject) body.subject = subject
  if (models) body.models = models
  if (expiresAt) body.expiresAt = expiresAt
  return body
}

interface KeyJson {
  id: string
  key?: string
  name: string
  subject: string
  roles: string[]
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}

function table(keys: KeyJson[]): string {
  const rows = [['ID', 'NAME', 'SUBJECT', 'ROLES', 'EXPIRES', 'REVOKED', 'LAST USED']]
  for (const k of keys) {
    rows.push([k.id, k.name, k.subject, k.roles.join(','), k.expiresAt ?? '-', k.revokedAt ?? '-', k.lastUsedAt ?? '-'])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}

/**
 * `gatehouse keys create|list|revoke|rotate` over the admin API; resolves to the exit code
 * (0 done, 1 refused by the gateway or unreachable, 2 bad usage).
 */
export async function runKeysCli(argv: readonly string[], io: KeysCliIo = defaultIo): Promise<number> {
  const args = parseArgs(argv)
  const [command, id] = args.positional
  const base = (flagString(args, 'url') ?? io.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '')
  const token = flagString(args, 'admin-token') ?? io.env.GATEHOUSE_ADMIN_TOKEN
  let method: string
  let path: string
  let body: Record<string, unknown> | undefined
  try {
    if (!token) throw new UsageError('no admin token: pass --admin-token or set GATEHOUSE_ADMIN_TOKEN')
    switch (command) {
      case 'create':
        ;[method, path, body] = ['POST', '/admin/keys', createBody(args)]
        break
      case 'list':
        ;[method, path] = ['GET', '/admin/keys']
        break
      case 'revoke':
      case 'rotate':
        if (!id) throw new UsageError(`keys ${command} needs a key id`)
        ;[method, path] = command === 'revoke'
          ? ['DELETE', `/admin/keys/${encodeURIComponent(id)}`]
          : ['POST', `/admin/keys/${encodeURIComponent(id)}/rotate`]
        break
      default:
        throw new UsageError(command ? `unknown keys command "${command}"` : 'missing keys command')
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`${err.message}\n${USAGE}`)
    return 2
  }

  let res: Response
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(15_000),
    })
  } catch (err) {
    io.err(`cannot reach ${base}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}\n`)
    return 1
  }
  const json = (await res.json().catch(() => null)) as { error?: { message?: string }; data?: KeyJson[] } & Partial<KeyJson> | null
  if (!res.ok) {
    io.err(`gateway answered ${res.status}: ${json?.error?.message ?? 'no details'}\n`)
    return 1
  }
  if (args.flags.has('json') || !json) {
    io.out(`${JSON.stringify(json, null, 2)}\n`)
  } else if (command === 'list') {
    io.out(table(json.data ?? []))
  } else if (json.key) {
    io.out(`${json.id}\n${json.key}\n`)
    io.err(`the key above is shown only this once; store it now\n`)
  } else {
    io.out(`${json.id} revoked at ${json.revokedAt}\n`)
  }
  return 0
}
