// Paces a rendered reply like a GPU replica would: wait for a batch slot (FIFO), first token
// after ttftMs, then one token every itlMs; flush each chunk as it is made. Also plays the
// injected faults (hang, drop) and notices a client leaving, which frees the slot at once
// and counts as `aborted`: the gateway must abort upstream when its own client goes away.
import type { ServerResponse } from 'node:http'
import type { Reply } from './reply.js'
import type { SimState } from './state.js'

export type Fault = 'none' | 'hang' | 'drop'

/** What the engine needs from the server around it. */
export interface Pacing {
  state: SimState
  /** Headers every reply carries (x-sim-replica). */
  baseHeaders: Readonly<Record<string, string>>
  jsonType: string
  sseType: string
  /**
   * vLLM answers a stream's headers at once (Starlette starts the response before the engine
   * runs, even while the request waits for a slot); Ollama only with its first chunk.
   */
  earlyStreamHeaders: boolean
  /** Ways to end in-flight replies when the simulator closes. */
  live: Set<() => void>
}

/** Serves `reply` on `res` with the timing, batching and fault the caller chose. */
export function serveReply(p: Pacing, res: ServerResponse, reply: Reply, fault: Fault): void {
  const s = p.state
  let finished = false
  let holding = false
  let headWritten = false
  let tick = 0
  let timer: NodeJS.Timeout | undefined
  let cancelQueue = (): void => {}
  const dropAt = fault === 'drop' ? Math.min(s.settings.dropAfter, reply.ticks) : Number.POSITIVE_INFINITY
  const kill = (): void => {
    res.destroy()
  }

  const cleanup = (): void => {
    if (timer) clearTimeout(timer)
    cancelQueue()
    p.live.delete(kill)
    if (holding) {
      holding = false
      s.release()
    }
  }
  const succeed = (): void => {
    finished = true
    s.countSuccess(reply.finishReason)
    cleanup()
  }
  // The replica itself breaks the connection: not the client's doing, so not `aborted`.
  const drop = (pending: string): void => {
    finished = true
    s.dropped++
    cleanup()
    if (pending) res.write(pending, () => res.destroy())
    else res.destroy()
  }
  // Sends what was generated before the break, then breaks.
  const dropAfter = (events: string[]): void => {
    for (let i = 0; i < events.length - 1; i++) res.write(events[i])
    drop(events.at(-1) ?? '')
  }

  res.on('close', () => {
    if (finished) return
    finished = true
    s.aborted++
    cleanup()
  })
  p.live.add(kill)

  if (fault === 'hang') {
    s.hung++
    return
  }

  const sendSseHeaders = (): void => {
    res.writeHead(200, { ...p.baseHeaders, 'content-type': p.sseType, 'cache-control': 'no-cache' })
  }

  const streamStep = (): void => {
    timer = undefined
    if (finished) return
    if (!res.headersSent) sendSseHeaders()
    const burst = s.settings.itlMs <= 0
    // Each event is its own write, so its own HTTP chunk, as vLLM flushes every token; a
    // burst (no inter-token delay) leaves in one corked socket write.
    const events: string[] = []
    if (!headWritten) {
      headWritten = true
      events.push(reply.head())
    }
    if (burst) res.cork()
    try {
      for (;;) {
        if (tick >= dropAt) return dropAfter(events)
        if (tick >= reply.ticks) {
          succeed()
          for (const e of events) res.write(e)
          res.end(reply.tail())
          return
        }
        events.push(reply.piece(tick))
        s.generationTokens++
        tick++
        if (!burst && tick < reply.ticks && tick < dropAt) {
          // Flush now: the client must see this token before the next one exists.
          for (const e of events) res.write(e)
          timer = setTimeout(streamStep, s.settings.itlMs)
          return
        }
      }
    } finally {
      if (burst) res.uncork()
    }
  }

  const jsonStep = (): void => {
    timer = undefined
    if (finished) return
    if (fault === 'drop') {
      s.generationTokens += dropAt
      return drop('')
    }
    s.generationTokens += reply.ticks
    const body = reply.json()
    succeed()
    res.writeHead(200, { ...p.baseHeaders, 'content-type': p.jsonType, 'content-length': String(Buffer.byteLength(body)) })
    res.end(body)
  }

  const start = (): void => {
    holding = true
    cancelQueue = () => {}
    s.promptTokens += reply.promptTokens
    const { ttftMs, itlMs } = s.settings
    // Non-streaming replies are sent when the last token (or the drop point) is reached.
    const last = Math.max(0, Math.min(reply.ticks, dropAt) - 1)
    const delay = reply.stream ? ttftMs : ttftMs + last * itlMs
    const step = reply.stream ? streamStep : jsonStep
    if (delay > 0) timer = setTimeout(step, delay)
    else step()
  }

  if (reply.stream && p.earlyStreamHeaders) sendSseHeaders()
  cancelQueue = s.acquire(start)
}
