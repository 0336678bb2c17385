import type { ReplyHandler } from './http1-pool.js'

/** What reads a replica's reply body: chunks in order, then `end` or `error`, exactly one of them. */
export interface BodyReader {
  data(chunk: Buffer): void
  end(): void
  error(err: Error): void
}

/**
 * Lets the client's departure cancel whichever replica request is current. One hook at a
 * time: the proxy sets it per attempt.
 */
export class Cancellation {
  cancelled = false
  private hook: (() => void) | null = null

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    const hook = this.hook
    this.hook = null
    hook?.()
  }

  onCancel(hook: (() => void) | null): void {
    this.hook = hook
  }
}

/**
 * One request to a replica, driven by Http1Pool.dispatch() with this object as the handler:
 * no web stream, no Readable and no AbortSignal per request. `started` resolves once the
 * status line and headers are in, or rejects with the client's error; the body then goes to
 * one `BodyReader`, chunks that came before it first.
 */
export class Exchange implements ReplyHandler {
  status = 0
  contentType: string | null = null
  readonly started: Promise<void>
  private resolveStarted!: () => void
  private rejectStarted!: (err: Error) => void
  private headersIn = false
  private abortRequest: ((err: Error) => void) | null = null
  private abortReason: Error | null = null
  private resumeBody: (() => void) | null = null
  private paused = false
  private reader: BodyReader | null = null
  /** Body chunks that came before a reader, and how the body ended if it did. */
  private early: Buffer[] = []
  private outcome: 'open' | 'ended' | Error = 'open'
  private done = false

  constructor() {
    this.started = new Promise<void>((resolve, reject) => {
      this.resolveStarted = resolve
      this.rejectStarted = reject
    })
  }

  /** Stops the request (connection closed); the reader, if any, gets `error(reason)`. */
  abort(reason: Error): void {
    if (this.done || this.abortReason !== null) return
    this.abortReason = reason
    this.abortRequest?.(reason)
  }

  /** Backpressure: stop reading from the replica's socket until `resume`. */
  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    const resume = this.resumeBody
    if (resume) resume()
  }

  /** Attaches the body's reader; what already arrived is delivered now. */
  read(reader: BodyReader): void {
    this.reader = reader
    const early = this.early
    this.early = []
    for (let i = 0; i < early.length; i++) reader.data(early[i])
    const outcome = this.outcome
    if (outcome === 'ended') reader.end()
    else if (outcome !== 'open') reader.error(outcome)
  }

  // Http1Pool's handler callbacks.

  onConnect(abort: (reason: Error) => void): void {
    if (this.abortReason !== null) abort(this.abortReason)
    else this.abortRequest = abort
  }

  onHeaders(statusCode: number, contentType: string | null, resume: () => void): boolean {
    this.status = statusCode
    this.contentType = contentType
    this.resumeBody = resume
    this.headersIn = true
    this.resolveStarted()
    return !this.paused
  }

  onData(chunk: Buffer): boolean {
    const reader = this.reader
    if (reader) reader.data(chunk)
    else this.early.push(chunk)
    return !this.paused
  }

  onComplete(): void {
    this.done = true
    if (this.reader) this.reader.end()
    else this.outcome = 'ended'
  }

  onError(err: Error): void {
    this.done = true
    if (!this.headersIn) {
      this.rejectStarted(err)
      return
    }
    if (this.reader) this.reader.error(err)
    else this.outcome = err
  }
}
