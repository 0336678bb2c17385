import { GatehouseError } from './classes.js'

/** The error body OpenAI's SDKs understand. The only place that writes error JSON. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string }
}

export function errorBody(err: GatehouseError): OpenAIErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } }
}

export function internalErrorBody(): OpenAIErrorBody {
  return {
    error: { message: 'internal error; see the gateway log', type: 'api_error', param: null, code: 'internal_error' },
  }
}

export function errorJson(err: GatehouseError): string {
  return JSON.stringify(errorBody(err))
}
