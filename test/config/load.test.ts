import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { loadConfig, parseConfig, ConfigError } from '../../src/config/index.js'
import { BIN } from '../helpers/processes.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'))
function file(name: string, text: string): string {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

const VALID = `
listen: { host: 127.0.0.1, port: 8080 }
store:
  redis: \${REDIS_URL:-}
  dataDir: ./data
auth:
  adminToken: \${ADMIN:-}
  oidc:
    - issuer: http://idp.local/realms/acme
      audience: gatehouse
      rolesClaim: realm_access.roles
roles:
  analyst: { models: ["mistral-*"], requestsPerMinute: 60, maxTokensPerRequest: 512 }
models:
  mistral-7b: { upstream: vllm, upstreamModel: /models/mistral }
upstreams:
  vllm:
    kind: vllm
    targets: [http://127.0.0.1:8000]
    apiKey: \${VLLM_KEY}
`

test('a valid file loads, with env substitution, defaults and a frozen result', () => {
  const cfg = loadConfig(file('ok.yaml', VALID), { VLLM_KEY: 'sk-upstream', ADMIN: 'adm' })
  assert.equal(cfg.upstreams.vllm.apiKey, 'sk-upstream')
  assert.equal(cfg.auth.adminToken, 'adm')
  assert.equal(cfg.store.redis, '')
  assert.equal(cfg.auth.oidc[0].subjectClaim, 'sub')
  assert.equal(cfg.upstreams.vllm.timeouts.firstByteMs, 120000)
  assert.equal(cfg.maxBodyBytes, 1048576)
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.roles.analyst) && Object.isFrozen(cfg.upstreams.vllm.timeouts))
  assert.throws(() => {
    ;(cfg.roles.analyst as { requestsPerMinute?: number }).requestsPerMinute = 1
  })
})

test('every problem is listed with its path, unknown keys included', () => {
  const bad = `
listen: { port: "eighty" }
bogus: 1
roles:
  analyst: { tokensPerMinute: -5, colour: red }
upstreams:
  u: { kind: tgi, targets: [http://x:1] }
models:
  m: { upstream: missing }
`
  const err = (() => {
    try {
      loadConfig(file('bad.yaml', bad), {})
    } catch (e) {
      return e
    }
    return null
  })()
  assert.ok(err instanceof ConfigError)
  const text = err.problems.join('\n')
  assert.match(text, /^listen\.port: expected a port number$/m)
  assert.match(text, /^bogus: unknown key$/m)
  assert.match(text, /^roles\.analyst\.tokensPerMinute: expected a positive integer$/m)
  assert.match(text, /^roles\.analyst\.colour: unknown key$/m)
  assert.match(text, /^upstreams\.u\.kind: expected vllm, ollama or openai$/m)
  // reported in the same run as the type errors
  assert.match(text, /^models\.m\.upstream: unknown upstream "missing"$/m)
})

test('dangling references and a missing environment variable are errors', () => {
  assert.throws(
    () => parseConfig({ models: { m: { upstream: 'nope' } }, defaultRole: 'ghost' }, {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.includes('models.m.upstream: unknown upstream "nope"') &&
      e.problems.includes('defaultRole: unknown role "ghost"'),
  )
  assert.throws(
    () => parseConfig({ upstreams: { u: { kind: 'vllm', targets: ['http://x:1'], apiKey: '${MISSING}' } } }, {}),
    (e: unknown) => e instanceof ConfigError && e.problems[0] === 'upstreams.u.apiKey: environment variable MISSING is not set',
  )
})

test('an upstream needs exactly one of dns and targets', () => {
  assert.throws(
    () => parseConfig({ upstreams: { u: { kind: 'vllm' } } }, {}),
    (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('upstreams.u: needs exactly one of dns or targets')),
  )
})

test('embedded defaults: one ollama upstream, a default role with all models, env overrides', () => {
  const cfg = loadConfig(null, { OLLAMA_URL: 'http://10.1.2.3:11434', GATEHOUSE_ADMIN_TOKEN: 't0k' })
  assert.deepEqual(cfg.upstreams.ollama.targets, ['http://10.1.2.3:11434'])
  assert.equal(cfg.listen.port, 8080)
  assert.equal(cfg.defaultRole, 'default')
  assert.deepEqual(cfg.roles.default.models, ['*'])
  assert.equal(cfg.auth.adminToken, 't0k')
})

test('check-config: exit 0 when valid, 2 with every problem, secrets never printed', () => {
  const ok = spawnSync(process.execPath, [BIN, 'check-config', file('ok2.yaml', VALID)], {
    env: { ...process.env, VLLM_KEY: 'sk-super-secret-value' },
    encoding: 'utf8',
  })
  assert.equal(ok.status, 0, ok.stderr)
  const secretBad = file('secret.yaml', `${VALID}\nmaxBodyBytes: \${SECRET}\n`)
  const bad = spawnSync(process.execPath, [BIN, 'check-config', secretBad], {
    env: { ...process.env, VLLM_KEY: 'sk-super-secret-value', SECRET: 'hunter2-secret' },
    encoding: 'utf8',
  })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /maxBodyBytes: expected a positive integer/)
  assert.doesNotMatch(bad.stdout + bad.stderr, /hunter2-secret|sk-super-secret-value/)
})
