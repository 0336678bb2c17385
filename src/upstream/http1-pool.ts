import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'
import { ReplyReader } from './http1-reply.js'
import { atTurnEnd } from '../http/turn-end.js'

/**
 * The replica request path's HTTP/1.1 client: keep-alive connections to one origin, one
 * request at a time on each (vLLM and Ollama do not pipeline), no cap on their number (so a
 * long stream never queues a request behind it). It does only what a POST to a replica needs,
 * which is why it costs about a quarter of undici's CPU per request (bench:cpu's socket-floor
 * against undici-floor): the request goes out in one write, the reply is read by ReplyReader,
 * and timeouts are checked by one shared sweep instead of a timer per request. Health checks
 * and scrapes keep using undici.
 *
 * Errors carry undici's codes (UND_ERR_SOCKET, UND_ERR_HEADERS_TIMEOUT, ...) or the system's
 * (ECONNREFUSED, ...), so the proxy's retry rules, the health rules and audit reasons are
 * the same as with undici.
 */

/** What receives one reply; the Exchange implements it. */
export interface ReplyHandler {
  /** Called first, synchronously: `abort` ends the request (the handler then gets onError). */
  onConnect(abort: (reason: Error) => void): void
  /** Return false to pause reading until `resume`. 1xx answers are skipped. */
  onHeaders(status: number, contentType: string | null, resume: () => void): boolean
  onData(chunk: Buffer): boolean
  onComplete(): void
  /** Exactly one of onComplete and onError is called. */
  onError(err: Error): void
}

export interface ReplicaRequest {
  path: string
  headers: Readonly<Record<string, string>>
  body: string
  /** Longest wait from sending until the reply's headers, ms. */
  headersTimeout: number
  /** Longest silence while reading the body, ms; 0: none. */
  bodyTimeout: number
}

export class UpstreamClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Idle connections are closed after this unless the replica asks for less (Keep-Alive: timeout). */
const IDLE_MS = 4000
/** Margin under the replica's own keep-alive timeout, so we never send on a connection it is closing. */
const IDLE_MARGIN_MS = 1000
const SWEEP_MS = 50
// Characters that could end a header line early or be read differently by the replica.
const UNSAFE_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Set by this client from the request itself.
const OWN_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade'])

const enum State {
  Connecting,
  Idle,
  Busy,
  Closed,
}

/** Connections with a deadline to watch: requests in flight and idle keep-alive ones. */
const watched = new Set<Connection>()
let sweeper: NodeJS.Timeout | null = null

function watch(conn: Connection): void {
  watched.add(conn)
  if (sweeper === null) {
    sweeper = setInterval(sweep, SWEEP_MS)
    sweeper.unref()
  }
}

function sweep(): void {
  const now = performance.now()
  for (const conn of watched) conn.check(now)
  if (watched.size === 0 && sweeper !== null) {
    clearInterval(sweeper)
    sweeper = null
  }
}

class Connection {
  readonly socket: Socket
  state = State.Connecting
  private handler: ReplyHandler | null = null
  private readonly reader: ReplyReader
  /** Counts requests, so a late abort or resume from an earlier one is ignored. */
  private serial = 0
  private keepAlive = true
  private idleMs = IDLE_MS
  /** What the deadline is for, and when it passes (performance.now() ms). */
  private waitingFor: 'connect' | 'headers' | 'body' | 'idle' | null = null
  private deadline = 0
  private bodyTimeout = 0
  /** Body bytes came since the last sweep: the body deadline moves on. */
  private progressed = false
  private paused = false
  /** The headers timeout of a request sent before the connection was up: armed once it is. */
  private pendingHeadersTimeout = 0

