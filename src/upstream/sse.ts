import { StringDecoder } from 'node:string_decoder'
import type { ModelRewriter } from './model-rewrite.js'
import { usageFrom, type TokenUsage } from './usage.js'

const DATA_PREFIX = Buffer.from('data: {')
const USAGE_KEY = Buffer.from('"usage"')
const COMPLETED_KEY = Buffer.from('response.completed')

/**
 * Relays a replica's SSE stream to the client event by event, as it arrives. It notes the
 * usage the gateway asked for, drops the usage-only chunk when the client did not ask for
 * it, rewrites the model name, and counts content events (the estimate when a stream ends
 * early). Chunks that need none of this pass through as the same Buffer, untouched.
 */
export class SseRelay {
  usage: TokenUsage | null = null
  contentEvents = 0
  private pending = ''
  private readonly decoder = new StringDecoder('utf8')

  constructor(
    private readonly rewrite: ModelRewriter,
    /** Drop the `choices: []` usage chunk (the client did not ask for it). */
    private readonly dropUsageChunk: boolean,
    /** `responses`: usage arrives in the `response.completed` event. */
    private readonly mode: 'chat' | 'responses',
  ) {}

  /** Returns what to send to the client for this upstream chunk (possibly nothing). */
  push(chunk: Buffer): Buffer | string | null {
    if (this.pending === '' && this.rewrite === null && endsWithEventEnd(chunk) && !this.mayCarryUsage(chunk)) {
      this.contentEvents += countOccurrences(chunk, DATA_PREFIX)
      return chunk
    }
    const text = this.pending + this.decoder.write(chunk)
    const last = lastEventEnd(text)
    if (last < 0) {
      this.pending = text
      return null
    }
    this.pending = text.slice(last)
    return this.processEvents(text.slice(0, last))
  }

  /** Whatever is left when the upstream ends (an unterminated last event passes as is). */
  finish(): string | null {
    const rest = this.pending + this.decoder.end()
    this.pending = ''
    if (rest === '') return null
    return this.processEvents(rest)
  }

  private mayCarryUsage(chunk: Buffer): boolean {
    return chunk.includes(this.mode === 'chat' ? USAGE_KEY : COMPLETED_KEY)
  }

  private processEvents(block: string): string | null {
    let out = ''
    const sep = block.includes('\r') ? /\r?\n\r?\n/ : '\n\n'
    for (const raw of block.split(sep)) {
      if (raw === '') continue
      const event = this.rewrite ? this.rewrite(raw) : raw
      if (this.inspect(event)) out += `${event}\n\n`
    }
    return out === '' ? null : out
  }

  /** Notes usage and counts content; false when the event must not reach the client. */
  private inspect(event: string): boolean {
    const dataAt = event.indexOf('data: {')
    if (dataAt < 0) return true
    if (this.mode === 'responses') {
      if (event.includes('"response.completed"')) {
        const parsed = parseData(event, dataAt)
        const usage = parsed ? usageFrom((parsed as { response?: unknown }).response) : null
        if (usage) this.usage = usage
      } else if (event.includes('output_text.delta')) {
        this.contentEvents++
      }
      return true
    }
    if (!/"usage"\s*:\s*\{/.test(event)) {
      this.contentEvents++
      return true
    }
    const parsed = parseData(event, dataAt) as { choices?: unknown[] } | null
    const usage = usageFrom(parsed)
    if (usage) this.usage = usage
    const usageOnly = parsed !== null && Array.isArray(parsed.choices) && parsed.choices.length === 0
    if (!usageOnly) this.contentEvents++
    return !(usageOnly && this.dropUsageChunk)
  }
}

function parseData(event: string, dataAt: number): unknown {
  const lineEnd = event.indexOf('\n', dataAt)
  try {
    return JSON.parse(event.slice(dataAt + 6, lineEnd < 0 ? undefined : lineEnd))
  } catch {
    return null
  }
}

function endsWithEventEnd(chunk: Buffer): boolean {
  const n = chunk.length
  return n >= 2 && chunk[n - 1] === 0x0a && chunk[n - 2] === 0x0a
}

function lastEventEnd(text: string): number {
  const lf = text.lastIndexOf('\n\n')
  const crlf = text.lastIndexOf('\r\n\r\n')
  if (crlf >= 0 && crlf + 4 > lf + 2) return crlf + 4
  return lf < 0 ? -1 : lf + 2
}

function countOccurrences(buf: Buffer, needle: Buffer): number {
  let n = 0
  let at = buf.indexOf(needle)
  while (at >= 0) {
    n++
    at = buf.indexOf(needle, at + needle.length)
  }
  return n
}
