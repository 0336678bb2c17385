// The four inference endpoints: validate the request the way the imitated server does,
// pick the injected fault, plan and render the reply, and hand it to the engine.
import type { ServerResponse } from 'node:http'
import type { Catalog } from './catalog.js'
import { embeddingInputs, embeddingsBody } from './embeddings.js'
import { serveReply, type Fault, type Pacing } from './engine.js'
import { apiError, unknownModel, type Canned } from './errors.js'
import type { IdSource } from './ids.js'
import { ollamaChatReply, ollamaCompletionReply } from './ollama-format.js'
import type { SimKind } from './options.js'
import { chooseTools, makePlan, tokenBudget } from './plan.js'
import { chatPromptTokens, isObject, responsesPromptTokens, textInputTokens, type Json, type JsonObject } from './prompt.js'
import type { Reply, ReplyInput } from './reply.js'
import { responsesReply } from './responses-format.js'
import { vllmChatReply, vllmCompletionReply } from './vllm-format.js'

export type InferenceRoute = 'chat' | 'completion' | 'responses' | 'embeddings'

export const INFERENCE_ROUTES: Readonly<Record<string, InferenceRoute>> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completion',
  '/v1/responses': 'responses',
  '/v1/embeddings': 'embeddings',
}

/** What the inference handlers share with the server. */
export interface InferenceContext {
  kind: SimKind
  catalog: Catalog
  ids: IdSource
  pacing: Pacing
  embedDim: number
  /** Sends an error reply and counts it. */
  reject(res: ServerResponse, canned: Canned): void
}

/** The request's own token cap field(s), first present wins. */
const CAP_FIELDS: Record<InferenceRoute, string[]> = {
  chat: ['max_completion_tokens', 'max_tokens'],
  completion: ['max_tokens'],
  responses: ['max_output_tokens'],
  embeddings: [],
}

/** A request the replica refuses, carrying the reply it answers with. */
class Invalid extends Error {
  constructor(readonly canned: Canned) {
    super(canned.body)
  }
}

function requestCap(kind: SimKind, route: InferenceRoute, body: JsonObject): number | undefined {
  for (const field of CAP_FIELDS[route]) {
    const v = body[field]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new Invalid(apiError(kind, 400, `${field} must be at least 1, got ${JSON.stringify(v)}.`, field))
    }
    return v
  }
  return undefined
}

function includeUsage(kind: SimKind, body: JsonObject): boolean {
  const opts = body.stream_options
  if (!isObject(opts)) return false
  // vLLM's StreamOptions defaults include_usage to true; Ollama needs it spelled out.
  return kind === 'vllm' ? opts.include_usage === undefined || opts.include_usage === true : opts.include_usage === true
}

/** The JSON-output request of a chat (`response_format`) or Responses (`text.format`) body. */
function jsonRequest(route: InferenceRoute, body: JsonObject): { schema?: Json } | undefined {
  const format = route === 'responses' ? (isObject(body.text) ? body.text.format : undefined) : body.response_format
  if (!isObject(format)) return undefined
  if (format.type === 'json_object') return {}
  if (format.type !== 'json_schema') return undefined
  const schema = route === 'responses' ? format.schema : isObject(format.json_schema) ? format.json_schema.schema : undefined
  return schema === undefined ? {} : { schema }
}

/** Responses API `input` as chat-like messages, for the "call a tool" prompt triggers. */
function responsesMessages(input: Json | undefined): Json {
  return typeof input === 'string' ? [{ role: 'user', content: input }] : (input ?? [])
}

function pickFault(ctx: InferenceContext): Fault | 'error' {
  const s = ctx.pacing.state.settings
  if (s.errorRate > 0 && Math.random() < s.errorRate) return 'error'
  if (s.hangRate > 0 && Math.random() < s.hangRate) return 'hang'
  if (s.dropRate > 0 && Math.random() < s.dropRate) return 'drop'
  return 'none'
}

