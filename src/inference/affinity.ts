import { createHash } from 'node:crypto'
import type { InferenceBody } from './request-body.js'

/**
 * A key that stays the same across the turns of one conversation (the subject plus its first
 * message), so the balancer can keep it on one replica and vLLM's prefix cache stays warm.
 * Only chat and responses bodies have a conversation; others get no affinity.
 */
export function affinityKeyFor(subject: string, body: InferenceBody): string | undefined {
  const input = body.route === '/v1/chat/completions' ? body.json.messages : body.route === '/v1/responses' ? body.json.input : undefined
  if (!Array.isArray(input) || input.length < 2) return undefined
  const first = input[0] as { content?: unknown } | undefined
  const content = first && typeof first === 'object' ? first.content : undefined
  if (typeof content !== 'string') return undefined
  return createHash('sha1').update(subject).update('\0').update(content.slice(0, 2048)).digest('base64url')
}
