import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { test } from 'node:test'

// jose (≈6 MiB of RSS) is loaded only by a gateway that has an OIDC issuer configured. A
// module hook in a fresh process reports every import of it.

const dist = resolve(import.meta.dirname, '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lazy-oidc-'))
const hooks = join(dir, 'hooks.mjs')
writeFileSync(
  hooks,
  `export async function resolve(specifier, context, next) {
  if (specifier === 'jose') process.stdout.write('IMPORTED jose\\n')
  return next(specifier, context)
}
`,
)
const register = join(dir, 'register.mjs')
writeFileSync(register, `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooks).href)})\n`)

function runAuthenticator(oidc: unknown[]): string {
  const script = `
import { parseConfig } from ${JSON.stringify(pathToFileURL(join(dist, 'src/config/index.js')).href)}
import { createAuthenticator } from ${JSON.stringify(pathToFileURL(join(dist, 'src/auth/index.js')).href)}
import { createLogger } from ${JSON.stringify(pathToFileURL(join(dist, 'src/log/index.js')).href)}
const config = parseConfig({ store: { dataDir: ${JSON.stringify(dir)} }, auth: { adminToken: 'lazy-oidc-admin-token', oidc: ${JSON.stringify(oidc)} }, roles: { r: { models: ['*'] } } }, {})
const auth = createAuthenticator({ config, keyStore: {}, log: createLogger('error', () => {}) })
const refused = await auth.authenticate('Bearer aaa.bbb.ccc').then(() => 'accepted', (err) => err.reason)
process.stdout.write('JWT ' + refused + '\\n')
await auth.close()
`
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

test('without an issuer jose is never imported (and a JWT is refused as from an unknown issuer)', () => {
  const out = runAuthenticator([])
  assert.match(out, /^JWT unknown_issuer$/m)
  assert.doesNotMatch(out, /IMPORTED jose/)
})

test('with an issuer jose is imported, and the same JWT is judged by the verifier', () => {
  const out = runAuthenticator([{ issuer: 'http://127.0.0.1:9/realms/none', audience: 'gatehouse' }])
  assert.match(out, /IMPORTED jose/)
  assert.doesNotMatch(out, /^JWT (accepted|unknown_issuer)$/m)
})
