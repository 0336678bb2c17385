import { StringDecoder } from 'node:string_decoder'
import type { ModelRewriter } from './model-rewrite.js'
import { usageFrom, type TokenUsage } from './usage.js'

const DATA_PREFIX = Buffer.from('data: {')
const DONE = '[DONE]'
/** Events are small (one token, one tool-call piece); a larger one means a broken replica. */
export const MAX_EVENT_BYTES = 1024 * 1024
const USAGE_WORD = Buffer.from('usage')
const DATA_EVENT = Buffer.from('\n\ndata: {')
const EVENT_END = Buffer.from('\n\n')
const CR = 0x0d
const COMPLETED_KEY = Buffer.from('response.completed')
// The end of a Responses API delta event's type (`"type":"response.output_text.delta"`,
// `...function_call_arguments.delta"`): one per generated piece, text or tool call.
const DELTA_TYPE_END = Buffer.from('.delta"')

/**
 * Relays a replica's SSE stream to the client event by event, as it arrives. It notes the
 * usage the gateway asked for, drops the usage-only chunk when the client did not ask for
 * it, rewrites the model name, and counts content events (the estimate when a stream ends
 * early). Chunks that need none of this pass through as the same Buffer, untouched.
 */
export class SseRelay {
  usage: TokenUsage | null = null
  /** Content events seen while no usage was known: the completion estimate if none comes. */
  contentEvents = 0
  /** Set when an event grew past MAX_EVENT_BYTES: the caller must end the stream. */
  overflow = false
  private pending = ''
  private lastPiece: Buffer | string = ''
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
    if (this.pending === '' && this.rewrite === null && endsWithEventEnd(chunk)) {
      // (CRLF events take the general path below, which splits on either line end.)
      if (this.mode === 'chat') {
        if (!chunk.includes(CR)) return this.passChat(chunk)
      } else if (!chunk.includes(COMPLETED_KEY)) {
        this.contentEvents += countOccurrences(chunk, DELTA_TYPE_END)
        this.lastPiece = chunk
        return chunk
      }
    }
    const text = this.pending + this.decoder.write(chunk)
    const last = lastEventEnd(text)
    if (last < 0) {
      this.pending = text
      if (text.length > MAX_EVENT_BYTES) {
        this.overflow = true
        this.pending = ''
      }
      return null
    }
    this.pending = text.slice(last)
    const out = this.processEvents(text.slice(0, last))
    if (out !== null) this.lastPiece = out
    return out
  }

  /**
   * When the upstream has ended: a last `data: [DONE]` without its blank line is completed;
   * any other unterminated event is dropped, since the client could not parse it.
   */
  finish(): string | null {
    const rest = (this.pending + this.decoder.end()).trim()
    this.pending = ''
    if (rest === `data: ${DONE}`) {
      this.lastPiece = rest
      return `${rest}\n\n`
    }
    return null
  }

  /** Drops whatever partial event is buffered (the stream is being cut). */
  discard(): void {
    this.pending = ''
  }

  /** True when the stream ended as a finished reply does: with usage or `[DONE]`. */
  get complete(): boolean {
    return this.usage !== null || this.lastPiece.includes(DONE)
  }

  /**
   * Whole chat events, nothing to rewrite: the bytes pass as they are, except that an event
   * carrying a usage object (found by its key, read as text alone) is inspected, and left out
   * when the client did not ask for it. Content events are counted only while no usage is
   * known (they are the estimate when none comes). vLLM usually sends a short reply's events
   * in one chunk, usage included: decoding and splitting all of it cost more than the rest of
   * the relay. Needles start with a letter or a line end: Buffer#indexOf skips through JSON
   * quickly for those, but slowly for one that starts with a quote.
   */
  private passChat(chunk: Buffer): Buffer | null {
    let kept: Buffer[] | null = null
    let keptUpTo = 0
    let inspected = 0
    let at = chunk.indexOf(USAGE_WORD)
    while (at >= 0) {
      if (!isUsageObjectKey(chunk, at)) {
        at = chunk.indexOf(USAGE_WORD, at + USAGE_WORD.length)
        continue
      }
      const before = chunk.lastIndexOf(EVENT_END, at)
      const start = before < 0 ? 0 : before + EVENT_END.length
      // Found: the chunk ends with an event end.
      const end = chunk.indexOf(EVENT_END, at) + EVENT_END.length
      inspected++
      if (!this.inspect(chunk.toString('utf8', start, end - EVENT_END.length))) {
        ;(kept ??= []).push(chunk.subarray(keptUpTo, start))
        keptUpTo = end
      }
      at = chunk.indexOf(USAGE_WORD, end)
    }
    if (this.usage === null) this.contentEvents += countDataEvents(chunk) - inspected
    let out = chunk
    if (kept !== null) {
      kept.push(chunk.subarray(keptUpTo))
      out = Buffer.concat(kept)
      if (out.length === 0) return null
    }
    this.lastPiece = out
    return out
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
      } else if (event.includes('.delta"')) {
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

/** Whether the `usage` at `at` is a JSON key (`"usage"`) whose value is an object (blanks allowed). */
function isUsageObjectKey(buf: Buffer, at: number): boolean {
  if (buf[at - 1] !== 0x22 || buf[at + USAGE_WORD.length] !== 0x22) return false
  let i = at + USAGE_WORD.length + 1
  while (isBlank(buf[i])) i++
  if (buf[i] !== 0x3a) return false
  i++
  while (isBlank(buf[i])) i++
  return buf[i] === 0x7b
}

function isBlank(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09
}

/** Events whose data is a JSON object (the slow path's content events, before usage). */
function countDataEvents(chunk: Buffer): number {
  return (chunk.subarray(0, DATA_PREFIX.length).equals(DATA_PREFIX) ? 1 : 0) + countOccurrences(chunk, DATA_EVENT)
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
