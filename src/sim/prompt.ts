// Deterministic prompt-token estimates. Real replicas tokenize; the simulator only needs a
// number that is stable, grows with the prompt, and that a test can recompute by hand:
// ceil(characters / 4) over every text part, plus IMAGE_TOKENS per image part, at least 1.

/** Parsed JSON as it arrives in a request body. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Fixed prompt cost of one image part (OpenAI's low-detail image cost). */
export const IMAGE_TOKENS = 85

interface Tally {
  chars: number
  images: number
}

function tokensOf(t: Tally): number {
  return Math.max(1, Math.ceil(t.chars / 4) + t.images * IMAGE_TOKENS)
}

const IMAGE_PART_TYPES = new Set(['image_url', 'input_image', 'image'])

/** Adds a message `content` (string, or an array of typed parts) to the tally. */
function tallyContent(content: Json | undefined, t: Tally): void {
  if (typeof content === 'string') {
    t.chars += content.length
    return
  }
  if (!Array.isArray(content)) return
  for (const part of content) {
    if (typeof part === 'string') t.chars += part.length
    else if (isObject(part)) {
      if (typeof part.type === 'string' && IMAGE_PART_TYPES.has(part.type)) t.images++
      else if (typeof part.text === 'string') t.chars += part.text.length
    }
  }
}

/** Chat messages: the text of every message's content, plus images. */
export function chatPromptTokens(messages: Json | undefined): number {
  const t: Tally = { chars: 0, images: 0 }
  if (Array.isArray(messages)) {
    for (const m of messages) if (isObject(m)) tallyContent(m.content, t)
  }
  return tokensOf(t)
}

/**
 * A completions `prompt` or embeddings `input`: a string, a list of strings, a list of
 * token ids (counted one each) or a list of such lists.
 */
export function textInputTokens(input: Json | undefined, depth = 0): number {
  if (typeof input === 'string') return tokensOf({ chars: input.length, images: 0 })
  // Real inputs are a string or one level of arrays; a deeply nested one must not overflow the stack.
  if (!Array.isArray(input) || depth > 8) return 1
  if (input.every((x) => typeof x === 'number')) return Math.max(1, input.length)
  let total = 0
  for (const x of input) total += textInputTokens(x, depth + 1)
  return Math.max(1, total)
}

/** Responses API: `instructions` plus `input` (a string, or message items with parts). */
export function responsesPromptTokens(body: JsonObject): number {
  const t: Tally = { chars: 0, images: 0 }
  if (typeof body.instructions === 'string') t.chars += body.instructions.length
  const input = body.input
  if (typeof input === 'string') t.chars += input.length
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (!isObject(item)) continue
      tallyContent(item.content, t)
      if (typeof item.output === 'string') t.chars += item.output.length
    }
  }
  return tokensOf(t)
}

/** The text of the last user message, lower-cased, for the "call a tool" prompt triggers. */
export function lastUserText(messages: Json | undefined): string {
  if (!Array.isArray(messages)) return ''
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (!isObject(m) || m.role !== 'user') continue
    if (typeof m.content === 'string') return m.content.toLowerCase()
    if (Array.isArray(m.content)) {
      return m.content
        .map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : ''))
        .join(' ')
        .toLowerCase()
    }
    return ''
  }
  return ''
}
