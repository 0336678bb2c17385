// Error bodies exactly as each imitated server writes them. This is not the gateway's error
// shape (src/errors/ owns that); it is the upstream's, which the gateway must translate.
import type { SimKind } from './options.js'

/** A reply the router sends as is: status, content type and body. */
export interface Canned {
  status: number
  type: string
  body: string
}

const JSON_TYPE = 'application/json'

// vLLM's `type` is an exception class name (ErrorInfo.type), `code` the HTTP status.
const VLLM_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'UnauthorizedError',
  403: 'ForbiddenError',
  404: 'NotFoundError',
  408: 'TimeoutError',
  409: 'ConflictError',
  413: 'RequestEntityTooLargeError',
  422: 'UnprocessableEntityError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  501: 'NotImplementedError',
  502: 'BadGatewayError',
  503: 'ServiceUnavailableError',
  504: 'GatewayTimeoutError',
}

/** An API error from the imitated server: vLLM's ErrorResponse, or Ollama's OpenAI-layer error. */
export function apiError(kind: SimKind, status: number, message: string, param: string | null = null): Canned {
  if (kind === 'ollama') {
    const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error'
    return { status, type: JSON_TYPE, body: JSON.stringify({ error: { message, type, param: null, code: null } }) }
  }
  const type = VLLM_TYPES[status] ?? (status >= 500 ? 'InternalServerError' : 'BadRequestError')
  return { status, type: JSON_TYPE, body: JSON.stringify({ error: { message, type, param, code: status } }) }
}

/** vLLM's --api-key middleware answer (a bare string, not ErrorInfo). */
export function unauthorized(kind: SimKind): Canned {
  if (kind === 'ollama') return apiError(kind, 401, 'unauthorized')
  return { status: 401, type: JSON_TYPE, body: '{"error":"Unauthorized"}' }
}

/** No such route: FastAPI's `{"detail":"Not Found"}` (vLLM) or Gin's plain text (Ollama). */
export function noRoute(kind: SimKind, methodNotAllowed = false): Canned {
  if (kind === 'ollama') return { status: 404, type: 'text/plain', body: '404 page not found' }
  return methodNotAllowed
    ? { status: 405, type: JSON_TYPE, body: '{"detail":"Method Not Allowed"}' }
    : { status: 404, type: JSON_TYPE, body: '{"detail":"Not Found"}' }
}

/** The 404 for a model the replica does not serve. */
export function unknownModel(kind: SimKind, model: string): Canned {
  return kind === 'ollama'
    ? apiError(kind, 404, `model "${model}" not found, try pulling it first`)
    : apiError(kind, 404, `The model \`${model}\` does not exist.`)
}
