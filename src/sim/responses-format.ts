// The Responses API (`POST /v1/responses`) as vLLM and Ollama serve it: a `response` object,
// or SSE framed `event: <type>\ndata: {json}\n\n` where every event's data repeats its
// `type` and carries a `sequence_number`, ending with `response.completed` (full response,
// with usage) and no `[DONE]`.
import type { JsonObject } from './prompt.js'
import { ticksOf, toolTick, type Reply, type ReplyInput } from './reply.js'

export interface ResponsesInput extends ReplyInput {
  itemId: string
  body: JsonObject
}

function event(type: string, seq: number, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...data })}\n\n`
}

/** Builds Responses API replies; streaming events are numbered in the order they are written. */
export function responsesReply(input: ResponsesInput): Reply {
  const { plan, body } = input
  let seq = 0
  const emit = (type: string, data: Record<string, unknown>): string => event(type, seq++, data)
  const messageItem = (status: string, text: string | null): JsonObject => ({
    id: input.itemId,
    type: 'message',
    status,
    role: 'assistant',
    content: text === null ? [] : [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  })
  const callItem = (i: number, status: string, args: string): JsonObject => {
    const c = plan.type === 'tools' ? plan.calls[i] : undefined
    return { id: `fc_${input.itemId.slice(4)}_${i}`, type: 'function_call', status, call_id: c?.id ?? '', name: c?.name ?? '', arguments: args }
  }
  const part = (text: string): JsonObject => ({ type: 'output_text', text, annotations: [], logprobs: [] })
  const cut = plan.finishReason === 'length'
  const response = (status: string, done: boolean): Record<string, unknown> => ({
    id: input.id,
    object: 'response',
    created_at: input.created,
    status: done && cut ? 'incomplete' : status,
    incomplete_details: done && cut ? { reason: 'max_output_tokens' } : null,
    error: null,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    model: input.model,
    output: !done ? [] : plan.type === 'text' ? [messageItem('completed', plan.text)] : plan.calls.map((c, i) => callItem(i, 'completed', c.arguments)),
    parallel_tool_calls: body.parallel_tool_calls !== false,
    temperature: typeof body.temperature === 'number' ? body.temperature : 1,
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: typeof body.top_p === 'number' ? body.top_p : 1,
    background: false,
    max_output_tokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
    previous_response_id: null,
    reasoning: null,
    service_tier: 'auto',
    store: false,
    text: { format: { type: 'text' } },
    truncation: 'disabled',
    usage: done
      ? {
          input_tokens: input.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: plan.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: input.promptTokens + plan.completionTokens,
        }
      : null,
    metadata: {},
  })
  const at = { output_index: 0, content_index: 0 }

  return {
    stream: input.stream,
    ticks: ticksOf(plan),
    promptTokens: input.promptTokens,
    completionTokens: plan.completionTokens,
    finishReason: plan.finishReason,
    head() {
      let out = emit('response.created', { response: response('in_progress', false) })
      out += emit('response.in_progress', { response: response('in_progress', false) })
      if (plan.type !== 'text') return out
      out += emit('response.output_item.added', { output_index: 0, item: messageItem('in_progress', null) })
      return out + emit('response.content_part.added', { item_id: input.itemId, ...at, part: part('') })
    },
    piece(i) {
      if (plan.type === 'text') {
        return emit('response.output_text.delta', { item_id: input.itemId, ...at, delta: plan.pieces[i], logprobs: [] })
      }
      const { call, piece } = toolTick(plan, i)
      const c = plan.calls[call]
      const itemId = callItem(call, '', '').id
      let out = piece === 0 ? emit('response.output_item.added', { output_index: call, item: callItem(call, 'in_progress', '') }) : ''
      out += emit('response.function_call_arguments.delta', { item_id: itemId, output_index: call, delta: c.pieces[piece] })
      if (piece === c.pieces.length - 1) {
        out += emit('response.function_call_arguments.done', { item_id: itemId, output_index: call, arguments: c.arguments })
        out += emit('response.output_item.done', { output_index: call, item: callItem(call, 'completed', c.arguments) })
      }
      return out
    },
    tail() {
      let out = ''
      if (plan.type === 'text') {
        out += emit('response.output_text.done', { item_id: input.itemId, ...at, text: plan.text, logprobs: [] })
        out += emit('response.content_part.done', { item_id: input.itemId, ...at, part: part(plan.text) })
        out += emit('response.output_item.done', { output_index: 0, item: messageItem('completed', plan.text) })
      }
      return out + emit('response.completed', { response: response('completed', true) })
    },
    json: () => JSON.stringify(response('completed', true)),
  }
}
