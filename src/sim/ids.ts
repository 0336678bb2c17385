import { randomBytes } from 'node:crypto'

/**
 * Id factories in each server's style. vLLM uses uuid4 hex (32 chars); a per-simulator
 * random prefix plus a counter looks the same and costs nothing per request. Ollama's
 * OpenAI layer uses small random numbers (`chatcmpl-123`, `resp_123456`).
 */
export interface IdSource {
  /** `chatcmpl-…`, `cmpl-…`, `resp_…`, `msg_…`: prefix plus this server's style of suffix. */
  next(prefix: string): string
  /** The id of a tool call: `chatcmpl-tool-…` (vLLM) or `call_…` (Ollama). */
  toolCall(): string
}

export function vllmIds(): IdSource {
  const stem = randomBytes(8).toString('hex')
  let counter = 0
  const hex = (): string => stem + (counter++).toString(16).padStart(16, '0')
  return {
    next: (prefix) => prefix + hex(),
    toolCall: () => 'chatcmpl-tool-' + hex(),
  }
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'

export function ollamaIds(): IdSource {
  return {
    next: (prefix) => prefix + Math.floor(Math.random() * (prefix.startsWith('resp_') || prefix.startsWith('msg_') ? 999999 : 999)),
    toolCall: () => {
      let s = 'call_'
      for (let i = 0; i < 8; i++) s += ALNUM[Math.floor(Math.random() * ALNUM.length)]
      return s
    },
  }
}
