import type { AuditConfig } from '../config/index.js'
import type { Logger } from '../log/index.js'
import { sanitizeEvent } from './events.js'
import { GENESIS_HASH, sealRecord } from './hash-chain.js'
import { fileTarget, streamTarget, type AuditStream, type AuditTarget } from './targets.js'
import type { AuditEvent, AuditSink } from './types.js'

export interface AuditSinkOptions {
  log: Logger
  /** Events that met a write error, each counted once (gatehouse_audit_write_errors_total). */
  onWriteError?: (events: number) => void
  /** Events lost for good: pushed out of a full queue, or still unwritten at close. */
  onDrop?: (events: number) => void
  /** The `stdout` sink's stream (default process.stdout). */
  stdout?: AuditStream
  /** Events held in memory at most; past it the oldest are dropped (default 10000). */
  maxQueue?: number
  /** Events per write call at most (default 256). */
  batchSize?: number
  /** How long a partial batch waits for company (default 20 ms: events held longer outlive a young-generation GC). */
  flushIntervalMs?: number
}

/** An AuditSink that also exposes its chain head, for anchoring it somewhere else. */
export interface ChainedAuditSink extends AuditSink {
  /** Hash of the last record written (64 zeros before the first). */
  lastHash(): string
  /** Events waiting in memory. */
  queued(): number
}

const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 5000
const FAILURE_LOG_EVERY_MS = 10_000
const DROP_LOG_EVERY_MS = 1000

/**
 * The audit trail writer. `write` only queues; batches are sealed into the hash chain and
 * written one write call each, off the request path. A failed batch stays at the head of
 * the queue and is retried with backoff, so order and chain survive an outage.
 */
