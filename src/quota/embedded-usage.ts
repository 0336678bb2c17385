import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../log/index.js'
import { writeFileAtomic } from '../store/index.js'
import type { UsageFilter, UsageRow } from './types.js'
import { dayInRange, rowMatches, sortUsage } from './usage.js'

interface UsageFile {
  version: 1
  rows: UsageRow[]
}

/**
 * Usage per (UTC day, subject, model) for the embedded store: counted in memory, written to
 * `{dataDir}/usage.json` (atomically) at most every `intervalMs` while it changed, and on close.
 */
export class EmbeddedUsage {
  private readonly rows = new Map<string, UsageRow>()
  private readonly path: string
  private readonly timer: NodeJS.Timeout
  private dirty = false
  private writing: Promise<void> | null = null

  constructor(dataDir: string, private readonly log: Logger, intervalMs = 2000) {
    this.path = join(dataDir, 'usage.json')
    this.load()
    this.timer = setInterval(() => void this.flush(), intervalMs)
    this.timer.unref()
  }

  add(day: string, subject: string, model: string, prompt: number, completion: number): void {
    // NUL cannot occur in a day and is vanishingly rare in names; the row keeps the real values.
    const key = `${day}\u0000${subject}\u0000${model}`
    let row = this.rows.get(key)
    if (row === undefined) {
      row = { subject, model, day, requests: 0, promptTokens: 0, completionTokens: 0 }
      this.rows.set(key, row)
    }
    row.requests += 1
    row.promptTokens += prompt
    row.completionTokens += completion
    this.dirty = true
  }

  query(filter: UsageFilter): UsageRow[] {
    const out: UsageRow[] = []
    for (const row of this.rows.values()) {
      if (dayInRange(row.day, filter) && rowMatches(row.subject, row.model, filter)) out.push({ ...row })
    }
    return sortUsage(out)
  }

  /** Writes the file if anything changed since the last write; a failure is logged and retried later. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing
    if (!this.dirty) return
    this.dirty = false
    const data: UsageFile = { version: 1, rows: [...this.rows.values()] }
    this.writing = writeFileAtomic(this.path, `${JSON.stringify(data)}\n`)
      .catch((err: NodeJS.ErrnoException) => {
        this.dirty = true
        this.log.error('usage file write failed; will retry', { path: this.path, code: err.code ?? err.message })
      })
      .finally(() => {
        this.writing = null
      })
    await this.writing
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  private load(): void {
    let text: string
    try {
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    // The file is only ever replaced atomically, so a parse failure means someone edited it:
    // refuse to start rather than overwrite the usage history with an empty one.
    const data = JSON.parse(text) as Partial<UsageFile>
    if (data.version !== 1 || !Array.isArray(data.rows)) throw new Error(`${this.path}: not a Gatehouse usage file`)
    for (const r of data.rows) this.rows.set(`${r.day}\u0000${r.subject}\u0000${r.model}`, { ...r })
  }
}