  constructor(
    private readonly pool: Http1Pool,
    url: URL,
    connectTimeout: number,
  ) {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80)
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    this.socket =
      url.protocol === 'https:'
        ? connectTls({ host, port, servername: isIP(host) === 0 ? host : undefined, ALPNProtocols: ['http/1.1'] })
        : connectTcp({ host, port })
    this.socket.setNoDelay(true)
    this.reader = new ReplyReader(this)
    this.waitingFor = 'connect'
    this.deadline = performance.now() + connectTimeout
    watch(this)
    this.socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.socket.setKeepAlive(true, 60_000)
      if (this.waitingFor === 'connect') this.arm('headers', this.pendingHeadersTimeout)
    })
    this.socket.on('data', (data: Buffer) => this.onSocketData(data))
    this.socket.on('error', (err) => this.fail(err))
    this.socket.on('close', () => this.onSocketClose())
  }

  send(req: ReplicaRequest, handler: ReplyHandler, head: string): void {
    this.state = State.Busy
    this.handler = handler
    const serial = ++this.serial
    this.reader.reset()
    this.keepAlive = true
    this.paused = false
    this.bodyTimeout = req.bodyTimeout
    handler.onConnect((reason) => {
      if (this.serial === serial && this.handler === handler) this.fail(reason)
    })
    if (this.handler !== handler) return // aborted from within onConnect
    if (this.waitingFor === 'connect') this.pendingHeadersTimeout = req.headersTimeout
    else this.arm('headers', req.headersTimeout)
    // Sent with the turn's other writes (see http/turn-end.ts): the replica, which shares the
    // gateway's core in a small deployment, is then woken once per turn, not once per request.
    atTurnEnd(() => {
      if (this.serial === serial && this.handler === handler) this.socket.write(head + req.body)
    })
  }

  private arm(what: 'headers' | 'body' | 'idle', ms: number): void {
    this.waitingFor = what
    this.deadline = performance.now() + ms
    watch(this)
  }

  private disarm(): void {
    this.waitingFor = null
    watched.delete(this)
  }

  /** Called by the sweep: ends whatever waited past its deadline. */
  check(now: number): void {
    if (this.waitingFor === null) {
      watched.delete(this)
      return
    }
    if (this.waitingFor === 'body' && this.progressed) {
      this.progressed = false
      this.deadline = now + this.bodyTimeout
      return
    }
    if (now < this.deadline) return
    switch (this.waitingFor) {
      case 'connect':
        this.fail(new UpstreamClientError('UND_ERR_CONNECT_TIMEOUT', 'connect timeout'))
        break
      case 'headers':
        this.fail(new UpstreamClientError('UND_ERR_HEADERS_TIMEOUT', 'headers timeout'))
        break
      case 'body':
        this.fail(new UpstreamClientError('UND_ERR_BODY_TIMEOUT', 'body timeout'))
        break
      case 'idle':
        this.close()
        break
    }
  }

  // ReplyReader's events.

  head(status: number, contentType: string | null, keepAlive: boolean, keepAliveMs: number | null): void {
    this.keepAlive = keepAlive
    this.idleMs = keepAliveMs === null ? IDLE_MS : Math.min(IDLE_MS, keepAliveMs - IDLE_MARGIN_MS)
    if (this.bodyTimeout > 0) {
      this.progressed = false
      this.arm('body', this.bodyTimeout)
    } else {
      this.disarm()
    }
    const serial = this.serial
    const handler = this.handler!
    const goOn = handler.onHeaders(status, contentType, () => {
      if (this.serial === serial && this.handler === handler) this.resume()
    })
    if (!goOn && this.handler === handler) this.pause()
  }

  body(chunk: Buffer): void {
    const handler = this.handler
    if (handler === null) return
    this.progressed = true
    if (!handler.onData(chunk) && this.handler === handler) this.pause()
  }

  private pause(): void {
    if (this.paused) return
    this.paused = true
    this.socket.pause()
  }

  private resume(): void {
    if (!this.paused) return
    this.paused = false
    this.socket.resume()
  }

  private onSocketData(data: Buffer): void {
    if (this.state !== State.Busy) {
      // A replica must not speak unasked.
      this.close()
      return
    }
    try {
      this.reader.feed(data)
    } catch (err) {
      this.fail(err as Error)
      return
    }
    if (this.reader.done && this.handler !== null) this.finish()
  }

  private onSocketClose(): void {
    if (this.state === State.Busy && this.handler !== null) {
      try {
        this.reader.close()
      } catch (err) {
        this.fail(err as Error)
        return
      }
      this.finish()
      return
    }
    this.state = State.Closed
    this.disarm()
    this.pool.forget(this)
  }

  /** The reply has ended: the connection goes back to the pool or is closed, then the handler hears. */
  private finish(): void {
    const handler = this.handler!
    this.handler = null
    if (this.paused) this.resume()
    if (this.keepAlive && !this.reader.trailingGarbage && this.idleMs > 0 && !this.socket.destroyed && this.pool.open) {
      this.state = State.Idle
      this.arm('idle', this.idleMs)
      this.pool.release(this)
    } else {
      this.close()
    }
    handler.onComplete()
  }

  /** Ends the request in flight, if any, with `err`; the connection is not reused. */
  fail(err: Error): void {
    const handler = this.handler
    this.handler = null
    this.close()
    handler?.onError(err)
  }

  close(): void {
    if (this.state === State.Closed) return
    this.state = State.Closed
    this.disarm()
    this.pool.forget(this)
    this.socket.destroy()
  }
}

