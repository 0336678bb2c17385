import type { Logger } from '../log/index.js'

/**
 * Remembers when each key was last used and hands the batch to `flush` every `intervalMs`:
 * recording a use is a map write, so the request path never waits for the store.
 */
export class LastUsedTracker {
  /** key id → time of last use in ms (turned into ISO text only when written or read). */
  private pending = new Map<string, number>()
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

  touch(id: string, at: number = Date.now()): void {
    this.pending.set(id, at)
  }

  /** A use noted but not yet written, so reads can show it. */
  peek(id: string): string | undefined {
    const at = this.pending.get(id)
    return at === undefined ? undefined : new Date(at).toISOString()
  }

  /** Writes what is pending; a failed batch is merged back to be retried next time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return
      const taken = this.pending
      this.pending = new Map()
      const batch = new Map<string, string>()
      for (const [id, at] of taken) batch.set(id, new Date(at).toISOString())
      try {
        await this.write(batch)
      } catch (err) {
        for (const [id, at] of taken) if (!this.pending.has(id)) this.pending.set(id, at)
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
