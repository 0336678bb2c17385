import type { Plan } from './plan.js'

/**
 * A rendered reply, ready for the engine to pace. The engine writes `head()` with the first
 * tick, `piece(i)` at tick i (one simulated token each), then `tail()`; or, not streaming,
 * `json()` once every tick has passed. Renderers know the wire format; the engine knows time.
 */
export interface Reply {
  stream: boolean
  ticks: number
  promptTokens: number
  completionTokens: number
  finishReason: string
  head(): string
  piece(i: number): string
  tail(): string
  json(): string
}

/** What every renderer gets: the plan plus the request facts it echoes back. */
export interface ReplyInput {
  id: string
  created: number
  model: string
  plan: Plan
  promptTokens: number
  stream: boolean
  includeUsage: boolean
}

export function usageOf(input: ReplyInput): { prompt_tokens: number; total_tokens: number; completion_tokens: number } {
  const c = input.plan.completionTokens
  return { prompt_tokens: input.promptTokens, total_tokens: input.promptTokens + c, completion_tokens: c }
}

/** The number of ticks a plan takes: one per text piece or tool-call argument piece. */
export function ticksOf(plan: Plan): number {
  return plan.type === 'text' ? plan.pieces.length : plan.calls.reduce((n, c) => n + c.pieces.length, 0)
}

/** Maps tick i of a tool-call plan to (call index, piece index within that call). */
export function toolTick(plan: Extract<Plan, { type: 'tools' }>, i: number): { call: number; piece: number } {
  let rest = i
  for (let call = 0; call < plan.calls.length; call++) {
    const len = plan.calls[call].pieces.length
    if (rest < len) return { call, piece: rest }
    rest -= len
  }
  return { call: plan.calls.length - 1, piece: 0 }
}

export function sse(data: string): string {
  return 'data: ' + data + '\n\n'
}

export const SSE_DONE = 'data: [DONE]\n\n'
