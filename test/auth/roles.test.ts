import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { compileModelPatterns, mergeRoleLimits, resolveEntitlements, type Principal } from '../../src/auth/index.js'
import { PermissionDenied } from '../../src/errors/index.js'
import { testConfig } from './fixtures.js'

const principal = (roles: string[], extra: Partial<Principal> = {}): Principal => ({
  subject: 's',
  authMethod: 'oidc',
  keyId: null,
  roles,
  isAdmin: false,
  keyModels: null,
  keyLimits: null,
  ...extra,
})

describe('roles and entitlements', () => {
  const config = testConfig()

  it('matches model names and globs exactly, not by substring or regex', () => {
    const m = compileModelPatterns(['mistral-7b-instruct', 'llama-*', 'qwen?.5'])
    assert.equal(m('mistral-7b-instruct'), true)
    assert.equal(m('llama-3.1-8b'), true)
    assert.equal(m('llama-'), true)
    assert.equal(m('xllama-3'), false)
    assert.equal(m('mistral-7b-instruct-v2'), false)
    assert.equal(m('qwen2.5'), false, '? is a literal, not a wildcard')
    assert.equal(m('qwen?.5'), true)
    assert.equal(compileModelPatterns(['*'])('anything/at:all'), true)
    assert.equal(compileModelPatterns(['a.b'])('aXb'), false, '. is a literal')
  })

  it('merges several roles: union of models, most generous limit, absent = unlimited', () => {
    const e = resolveEntitlements(config, principal(['analyst', 'batch']))
    assert.deepEqual(e.roles, ['analyst', 'batch'])
    assert.equal(e.primaryRole, 'analyst')
    assert.equal(e.allowsModel('llama-3'), true)
    assert.equal(e.allowsModel('qwen2.5'), true)
    assert.equal(e.allowsModel('phi-3'), false)
    assert.deepEqual(e.limits, { requestsPerMinute: 60, tokensPerMinute: 100000 })
    assert.deepEqual(mergeRoleLimits([{ tokensPerDay: 5 }, { tokensPerDay: 9 }]), { tokensPerDay: 9 })
    assert.deepEqual(mergeRoleLimits([{ tokensPerDay: 5 }, {}]), {})
  })

  it('ignores unconfigured roles, falls back to defaultRole, else 403', () => {
    assert.deepEqual(resolveEntitlements(config, principal(['ghost', 'batch'])).roles, ['batch'])
    assert.throws(() => resolveEntitlements(config, principal(['ghost'])), PermissionDenied)
    assert.throws(() => resolveEntitlements(config, principal([])), PermissionDenied)
    const withDefault = testConfig({ defaultRole: 'batch' })
    const e = resolveEntitlements(withDefault, principal(['ghost']))
    assert.deepEqual(e.roles, ['batch'])
    assert.equal(e.allowsModel('qwen2.5'), true)
    assert.deepEqual(resolveEntitlements(withDefault, principal(['analyst'])).roles, ['analyst'], 'defaultRole only when none applies')
  })

  it("a key's models and limits only narrow the roles'", () => {
    const e = resolveEntitlements(
      config,
      principal(['analyst'], {
        authMethod: 'api_key',
        keyModels: ['llama-3*', 'qwen2.5'],
        keyLimits: { requestsPerMinute: 10, tokensPerMinute: 90000, tokensPerDay: 1000 },
      }),
    )
    assert.equal(e.allowsModel('llama-3.1'), true)
    assert.equal(e.allowsModel('llama-2'), false, 'outside the key list')
    assert.equal(e.allowsModel('qwen2.5'), false, 'in the key list but not in the roles')
    assert.deepEqual(e.limits, { requestsPerMinute: 10, tokensPerMinute: 40000, tokensPerDay: 1000, maxTokensPerRequest: 4096 })
  })

  it('answers the same for an unknown and a disallowed model, and reuses compiled sets', () => {
    const e1 = resolveEntitlements(config, principal(['batch']))
    const e2 = resolveEntitlements(config, principal(['batch']))
    assert.equal(e1.allowsModel('no-such-model'), e1.allowsModel('llama-3'))
    assert.equal(e1.allowsModel, e2.allowsModel, 'the matcher is cached per role set')
    assert.equal(e1.limits, e2.limits)
  })
})
