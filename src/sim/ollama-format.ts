// Chat and text completions as Ollama's OpenAI layer writes them. It differs from vLLM in
// ways a gateway meets in production: `system_fingerprint: "fp_ollama"`, no empty role chunk
// (every delta carries role and content), whole tool calls in one chunk, the finish chunk
// with `content: ""`, the usage chunk copying the last chunk with `choices: []`, zeroed
// `usage` on every completions chunk when include_usage is set, and JSON bodies ending in "\n".
import { sse, SSE_DONE, ticksOf, usageOf, type Reply, type ReplyInput } from './reply.js'

function usageJson(input: ReplyInput): string {
  const u = usageOf(input)
  return `{"prompt_tokens":${u.prompt_tokens},"completion_tokens":${u.completion_tokens},"total_tokens":${u.total_tokens}}`
}

function toolCallsJson(input: ReplyInput): string {
  if (input.plan.type !== 'tools') return ''
  return JSON.stringify(
    input.plan.calls.map((c, index) => ({ id: c.id, index, type: 'function', function: { name: c.name, arguments: c.arguments } })),
  )
}

/** Chat completions. */
export function ollamaChatReply(input: ReplyInput): Reply {
  const { plan } = input
  const head = `{"id":"${input.id}","object":"chat.completion.chunk","created":${input.created},"model":${JSON.stringify(input.model)},"system_fingerprint":"fp_ollama","choices":`
  const choice = (delta: string, finish: string | null): string =>
    `[{"index":0,"delta":${delta},"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]`
  const finishDelta = '{"role":"assistant","content":""}'
  return {
    stream: input.stream,
    ticks: ticksOf(plan),
    promptTokens: input.promptTokens,
    completionTokens: plan.completionTokens,
    finishReason: plan.finishReason,
    head: () => '',
    piece(i) {
      if (plan.type === 'text') return sse(head + choice(`{"role":"assistant","content":${JSON.stringify(plan.pieces[i])}}`, null) + '}')
      // Ollama parses tool calls whole before sending them: one chunk, then silence.
      return i === 0 ? sse(head + choice(`{"role":"assistant","content":"","tool_calls":${toolCallsJson(input)}}`, null) + '}') : ''
    },
    tail() {
      let out = sse(head + choice(finishDelta, plan.finishReason) + '}')
      if (input.includeUsage) out += sse(head + `[],"usage":${usageJson(input)}}`)
      return out + SSE_DONE
    },
    json() {
      const calls = plan.type === 'tools' ? `,"tool_calls":${toolCallsJson(input)}` : ''
      const content = plan.type === 'text' ? JSON.stringify(plan.text) : '""'
      return (
        `{"id":"${input.id}","object":"chat.completion","created":${input.created},"model":${JSON.stringify(input.model)},` +
        `"system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":${content}${calls}},` +
        `"finish_reason":"${plan.finishReason}"}],"usage":${usageJson(input)}}\n`
      )
    },
  }
}

/** Text completions. */
export function ollamaCompletionReply(input: ReplyInput): Reply {
  const { plan } = input
  const pieces = plan.type === 'text' ? plan.pieces : []
  const head = `{"id":"${input.id}","object":"text_completion","created":${input.created},"choices":`
  const tailFields = `,"model":${JSON.stringify(input.model)},"system_fingerprint":"fp_ollama"` +
    (input.includeUsage ? ',"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}' : '}')
  const choice = (text: string, finish: string | null): string =>
    `[{"text":${JSON.stringify(text)},"index":0,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]`
  return {
    stream: input.stream,
    ticks: pieces.length,
    promptTokens: input.promptTokens,
    completionTokens: plan.completionTokens,
    finishReason: plan.finishReason,
    head: () => '',
    piece: (i) => sse(head + choice(pieces[i], null) + tailFields),
    tail() {
      let out = sse(head + choice('', plan.finishReason) + tailFields)
      if (input.includeUsage) {
        out += sse(head + `[],"model":${JSON.stringify(input.model)},"system_fingerprint":"fp_ollama","usage":${usageJson(input)}}`)
      }
      return out + SSE_DONE
    },
    json: () =>
      `{"id":"${input.id}","object":"text_completion","created":${input.created},"model":${JSON.stringify(input.model)},` +
      `"system_fingerprint":"fp_ollama","choices":${choice(pieces.join(''), plan.finishReason)},"usage":${usageJson(input)}}\n`,
  }
}
