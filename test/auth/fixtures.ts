import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type Config } from '../../src/config/index.js'
import { createLogger, type Logger } from '../../src/log/index.js'
import { InvalidApiKey } from '../../src/errors/index.js'

export const ADMIN_TOKEN = 'bootstrap-admin-token-for-tests-0123456789'

/** A validated config with the test roles and the given issuers (`parseConfig` fills defaults). */
export function testConfig(extra: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      store: { dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-auth-')) },
      auth: { apiKeys: true, adminRoles: ['gatehouse-admin'], adminToken: ADMIN_TOKEN },
      roles: {
        analyst: { models: ['mistral-7b-instruct', 'llama-*'], requestsPerMinute: 60, tokensPerMinute: 40000, maxTokensPerRequest: 4096 },
        batch: { models: ['qwen2.5'], requestsPerMinute: 10, tokensPerMinute: 100000, tokensPerDay: 5000000 },
        everything: { models: ['*'] },
      },
      ...extra,
    },
    {},
  )
}

/** A logger that keeps its lines, so tests can assert that no credential was logged. */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = []
  return { log: createLogger('debug', (l) => lines.push(l)), lines }
}

/** Awaits `promise`, expecting InvalidApiKey; returns it for further checks. */
export async function refused(promise: Promise<unknown>): Promise<InvalidApiKey> {
  try {
    await promise
  } catch (err) {
    if (err instanceof InvalidApiKey) return err
    throw err
  }
  throw new Error('expected InvalidApiKey, but the credential was accepted')
}

/** Polls `check` until it returns true or `ms` pass; resolves to the last result. */
export async function eventually(check: () => Promise<boolean>, ms: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, stepMs))
  }
}
