import type { Logger } from '../log/index.js'

/**
 * Remembers when each key was last used and hands the batch to `flush` every `intervalMs`:
 * recording a use is a map write, so the request path never waits for the store.
 */
export class LastUsedTracker {
  private pending = new Map<string, string>()
  private readonly timer: NodeJS.Timeout
  private flushing: Promise<void> = Promise.resolve()

  constructor(
    private readonly write: (batch: ReadonlyMap<string, string>) => Promise<void>,
    private readonly log: Logger,
    intervalMs = 5_000,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs)
    this.timer.unref()
  }

  touch(id: string, at: Date = new Date()): void {
    this.pending.set(id, at.toISOString())
  }

  /** A use noted but not yet written, so reads can show it. */
  peek(id: string): string | undefined {
    return this.pending.get(id)
  }

  /** Writes what is pending; a failed batch is merged back to be retried next time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return
      const batch = this.pending
      this.pending = new Map()
      try {
        await this.write(batch)
      } catch (err) {
        for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at)
        this.log.warn('could not record key last use; will retry', { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
      }
    })
    return this.flushing
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }
}
