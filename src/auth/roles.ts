import type { Config, Limits } from '../config/index.js'
import { PermissionDenied } from '../errors/index.js'
import type { Entitlements, Principal } from './types.js'

export const LIMIT_NAMES = [
  'requestsPerMinute',
  'tokensPerMinute',
  'tokensPerDay',
  'maxConcurrent',
  'maxTokensPerRequest',
] as const satisfies readonly (keyof Limits)[]

type ModelMatcher = (model: string) => boolean

/** Compiles model names and globs (`*`, `llama-*`) into one matcher. */
export function compileModelPatterns(patterns: readonly string[]): ModelMatcher {
  if (patterns.includes('*')) return () => true
  const exact = new Set(patterns.filter((p) => !p.includes('*')))
  const globs = patterns.filter((p) => p.includes('*'))
  if (globs.length === 0) return (model) => exact.has(model)
  const source = globs.map((g) => g.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*'))
  const re = new RegExp(`^(?:${source.join('|')})$`, 's')
  return (model) => exact.has(model) || re.test(model)
}

/** Most generous value per limit across roles; a limit absent from any role is unlimited. */
export function mergeRoleLimits(roles: readonly Limits[]): Limits {
  const merged: Limits = {}
  for (const name of LIMIT_NAMES) {
    let best: number | undefined = 0
    for (const role of roles) {
      const value = role[name]
      if (value === undefined) {
        best = undefined
        break
      }
      best = Math.max(best, value)
    }
    if (best !== undefined && roles.length > 0) merged[name] = best
  }
  return merged
}

/** A key's limits can only lower the roles' limits, never raise them. */
export function narrowLimits(roles: Limits, key: Limits | null): Limits {
  if (!key) return roles
  const out: Limits = { ...roles }
  for (const name of LIMIT_NAMES) {
    const k = key[name]
    if (k === undefined) continue
    const r = roles[name]
    out[name] = r === undefined ? k : Math.min(r, k)
  }
  return out
}

interface RoleSet {
  roles: readonly string[]
  limits: Limits
  allows: ModelMatcher
}

/**
 * Per-config compiled state: globs are compiled once per role, and each distinct role set
 * (plus a key's model list) gets one memoising matcher, so `allowsModel` is a map lookup.
 */
interface Compiled {
  roleMatchers: Map<string, ModelMatcher>
  sets: Map<string, RoleSet>
  /** Principals are reused objects (a cached key's, a cached token's): resolve each once. */
  byPrincipal: WeakMap<Principal, Entitlements>
}

const MAX_ROLE_SETS = 1_000
const MAX_MEMO = 1_000
const compiledByConfig = new WeakMap<Config, Compiled>()

function compile(config: Config): Compiled {
  let compiled = compiledByConfig.get(config)
  if (!compiled) {
    const roleMatchers = new Map<string, ModelMatcher>()
    for (const [name, role] of Object.entries(config.roles)) roleMatchers.set(name, compileModelPatterns(role.models))
    compiled = { roleMatchers, sets: new Map(), byPrincipal: new WeakMap() }
    compiledByConfig.set(config, compiled)
  }
  return compiled
}

/** Precompiles the role globs of `config` (call at start so the first request does not pay). */
export function precompileRoles(config: Config): void {
  compile(config)
}

function memoise(match: ModelMatcher): ModelMatcher {
  const memo = new Map<string, boolean>()
  return (model) => {
    let allowed = memo.get(model)
    if (allowed === undefined) {
      allowed = match(model)
      // Model names come from clients: stop memoising rather than grow without bound.
      if (memo.size < MAX_MEMO) memo.set(model, allowed)
    }
    return allowed
  }
}

function roleSet(config: Config, compiled: Compiled, roles: readonly string[], keyModels: readonly string[] | null): RoleSet {
  const cacheKey = `${roles.join('\n')}\u0000${keyModels ? keyModels.join('\n') : '*all*'}`
  const found = compiled.sets.get(cacheKey)
  if (found) return found
  const matchers = roles.map((r) => compiled.roleMatchers.get(r)!)
  const keyMatcher = keyModels ? compileModelPatterns(keyModels) : null
  const allows = memoise((model) => matchers.some((m) => m(model)) && (!keyMatcher || keyMatcher(model)))
  const set: RoleSet = {
    roles: Object.freeze([...roles]),
    limits: Object.freeze(mergeRoleLimits(roles.map((r) => config.roles[r]))),
    allows,
  }
  if (compiled.sets.size >= MAX_ROLE_SETS) compiled.sets.clear()
  compiled.sets.set(cacheKey, set)
  return set
}

/**
 * What `principal` may do: its configured roles (or `defaultRole` when none is configured)
 * merged, then narrowed by the key's own models and limits. Throws PermissionDenied when no
 * role applies. The app answers an unknown and a disallowed model with the same 404.
 */
export function resolveEntitlements(config: Config, principal: Principal): Entitlements {
  const compiled = compile(config)
  const known = compiled.byPrincipal.get(principal)
  if (known !== undefined) return known
  let roles = [...new Set(principal.roles.filter((r) => Object.hasOwn(config.roles, r)))]
  if (roles.length === 0 && config.defaultRole !== null) roles = [config.defaultRole]
  if (roles.length === 0) throw new PermissionDenied('none of your roles may use this gateway', { reason: 'no_role' })
  const set = roleSet(config, compiled, roles, principal.keyModels)
  const entitlements: Entitlements = Object.freeze({
    roles: set.roles,
    primaryRole: set.roles[0],
    limits: principal.keyLimits ? Object.freeze(narrowLimits(set.limits, principal.keyLimits)) : set.limits,
    allowsModel: set.allows,
  })
  if (Object.isFrozen(principal)) compiled.byPrincipal.set(principal, entitlements)
  return entitlements
}
