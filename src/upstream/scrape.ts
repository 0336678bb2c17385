import type { Dispatcher } from 'undici'
import { probeGet } from './health-probe.js'
import { parseVllmMetrics, type VllmLoad } from './scrape-parse.js'

/**
 * Reads a vLLM replica's queue from `GET /metrics`. Null when it does not answer 200 in time
 * (the caller then falls back to its own in-flight count); never rejects.
 */
export async function scrapeLoad(
  dispatcher: Dispatcher,
  origin: string,
  timeoutMs: number,
  apiKey: string | null,
): Promise<VllmLoad | null> {
  try {
    const { status, text } = await probeGet(dispatcher, origin, '/metrics', timeoutMs, apiKey, true)
    return status === 200 ? parseVllmMetrics(text) : null
  } catch {
    return null
  }
}
