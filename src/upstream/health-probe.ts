import type { Dispatcher } from 'undici'
import type { CheckResult } from './health.js'

/** Where each kind answers an active check (SPEC section 2: Ollama has no /health). */
export function healthPath(kind: 'vllm' | 'ollama' | 'openai'): string {
  return kind === 'ollama' ? '/api/version' : '/health'
}

/** The stable code of an undici / Node failure; 'timeout' for our own deadline. */
export function errorCodeOf(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null
  if (e && (e.name === 'TimeoutError' || e.code === 23)) return 'timeout'
  if (typeof e?.code === 'string') return e.code
  if (typeof e?.cause?.code === 'string') return e.cause.code
  return 'unknown'
}

/**
 * GET `path` on a replica through its own pool, bounded by `timeoutMs` overall. Resolves with
 * the status and (when `readBody`) the text; rejects with undici's error on a failure.
 */
export async function probeGet(
  dispatcher: Dispatcher,
  origin: string,
  path: string,
  timeoutMs: number,
  apiKey: string | null,
  readBody: boolean,
): Promise<{ status: number; text: string }> {
  const res = await dispatcher.request({
    origin,
    path,
    method: 'GET',
    headers: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (!readBody) {
    await res.body.dump()
    return { status: res.statusCode, text: '' }
  }
  return { status: res.statusCode, text: await res.body.text() }
}

/** One active health check; never rejects. */
export async function checkReplica(
  dispatcher: Dispatcher,
  origin: string,
  path: string,
  timeoutMs: number,
  apiKey: string | null,
): Promise<CheckResult> {
  try {
    const { status } = await probeGet(dispatcher, origin, path, timeoutMs, apiKey, false)
    return { status, error: null }
  } catch (err) {
    return { status: null, error: errorCodeOf(err) }
  }
}
