import { InvalidRequest } from '../errors/index.js'
import { estimatePromptTokens } from './estimate.js'
import { ROUTE_SHAPES, type InferenceRoute } from './routes.js'
import { applyEdits, memberSpans, type Edit, type ValueSpan } from './json-members.js'

/**
 * An inference request body, parsed once. The gateway validates only the fields it needs
 * (model, stream, the token caps, the input's presence); everything else passes through as is.
 */
export interface InferenceBody {
  readonly route: InferenceRoute
  /** The body's text as the client sent it. */
  readonly text: string
  readonly json: Record<string, unknown>
  readonly model: string
  readonly stream: boolean
  /** The client asked for the usage chunk in its stream (stream_options.include_usage). */
  readonly clientWantsStreamUsage: boolean
  /** The completion cap the client sent, or null. */
  readonly requestedMaxTokens: number | null
  readonly promptEstimate: number
}

/** Completion tokens reserved when neither the client nor the caller's role caps them. */
export const DEFAULT_COMPLETION_RESERVE = 1024

export function parseInferenceBody(raw: Buffer, route: InferenceRoute): InferenceBody {
  let json: unknown
  const text = raw.toString('utf8')
  try {
    json = JSON.parse(text)
  } catch {
    throw new InvalidRequest('the request body is not valid JSON', { reason: 'malformed_json' })
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidRequest('the request body must be a JSON object', { reason: 'not_an_object' })
  }
  const body = json as Record<string, unknown>
  const shape = ROUTE_SHAPES[route]
  const model = body.model
  if (model === undefined) throw new InvalidRequest('you must provide a model parameter', { param: 'model', reason: 'missing_model' })
  if (typeof model !== 'string' || model.length === 0 || model.length > 256) {
    throw new InvalidRequest('model must be a non-empty string', { param: 'model', reason: 'bad_field' })
  }
  const stream = body.stream
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new InvalidRequest('stream must be a boolean', { param: 'stream', reason: 'bad_field' })
  }
  if (route === '/v1/embeddings' && stream === true) {
    throw new InvalidRequest('embeddings cannot be streamed', { param: 'stream', reason: 'bad_field' })
  }
  const input = body[shape.inputField]
  if (input === undefined || input === null) {
    throw new InvalidRequest(`you must provide a ${shape.inputField} parameter`, { param: shape.inputField, reason: 'missing_input' })
  }
  if (shape.inputField === 'messages' && !Array.isArray(input)) {
    throw new InvalidRequest('messages must be an array', { param: 'messages', reason: 'bad_field' })
  }
  if (shape.inputField !== 'messages' && typeof input !== 'string' && !Array.isArray(input)) {
    throw new InvalidRequest(`${shape.inputField} must be a string or an array`, { param: shape.inputField, reason: 'bad_field' })
  }
  let requestedMaxTokens: number | null = null
  for (const field of shape.maxTokenFields) {
    const v = body[field]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new InvalidRequest(`${field} must be a positive integer`, { param: field, reason: 'bad_field' })
    }
    requestedMaxTokens = requestedMaxTokens === null ? v : Math.min(requestedMaxTokens, v)
  }
  const streamOptions = body.stream_options
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) {
    throw new InvalidRequest('stream_options must be an object', { param: 'stream_options', reason: 'bad_field' })
  }
  const clientWantsStreamUsage =
    streamOptions !== undefined && streamOptions !== null && (streamOptions as Record<string, unknown>).include_usage === true
  const extra = route === '/v1/responses' ? body.instructions : undefined
  return {
    route,
    text,
    json: body,
    model,
    stream: stream === true,
    clientWantsStreamUsage,
    requestedMaxTokens,
    promptEstimate: estimatePromptTokens(input, extra),
  }
}

/** Completion tokens this request may produce: the client's cap clamped by the role's. */
export function completionBudget(body: InferenceBody, maxTokensPerRequest: number | undefined): number {
  if (!ROUTE_SHAPES[body.route].generates) return 0
  const requested = body.requestedMaxTokens
  if (maxTokensPerRequest !== undefined) return requested === null ? maxTokensPerRequest : Math.min(requested, maxTokensPerRequest)
  return requested ?? DEFAULT_COMPLETION_RESERVE
}

/**
 * The body sent to the replica: the public model name replaced by the replica's, the token
 * caps clamped (or set to the cap when absent), and usage requested for streams. Every other
 * byte is the client's own (see json-members.ts).
 */
export function upstreamBody(body: InferenceBody, upstreamModel: string, maxTokensPerRequest: number | undefined): string {
  const json = body.json
  const shape = ROUTE_SHAPES[body.route]
  // Located only when something changes: a plain pass-through sends the client's text as is.
  let spans: Map<string, ValueSpan> | null = null
  const spanOf = (key: string) => (spans ??= memberSpans(body.text, EDITED_MEMBERS)).get(key) ?? null
  const edits: Edit[] = []
  if (upstreamModel !== body.model) edits.push({ key: 'model', span: spanOf('model'), value: JSON.stringify(upstreamModel) })
  if (maxTokensPerRequest !== undefined && shape.generates) {
    let present = false
    for (const field of shape.maxTokenFields) {
      const v = json[field]
      if (typeof v !== 'number') continue
      present = true
      if (v > maxTokensPerRequest) edits.push({ key: field, span: spanOf(field), value: String(maxTokensPerRequest) })
    }
    if (!present) edits.push({ key: shape.maxTokenFields[shape.maxTokenFields.length - 1], span: null, value: String(maxTokensPerRequest) })
  }
  if (body.stream && shape.streamUsageOption && !body.clientWantsStreamUsage) {
    const existing = json.stream_options
    const value = existing && typeof existing === 'object' ? { ...(existing as object), include_usage: true } : { include_usage: true }
    edits.push({ key: 'stream_options', span: spanOf('stream_options'), value: JSON.stringify(value) })
  }
  return edits.length === 0 ? body.text : applyEdits(body.text, edits)
}

const EDITED_MEMBERS = new Set(['model', 'max_tokens', 'max_completion_tokens', 'max_output_tokens', 'stream_options'])