/** Connections to one replica (origin), reused while they stay healthy. */
export class Http1Pool {
  private readonly url: URL
  private readonly hostHeader: string
  private readonly idle: Connection[] = []
  private readonly all = new Set<Connection>()
  private closing = false
  private drained: (() => void) | null = null

  constructor(
    readonly origin: string,
    private readonly connectTimeout: number,
  ) {
    this.url = new URL(origin)
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new TypeError(`not an http(s) origin: ${origin}`)
    this.hostHeader = this.url.host
  }

  get open(): boolean {
    return !this.closing
  }

  /** Connections open now (idle or busy). */
  get connections(): number {
    return this.all.size
  }

  /** Sends one request; the handler hears onConnect at once, then the reply or an error. */
  dispatch(req: ReplicaRequest, handler: ReplyHandler): void {
    let head: string
    try {
      head = this.requestHead(req)
    } catch (err) {
      handler.onConnect(() => {})
      handler.onError(err as Error)
      return
    }
    if (this.closing) {
      handler.onConnect(() => {})
      handler.onError(new UpstreamClientError('UND_ERR_CLOSED', 'the replica pool is closed'))
      return
    }
    let conn = this.idle.pop()
    while (conn !== undefined && conn.socket.destroyed) conn = this.idle.pop()
    if (conn === undefined) {
      conn = new Connection(this, this.url, this.connectTimeout)
      this.all.add(conn)
    }
    conn.send(req, handler, head)
  }

  private requestHead(req: ReplicaRequest): string {
    let head = `POST ${req.path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`
    for (const name in req.headers) {
      const value = req.headers[name]
      if (OWN_HEADERS.has(name)) continue
      if (!HEADER_NAME.test(name) || UNSAFE_HEADER_VALUE.test(value)) {
        throw new UpstreamClientError('UND_ERR_INVALID_ARG', `invalid request header ${JSON.stringify(name)}`)
      }
      head += `${name}: ${value}\r\n`
    }
    return `${head}content-length: ${Buffer.byteLength(req.body)}\r\n\r\n`
  }

  release(conn: Connection): void {
    this.idle.push(conn)
  }

  forget(conn: Connection): void {
    this.all.delete(conn)
    const i = this.idle.indexOf(conn)
    if (i >= 0) this.idle.splice(i, 1)
    if (this.closing && this.all.size === 0) this.drained?.()
  }

  /** No new requests; idle connections close now, busy ones when their reply ends. */
  close(): Promise<void> {
    this.closing = true
    for (const conn of [...this.idle]) conn.close()
    if (this.all.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const before = this.drained
      this.drained = () => {
        before?.()
        resolve()
      }
    })
  }

  /** Cuts every connection; requests in flight fail with UND_ERR_DESTROYED. */
  destroy(): void {
    this.closing = true
    for (const conn of [...this.all]) conn.fail(new UpstreamClientError('UND_ERR_DESTROYED', 'the replica pool was destroyed'))
  }
}
