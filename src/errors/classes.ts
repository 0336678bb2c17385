/**
 * Every error a client may see is one of these classes; anything else becomes a generic 500.
 * `code` is stable (SPEC section 3, Errors); `message` is safe to show (never a credential).
 */
export abstract class GatehouseError extends Error {
  abstract readonly status: number
  abstract readonly code: string
  readonly type: string = 'invalid_request_error'
  /** Extra response headers, e.g. `retry-after`. */
  headers: Record<string, string> = {}
  /** A short machine-readable reason for the audit line and metrics (never shown as-is). */
  reason: string | null = null
  param: string | null = null
  constructor(message: string, opts: { param?: string | null; reason?: string; headers?: Record<string, string> } = {}) {
    super(message)
    this.name = new.target.name
    if (opts.param !== undefined) this.param = opts.param
    if (opts.reason !== undefined) this.reason = opts.reason
    if (opts.headers) this.headers = opts.headers
  }
}

export class InvalidRequest extends GatehouseError {
  readonly status = 400
  readonly code = 'invalid_request_error'
}

export class InvalidApiKey extends GatehouseError {
  readonly status = 401
  readonly code = 'invalid_api_key'
  override readonly type = 'authentication_error'
}

export class PermissionDenied extends GatehouseError {
  readonly status = 403
  readonly code = 'permission_denied'
  override readonly type = 'permission_error'
}

export class ModelNotFound extends GatehouseError {
  readonly status = 404
  readonly code = 'model_not_found'
}

export class NotFound extends GatehouseError {
  readonly status = 404
  readonly code = 'not_found'
}

export class RequestTooLarge extends GatehouseError {
  readonly status = 413
  readonly code = 'request_too_large'
}

export class QuotaExceeded extends GatehouseError {
  readonly status = 429
  readonly code = 'rate_limit_exceeded'
  override readonly type = 'rate_limit_error'
}

export class UpstreamError extends GatehouseError {
  readonly status = 502
  readonly code = 'upstream_error'
  override readonly type = 'api_error'
}

export class NoHealthyUpstream extends GatehouseError {
  readonly status = 503
  readonly code = 'no_healthy_upstream'
  override readonly type = 'api_error'
}

/** The store (Redis) or the audit sink cannot be used: fail closed. */
export class ServiceUnavailable extends GatehouseError {
  readonly status = 503
  readonly code = 'service_unavailable'
  override readonly type = 'api_error'
}

export class UpstreamTimeout extends GatehouseError {
  readonly status = 504
  readonly code = 'upstream_timeout'
  override readonly type = 'api_error'
}

export class MethodNotAllowed extends GatehouseError {
  readonly status = 405
  readonly code = 'method_not_allowed'
}

/** A replica's own 4xx whose body was not in OpenAI's shape: the status is kept, the body ours. */
export class ReplicaRejected extends GatehouseError {
  readonly code = 'invalid_request_error'
  constructor(
    readonly status: number,
    message: string,
    opts: { reason?: string } = {},
  ) {
    super(message, opts)
  }
}
