import { InvalidRequest } from '../errors/index.js'
import { estimatePromptTokens } from './estimate.js'
import { ROUTE_SHAPES, type InferenceRoute } from './routes.js'

/**
 * An inference request body, parsed once. The gateway validates only the fields it needs
 * (model, stream, the token caps, the input's presence); everything else passes through as is.
 */
export interface InferenceBody {
  readonly route: InferenceRoute
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
  try {
    json = JSON.parse(raw.toString('utf8'))
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
 * caps clamped (or set to the cap when absent), and usage requested for streams. Returns the
 * serialized JSON; the client's parsed object is modified in place (it is not used again).
 */
export function upstreamBody(body: InferenceBody, upstreamModel: string, maxTokensPerRequest: number | undefined): string {
  const json = body.json
  const shape = ROUTE_SHAPES[body.route]
  json.model = upstreamModel
  if (maxTokensPerRequest !== undefined && shape.generates) {
    let any = false
    for (const field of shape.maxTokenFields) {
      const v = json[field]
      if (typeof v === 'number') {
        any = true
        if (v > maxTokensPerRequest) json[field] = maxTokensPerRequest
      }
    }
    if (!any) json[shape.maxTokenFields[shape.maxTokenFields.length - 1]] = maxTokensPerRequest
  }
  if (body.stream && shape.streamUsageOption && !body.clientWantsStreamUsage) {
    const existing = json.stream_options
    json.stream_options =
      existing && typeof existing === 'object' ? { ...(existing as object), include_usage: true } : { include_usage: true }
  }
  return JSON.stringify(json)
}