function checkBody(ctx: InferenceContext, route: InferenceRoute, body: JsonObject): string {
  const { kind, catalog } = ctx
  let model = body.model
  if (model === undefined || model === null) {
    // vLLM serves its first model when none is named; Ollama needs one.
    if (kind === 'ollama') throw new Invalid(apiError(kind, 400, 'model is required'))
    model = catalog.primary
  }
  if (typeof model !== 'string') throw new Invalid(apiError(kind, 400, 'model must be a string', 'model'))
  if (!catalog.serves(model)) throw new Invalid(unknownModel(kind, model))
  const bad = (message: string, param: string): never => {
    throw new Invalid(apiError(kind, 400, message, param))
  }
  if (route === 'chat' && (!Array.isArray(body.messages) || body.messages.length === 0)) bad('messages must be a non-empty array', 'messages')
  if (route === 'completion' && typeof body.prompt !== 'string' && !Array.isArray(body.prompt)) bad('prompt must be a string or an array', 'prompt')
  if (route === 'responses' && typeof body.input !== 'string' && !Array.isArray(body.input)) bad('input must be a string or an array', 'input')
  if (route === 'embeddings' && !embeddingInputs(body.input)) bad('input must be a string or a non-empty array', 'input')
  if (kind === 'vllm' && (route === 'chat' || route === 'completion') && body.stream_options && body.stream !== true) {
    bad('Stream options can only be defined when `stream=True`.', 'stream_options')
  }
  return model
}

function render(ctx: InferenceContext, route: InferenceRoute, body: JsonObject, model: string, cap: number | undefined): Reply {
  const { kind, ids } = ctx
  const created = Math.floor(Date.now() / 1000)
  if (route === 'embeddings') {
    const inputs = embeddingInputs(body.input) ?? []
    const text = embeddingsBody({
      kind, id: ids.next('embd-'), created, model, inputs, dim: ctx.embedDim, base64: body.encoding_format === 'base64',
    })
    const promptTokens = inputs.reduce((n: number, x) => n + textInputTokens(x), 0)
    return {
      stream: false, ticks: 1, promptTokens, completionTokens: 0, finishReason: 'stop',
      head: () => '', piece: () => '', tail: () => '', json: () => text,
    }
  }
  const { n, cut } = tokenBudget(ctx.pacing.state.settings.tokens, cap)
  const messages = route === 'responses' ? responsesMessages(body.input) : body.messages
  const plan = makePlan({
    n,
    cut,
    json: route === 'completion' ? undefined : jsonRequest(route, body),
    tools: route === 'completion' ? [] : chooseTools(body, messages),
    toolCallId: () => ids.toolCall(),
  })
  const promptTokens =
    route === 'chat' ? chatPromptTokens(body.messages) : route === 'completion' ? textInputTokens(body.prompt) : responsesPromptTokens(body)
  const stream = body.stream === true
  const prefix = route === 'chat' ? 'chatcmpl-' : route === 'completion' ? 'cmpl-' : 'resp_'
  const input: ReplyInput = { id: ids.next(prefix), created, model, plan, promptTokens, stream, includeUsage: stream && includeUsage(kind, body) }
  if (route === 'responses') return responsesReply({ ...input, itemId: ids.next('msg_'), body })
  if (route === 'chat') return kind === 'vllm' ? vllmChatReply(input) : ollamaChatReply(input)
  return kind === 'vllm' ? vllmCompletionReply(input) : ollamaCompletionReply(input)
}

/** Handles one inference request whose body was parsed (`undefined`: it was not valid JSON). */
export function handleInference(ctx: InferenceContext, route: InferenceRoute, body: Json | undefined, res: ServerResponse): void {
  let reply: Reply
  try {
    if (body === undefined) throw new Invalid(apiError(ctx.kind, 400, 'Expecting value: the request body is not valid JSON'))
    if (!isObject(body)) throw new Invalid(apiError(ctx.kind, 400, 'the request body must be a JSON object'))
    const model = checkBody(ctx, route, body)
    const cap = requestCap(ctx.kind, route, body)
    reply = render(ctx, route, body, model, cap)
  } catch (err) {
    if (err instanceof Invalid) return ctx.reject(res, err.canned)
    throw err
  }
  const fault = pickFault(ctx)
  if (fault === 'error') {
    const status = ctx.pacing.state.settings.errorStatus
    return ctx.reject(res, apiError(ctx.kind, status, `simulated replica failure (status ${status})`))
  }
  serveReply(ctx.pacing, res, reply, fault)
}
