/**
 * Counts requests begun and not yet recorded (settled, audited, measured), so a shutdown can
 * wait for the last bookkeeping before it closes the quota store and the audit trail. Without
 * it, the requests cut at the end of the grace period would be recorded only after the store
 * had closed, and their settlements lost.
 */
export class OpenRequests {
  private open = 0
  private waiters: (() => void)[] = []

  get count(): number {
    return this.open
  }

  begin(): void {
    this.open++
  }

  end(): void {
    this.open--
    if (this.open === 0 && this.waiters.length > 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const wake of waiters) wake()
    }
  }

  /** Resolves once no request is open, or after `timeoutMs` (a request stuck for good never holds a shutdown). */
  idle(timeoutMs: number): Promise<void> {
    if (this.open === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      timer.unref()
      this.waiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
}