export function createAuditSink(
  config: Pick<AuditConfig, 'sink' | 'path' | 'includePrompts'>,
  opts: AuditSinkOptions,
): ChainedAuditSink {
  const { log } = opts
  const maxQueue = Math.max(opts.maxQueue ?? 10_000, 1)
  const batchSize = Math.max(Math.min(opts.batchSize ?? 256, maxQueue), 1)
  const interval = opts.flushIntervalMs ?? 20
  const policy = { includePrompts: config.includePrompts }
  const target: AuditTarget =
    config.sink === 'stdout' ? streamTarget(opts.stdout ?? process.stdout) : fileTarget(config.path, log)

  const queue: AuditEvent[] = []
  // The first `failedPrefix` queued events already met a write error (and were counted).
  let failedPrefix = 0
  // The first `inflight` queued events are being written right now; overflow never drops them.
  let inflight = 0
  let head = GENESIS_HASH
  let opened = false
  let healthy = true
  let closed = false
  let timer: NodeJS.Timeout | null = null
  let immediate: NodeJS.Immediate | null = null
  let retry: NodeJS.Timeout | null = null
  let backoff = RETRY_MIN_MS
  let lastFailureLog = 0
  let unreportedDrops = 0
  let lastDropLog = 0
  let chain: Promise<unknown> = Promise.resolve()

  // Target operations run one at a time, in call order.
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn)
    chain = run.catch(() => undefined)
    return run
  }

  const kick = (): Promise<boolean> => serial(pump)

  async function pump(): Promise<boolean> {
    if (timer) clearTimeout(timer)
    timer = null
    try {
      if (!opened) {
        const tail = await target.open()
        if (tail) head = tail
        opened = true
      }
      while (queue.length > 0) {
        const batch = sealBatch()
        if (batch.count === 0) continue
        inflight = batch.count
        try {
          await target.write(batch.text)
        } finally {
          inflight = 0
        }
        queue.splice(0, batch.count)
        failedPrefix = Math.max(0, failedPrefix - batch.count)
        head = batch.last
      }
      if (!healthy) recovered()
      return true
    } catch (err) {
      await failed(err)
      return false
    }
  }

  /** Seals the head of the queue into chained lines, chained from the last written hash. */
  function sealBatch(): { text: string; count: number; last: string } {
    let text = ''
    let prev = head
    let i = 0
    while (i < Math.min(queue.length, batchSize)) {
      let sealed: { line: string; hash: string }
      try {
        sealed = sealRecord(sanitizeEvent(queue[i], policy), prev)
      } catch (err) {
        // An event that cannot be serialized (a cycle, a BigInt) would block the queue forever.
        queue.splice(i, 1)
        const counted = i < failedPrefix ? 1 : 0
        if (counted) failedPrefix--
        lose(1, counted)
        log.error('audit event could not be serialized; dropped', { code: errorCode(err) })
        continue
      }
      text += `${sealed.line}\n`
      prev = sealed.hash
      i++
    }
    return { text, count: i, last: prev }
  }

  async function failed(err: unknown): Promise<void> {
    const n = Math.min(queue.length, batchSize)
    if (n > failedPrefix) {
      opts.onWriteError?.(n - failedPrefix)
      failedPrefix = n
    }
    const now = Date.now()
    if (healthy || now - lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      lastFailureLog = now
      // The error code and counts only: event content may hold what must not reach logs.
      log.error('audit write failed; events kept in memory and retried', {
        sink: config.sink,
        target: target.description,
        code: errorCode(err),
        pending: queue.length,
      })
    }
    healthy = false
    // Reopen on the next attempt: the file may have been removed or its disk remounted.
    if (opened) await target.close().catch(() => undefined)
    opened = false
    reportDrops(true)
    if (!closed && !retry) {
      retry = setTimeout(() => {
        retry = null
        void kick()
      }, backoff)
      backoff = Math.min(backoff * 2, RETRY_MAX_MS)
    }
  }

  function recovered(): void {
    healthy = true
    backoff = RETRY_MIN_MS
    log.warn('audit writes recovered', { sink: config.sink, target: target.description, pending: queue.length })
    reportDrops(true)
  }

  function lose(n: number, alreadyCounted: number): void {
    if (n > alreadyCounted) opts.onWriteError?.(n - alreadyCounted)
    opts.onDrop?.(n)
    unreportedDrops += n
  }

  function reportDrops(force: boolean): void {
    const now = Date.now()
    if (unreportedDrops === 0 || (!force && now - lastDropLog < DROP_LOG_EVERY_MS)) return
    lastDropLog = now
    log.error('audit events lost', { sink: config.sink, events: unreportedDrops, maxQueue, closed })
    unreportedDrops = 0
  }

  /** Makes room for one event; false when everything queued is being written (the new one is dropped). */
  function dropOldest(): boolean {
    const i = inflight
    if (i >= queue.length) {
      lose(1, 0)
      reportDrops(false)
      return false
    }
    queue.splice(i, 1)
    const counted = i < failedPrefix ? 1 : 0
    if (counted) failedPrefix--
    lose(1, counted)
    reportDrops(false)
    return true
  }

  function schedule(): void {
    if (retry) return
    if (queue.length >= batchSize) {
      immediate ??= setImmediate(() => {
        immediate = null
        void kick()
      })
    } else {
      timer ??= setTimeout(() => {
        timer = null
        void kick()
      }, interval)
    }
  }

  function clearTimers(): void {
    if (timer) clearTimeout(timer)
    if (immediate) clearImmediate(immediate)
    if (retry) clearTimeout(retry)
    timer = immediate = retry = null
  }

  async function flush(): Promise<void> {
    clearTimers()
    let ok = true
    do ok = await kick()
    while (ok && queue.length > 0)
    if (ok) {
      await serial(() => target.sync()).catch((err: unknown) =>
        log.warn('audit fsync failed', { target: target.description, code: errorCode(err) }),
      )
    }
  }

  // Open now: a path that cannot be written shows up at start (isHealthy false), not at the first request.
  void kick()

  return {
    write(event) {
      if (closed) {
        lose(1, 0)
        reportDrops(false)
        return
      }
      if (queue.length >= maxQueue && !dropOldest()) return
      queue.push(event)
      schedule()
    },
    isHealthy: () => healthy,
    lastHash: () => head,
    queued: () => queue.length,
    flush,
    async reopen() {
      if (closed) return
      await serial(async () => {
        if (opened) await target.close()
        opened = false
      }).catch((err: unknown) => log.warn('audit close before reopen failed', { code: errorCode(err) }))
      if (retry) clearTimeout(retry)
      retry = null
      await kick()
    },
    async close() {
      if (closed) return
      closed = true
      await flush()
      clearTimers()
      if (queue.length > 0) {
        lose(queue.length, failedPrefix)
        queue.length = 0
        failedPrefix = 0
      }
      reportDrops(true)
      await serial(async () => {
        if (opened) await target.close()
        opened = false
      })
    },
  }
}

function errorCode(err: unknown): string {
  if (err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code
  }
  return err instanceof Error ? err.name : 'unknown'
}
