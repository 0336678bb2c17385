/** Token usage as the replica reported it, normalised across the OpenAI API's shapes. */
export interface TokenUsage {
  promptTokens: number
  completionTokens: number
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0
}

/** Reads `usage` from a chat/completions/embeddings object or a Responses API object. */
export function usageFrom(obj: unknown): TokenUsage | null {
  if (!obj || typeof obj !== 'object') return null
  const usage = (obj as { usage?: unknown }).usage
  if (!usage || typeof usage !== 'object') return null
  const u = usage as Record<string, unknown>
  if ('input_tokens' in u || 'output_tokens' in u) {
    return { promptTokens: num(u.input_tokens), completionTokens: num(u.output_tokens) }
  }
  return { promptTokens: num(u.prompt_tokens), completionTokens: num(u.completion_tokens) }
}

const USAGE_KEY = Buffer.from('"usage"')
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const OPEN = 0x7b
const CLOSE = 0x7d

function skipSpace(bytes: Buffer, i: number): number {
  while (i < bytes.length) {
    const c = bytes[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    i++
  }
  return i
}

/**
 * The usage of a whole JSON reply, read from its `"usage"` member alone, without parsing
 * (or decoding) the rest: the reply is relayed as the replica's bytes, and parsing it all
 * only to read two numbers cost more than anything else the gateway does with it (an
 * embeddings reply is mostly floats). The last `"usage"` followed by a colon is a key, never
 * text: inside a JSON string every quote is escaped. Returns undefined when no such member
 * holding an object is found or the object does not parse; the caller then parses the whole
 * reply (and learns whether it is JSON at all).
 */
export function usageInReply(bytes: Buffer): TokenUsage | undefined {
  // Searched backwards from just before the last find (a negative offset would count from the end).
  for (let from = bytes.length - 1; from >= 0; ) {
    const at = bytes.lastIndexOf(USAGE_KEY, from)
    if (at < 0) return undefined
    from = at - 1
    let i = skipSpace(bytes, at + USAGE_KEY.length)
    if (bytes[i] !== COLON) continue
    i = skipSpace(bytes, i + 1)
    if (bytes[i] !== OPEN) return undefined
    const end = objectEnd(bytes, i)
    if (end < 0) return undefined
    try {
      return usageFrom({ usage: JSON.parse(bytes.toString('utf8', i, end)) }) ?? undefined
    } catch {
      return undefined
    }
  }
  return undefined
}

/** Index just past the object that opens at `start`, or -1 if it does not close. */
function objectEnd(bytes: Buffer, start: number): number {
  let depth = 0
  let inString = false
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i]
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN) {
      depth++
    } else if (c === CLOSE && --depth === 0) {
      return i + 1
    }
  }
  return -1
}
