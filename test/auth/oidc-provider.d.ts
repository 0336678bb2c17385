// oidc-provider ships no types; this is the small part the tests use.
declare module 'oidc-provider' {
  import type { Server } from 'node:http'

  interface KoaContext {
    path: string
    method: string
  }

  interface AccessTokenLike {
    clientId?: string
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    listen(port: number, host: string, callback?: () => void): Server
    use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): this
    on(event: string, listener: (...args: unknown[]) => void): this
  }
  export type { AccessTokenLike }
}
