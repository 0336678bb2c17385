// Chat and text completions as vLLM's OpenAI server writes them: its field set and order,
// `data: {json}\n\n` SSE with a role chunk first, one chunk per token, a finish chunk, the
// usage-only chunk (`choices: []`) only on stream_options.include_usage, then `[DONE]`.
import { sse, SSE_DONE, ticksOf, toolTick, usageOf, type Reply, type ReplyInput } from './reply.js'

function vllmUsage(input: ReplyInput): string {
  const u = usageOf(input)
  return `{"prompt_tokens":${u.prompt_tokens},"total_tokens":${u.total_tokens},"completion_tokens":${u.completion_tokens},"prompt_tokens_details":null}`
}

/** Chat completions (`chat.completion` / `chat.completion.chunk`). */
export function vllmChatReply(input: ReplyInput): Reply {
  const { plan } = input
  const head = `{"id":"${input.id}","object":"chat.completion.chunk","created":${input.created},"model":${JSON.stringify(input.model)},"choices":[{"index":0,"delta":`
  const open = ',"logprobs":null,"finish_reason":null}]}'
  const delta = (d: string): string => sse(head + d + open)
  return {
    stream: input.stream,
    ticks: ticksOf(plan),
    promptTokens: input.promptTokens,
    completionTokens: plan.completionTokens,
    finishReason: plan.finishReason,
    head: () => delta('{"role":"assistant","content":""}'),
    piece(i) {
      if (plan.type === 'text') return delta('{"content":' + JSON.stringify(plan.pieces[i]) + '}')
      const { call, piece } = toolTick(plan, i)
      const c = plan.calls[call]
      const args = delta(`{"tool_calls":[{"index":${call},"function":{"arguments":${JSON.stringify(c.pieces[piece])}}}]}`)
      if (piece > 0) return args
      const name = `{"tool_calls":[{"id":"${c.id}","type":"function","index":${call},"function":{"name":${JSON.stringify(c.name)},"arguments":""}}]}`
      return delta(name) + args
    },
    tail() {
      let out = sse(head + `{},"logprobs":null,"finish_reason":"${plan.finishReason}","stop_reason":null}]}`)
      if (input.includeUsage) {
        out += sse(`{"id":"${input.id}","object":"chat.completion.chunk","created":${input.created},"model":${JSON.stringify(input.model)},"choices":[],"usage":${vllmUsage(input)}}`)
      }
      return out + SSE_DONE
    },
    json() {
      const content = plan.type === 'text' ? JSON.stringify(plan.text) : 'null'
      const calls =
        plan.type === 'tools'
          ? JSON.stringify(plan.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })))
          : '[]'
      return (
        `{"id":"${input.id}","object":"chat.completion","created":${input.created},"model":${JSON.stringify(input.model)},` +
        `"choices":[{"index":0,"message":{"role":"assistant","content":${content},"refusal":null,"annotations":null,` +
        `"audio":null,"function_call":null,"tool_calls":${calls},"reasoning_content":null},"logprobs":null,` +
        `"finish_reason":"${plan.finishReason}","stop_reason":null}],"service_tier":null,"system_fingerprint":null,` +
        `"usage":${vllmUsage(input)},"prompt_logprobs":null,"kv_transfer_params":null}`
      )
    },
  }
}

/** Text completions (`text_completion`); no role chunk, text pieces only. */
export function vllmCompletionReply(input: ReplyInput): Reply {
  const { plan } = input
  const pieces = plan.type === 'text' ? plan.pieces : []
  const prefix = `{"id":"${input.id}","object":"text_completion","created":${input.created},"model":${JSON.stringify(input.model)},"choices":[`
  return {
    stream: input.stream,
    ticks: pieces.length,
    promptTokens: input.promptTokens,
    completionTokens: plan.completionTokens,
    finishReason: plan.finishReason,
    head: () => '',
    piece: (i) => sse(prefix + `{"index":0,"text":${JSON.stringify(pieces[i])},"logprobs":null,"finish_reason":null,"stop_reason":null}]}`),
    tail() {
      let out = sse(prefix + `{"index":0,"text":"","logprobs":null,"finish_reason":"${plan.finishReason}","stop_reason":null}]}`)
      if (input.includeUsage) out += sse(prefix + `],"usage":${vllmUsage(input)}}`)
      return out + SSE_DONE
    },
    json: () =>
      prefix +
      `{"index":0,"text":${JSON.stringify(pieces.join(''))},"logprobs":null,"finish_reason":"${plan.finishReason}",` +
      `"stop_reason":null,"prompt_logprobs":null}],"service_tier":null,"system_fingerprint":null,` +
      `"usage":${vllmUsage(input)},"kv_transfer_params":null}`,
  }
}
