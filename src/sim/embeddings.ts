// Deterministic embeddings: the same text always gives the same unit vector, different
// texts give different ones, so a test can check a response passed through unchanged.
import type { SimKind } from './options.js'
import { textInputTokens, type Json } from './prompt.js'

function vectorFor(text: string, dim: number): Float32Array {
  // FNV-1a over the text seeds a xorshift generator; normalised to length 1.
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  const v = new Float32Array(dim)
  let norm = 0
  for (let i = 0; i < dim; i++) {
    h ^= h << 13
    h ^= h >>> 17
    h ^= h << 5
    const x = (h >>> 0) / 0x100000000 - 0.5
    v[i] = x
    norm += x * x
  }
  norm = Math.sqrt(norm) || 1
  for (let i = 0; i < dim; i++) v[i] /= norm
  return v
}

/** The inputs of an embeddings request as a list; undefined when `input` is not usable. */
export function embeddingInputs(input: Json | undefined): Json[] | undefined {
  if (typeof input === 'string') return [input]
  if (!Array.isArray(input) || input.length === 0) return undefined
  // A flat list of numbers is one tokenized input, not many.
  if (input.every((x) => typeof x === 'number')) return [input]
  return input
}

export interface EmbeddingRequest {
  kind: SimKind
  id: string
  created: number
  model: string
  inputs: Json[]
  dim: number
  base64: boolean
}

/** The response body, in vLLM's or Ollama's field set. */
export function embeddingsBody(req: EmbeddingRequest): string {
  let tokens = 0
  const data = req.inputs.map((x, index) => {
    tokens += textInputTokens(x)
    const v = vectorFor(typeof x === 'string' ? x : JSON.stringify(x), req.dim)
    const embedding = req.base64 ? Buffer.from(v.buffer).toString('base64') : Array.from(v, (f) => Math.round(f * 1e6) / 1e6)
    return req.kind === 'vllm' ? { index, object: 'embedding', embedding } : { object: 'embedding', embedding, index }
  })
  if (req.kind === 'ollama') {
    return JSON.stringify({ object: 'list', data, model: req.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }) + '\n'
  }
  return JSON.stringify({
    id: req.id,
    object: 'list',
    created: req.created,
    model: req.model,
    data,
    usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null },
  })
}
