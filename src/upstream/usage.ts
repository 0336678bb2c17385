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
