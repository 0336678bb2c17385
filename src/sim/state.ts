import type { IncomingHttpHeaders } from 'node:http'
import { DEFAULT_SETTINGS, type SimKind, type SimSettings } from './options.js'

/** One request as the replica saw it, for tests that check what the gateway forwarded. */
export interface RecordedRequest {
  at: string
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: unknown
}

const LOG_SIZE = 50
// byPath is keyed by the request path, which a client controls: cap the distinct keys.
const MAX_PATHS = 200

/** A queued request's start callback. */
type Waiter = () => void

/**
 * The simulator's mutable state: live settings, counters, the batch (running + FIFO queue)
 * and the recent-request log. One per simulator; nothing module-level.
 */
export class SimState {
  readonly settings: SimSettings
  requests = 0
  readonly byPath = new Map<string, number>()
  running = 0
  completed = 0
  aborted = 0
  errors = 0
  dropped = 0
  hung = 0
  promptTokens = 0
  generationTokens = 0
  readonly successByReason = new Map<string, number>()
  private readonly queue: Waiter[] = []
  private readonly log: RecordedRequest[] = []
  private logNext = 0
  private draining = false

  constructor(
    readonly id: string,
    readonly kind: SimKind,
    readonly models: readonly string[],
    initial: Partial<SimSettings>,
  ) {
    this.settings = { ...DEFAULT_SETTINGS, ...initial }
  }

  get waiting(): number {
    return this.queue.length
  }

  /** Counts a request by path; `requests` counts API calls only, not health probes and scrapes. */
  countPath(path: string, probe: boolean): void {
    if (!probe) this.requests++
    const key = this.byPath.has(path) || this.byPath.size < MAX_PATHS ? path : '(other)'
    this.byPath.set(key, (this.byPath.get(key) ?? 0) + 1)
  }

  /**
   * Takes a batch slot now, or queues `start` (FIFO) until one frees up. Returns a cancel
   * function that removes a still-queued request (its client left before it ran).
   */
  acquire(start: () => void): () => void {
    if (this.running < this.settings.maxBatch && this.queue.length === 0) {
      this.running++
      start()
      return () => {}
    }
    const waiter: Waiter = () => {
      this.running++
      start()
    }
    this.queue.push(waiter)
    return () => {
      const i = this.queue.indexOf(waiter)
      if (i >= 0) this.queue.splice(i, 1)
    }
  }

  /** Frees a slot and starts queued requests while slots are free. */
  release(): void {
    this.running--
    this.drain()
  }

  /**
   * Starts queued requests while slots are free (also after maxBatch was raised). A request
   * may finish inside its start (zero latency) and release again: the guard keeps that a
   * loop here instead of a recursion as deep as the queue.
   */
  drain(): void {
    if (this.draining) return
    this.draining = true
    try {
      while (this.running < this.settings.maxBatch && this.queue.length > 0) this.queue.shift()!()
    } finally {
      this.draining = false
    }
  }

  record(entry: RecordedRequest): void {
    if (this.log.length < LOG_SIZE) this.log.push(entry)
    else this.log[this.logNext] = entry
    this.logNext = (this.logNext + 1) % LOG_SIZE
  }

  /** The recorded requests, oldest first. */
  recent(): RecordedRequest[] {
    if (this.log.length < LOG_SIZE) return [...this.log]
    return [...this.log.slice(this.logNext), ...this.log.slice(0, this.logNext)]
  }

  clearLog(): void {
    this.log.length = 0
    this.logNext = 0
  }

  countSuccess(finishReason: string): void {
    this.completed++
    this.successByReason.set(finishReason, (this.successByReason.get(finishReason) ?? 0) + 1)
  }

  /** The body of `GET /sim/stats`. */
  stats(): Record<string, unknown> {
    return {
      id: this.id,
      kind: this.kind,
      models: this.models,
      requests: this.requests,
      byPath: Object.fromEntries(this.byPath),
      running: this.running,
      waiting: this.waiting,
      completed: this.completed,
      aborted: this.aborted,
      errors: this.errors,
      dropped: this.dropped,
      hung: this.hung,
      promptTokens: this.promptTokens,
      generationTokens: this.generationTokens,
      settings: { ...this.settings },
    }
  }
}
