/**
 * Prompt token estimate used for reservations before the replica reports real usage.
 * Roughly 4 characters per token for text; a fixed cost per image part (documented in the
 * README) because an image's token count depends on the model's vision encoder.
 */
export const CHARS_PER_TOKEN = 4
export const IMAGE_TOKEN_COST = 768
const PER_MESSAGE_OVERHEAD = 4

const IMAGE_TYPES = new Set(['image_url', 'input_image', 'image'])
const SKIPPED_KEYS = new Set(['type', 'role', 'id', 'name', 'tool_call_id', 'detail'])

function charsIn(value: unknown, depth: number): number {
  if (typeof value === 'string') return value.length
  if (typeof value === 'number') return CHARS_PER_TOKEN // a token id in a pre-tokenized prompt
  if (depth > 16 || value === null || typeof value !== 'object') return 0
  if (Array.isArray(value)) {
    let n = 0
    for (const item of value) n += charsIn(item, depth + 1)
    return n
  }
  const obj = value as Record<string, unknown>
  if (typeof obj.type === 'string' && IMAGE_TYPES.has(obj.type)) return IMAGE_TOKEN_COST * CHARS_PER_TOKEN
  let n = 0
  for (const key in obj) {
    if (!SKIPPED_KEYS.has(key)) n += charsIn(obj[key], depth + 1)
  }
  return n
}

/** Estimated prompt tokens of an inference body's input (messages, prompt or input). */
export function estimatePromptTokens(input: unknown, extra?: unknown): number {
  let chars = charsIn(input, 0) + charsIn(extra, 0)
  const messages = Array.isArray(input) ? input.length : 1
  return Math.ceil(chars / CHARS_PER_TOKEN) + PER_MESSAGE_OVERHEAD * messages
}

/** Completion tokens a stream delivered before it ended early: about one per content event. */
export function estimateStreamedTokens(contentEvents: number): number {
  return contentEvents
}
