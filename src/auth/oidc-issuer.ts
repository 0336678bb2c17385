import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import type { OidcIssuerConfig } from '../config/index.js'
import { InvalidApiKey } from '../errors/index.js'
import type { Logger } from '../log/index.js'

export interface IssuerOptions {
  /** Minimum time between two JWKS fetches caused by an unknown `kid` (SPEC: 30 s). */
  jwksCooldownMs: number
  /** Background discovery retries back off from the first value to the second. */
  discoveryRetryMinMs: number
  discoveryRetryMaxMs: number
  /** A token of an undiscovered issuer may trigger a discovery attempt at most this often. */
  onDemandIntervalMs: number
  fetchTimeoutMs: number
}

export const defaultIssuerOptions: IssuerOptions = {
  jwksCooldownMs: 30_000,
  discoveryRetryMinMs: 1_000,
  discoveryRetryMaxMs: 30_000,
  onDemandIntervalMs: 2_000,
  fetchTimeoutMs: 5_000,
}

/** Why a discovery attempt failed, as a short code safe for logs. */
function failureReason(err: unknown): string {
  if (err instanceof DiscoveryError) return err.message
  const cause = (err as { cause?: { code?: unknown } }).cause
  if (cause && typeof cause.code === 'string') return cause.code
  if (err instanceof Error && err.name === 'TimeoutError') return 'timeout'
  return err instanceof Error ? err.name : 'error'
}

class DiscoveryError extends Error {}

/**
 * One trusted issuer's signing keys. Discovery runs at start; while the issuer is unreachable
 * it is retried in the background (with backoff) and, rate-limited, when one of its tokens
 * arrives, so an IdP that starts after the gateway is picked up without a restart.
 */
export class IssuerKeys {
  private getKey: JWTVerifyGetKey | null = null
  private attempt: Promise<void> | null = null
  private lastAttemptAt = 0
  private retryMs: number
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(
    readonly config: OidcIssuerConfig,
    private readonly log: Logger,
    private readonly opts: IssuerOptions,
  ) {
    this.retryMs = opts.discoveryRetryMinMs
  }

  get discoveryUrl(): string {
    return `${this.config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  }

  /** Starts discovery in the background; never throws. */
  start(): void {
    void this.discover()
  }

  /** The issuer's JWKS, or InvalidApiKey `issuer_unavailable` while it cannot be discovered. */
  async keys(): Promise<JWTVerifyGetKey> {
    if (this.getKey) return this.getKey
    if (!this.attempt && Date.now() - this.lastAttemptAt >= this.opts.onDemandIntervalMs) void this.discover()
    if (this.attempt) await this.attempt
    if (this.getKey) return this.getKey
    throw new InvalidApiKey('the token issuer is not available; try again later', { reason: 'issuer_unavailable' })
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private discover(): Promise<void> {
    if (this.attempt) return this.attempt
    this.lastAttemptAt = Date.now()
    this.attempt = this.fetchMetadata()
      .then((jwksUri) => {
        this.getKey = createRemoteJWKSet(new URL(jwksUri), {
          cooldownDuration: this.opts.jwksCooldownMs,
          timeoutDuration: this.opts.fetchTimeoutMs,
        })
        if (this.timer) clearTimeout(this.timer)
        this.timer = null
        this.log.info('oidc issuer discovered', { issuer: this.config.issuer })
      })
      .catch((err: unknown) => {
        this.log.warn('oidc discovery failed; its tokens are refused until it answers', {
          issuer: this.config.issuer,
          reason: failureReason(err),
          retryInMs: this.retryMs,
        })
        this.scheduleRetry()
      })
      .finally(() => {
        this.attempt = null
      })
    return this.attempt
  }

  private scheduleRetry(): void {
    if (this.closed || this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.discover()
    }, this.retryMs)
    this.timer.unref()
    this.retryMs = Math.min(this.retryMs * 2, this.opts.discoveryRetryMaxMs)
  }

  private async fetchMetadata(): Promise<string> {
    const res = await fetch(this.discoveryUrl, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.opts.fetchTimeoutMs),
    })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new DiscoveryError(`status ${res.status}`)
    }
    const doc = (await res.json().catch(() => null)) as { issuer?: unknown; jwks_uri?: unknown } | null
    if (!doc || typeof doc !== 'object') throw new DiscoveryError('metadata is not a JSON object')
    // OpenID Connect Discovery 1.0 section 4.3: the issuer in the metadata must be the one asked for.
    if (doc.issuer !== this.config.issuer) throw new DiscoveryError('metadata issuer does not match the configured issuer')
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) {
      throw new DiscoveryError('metadata has no http(s) jwks_uri')
    }
    return doc.jwks_uri
  }
}
