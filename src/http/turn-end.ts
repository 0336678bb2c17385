import type { ServerResponse } from 'node:http'

/**
 * Runs tasks once the event loop's current turn has handled every socket that was ready
 * (setImmediate's check phase), all in one go.
 *
 * Why: each write to a client whose process sleeps wakes it up, and waking a process on
 * another core is the costliest thing a reply does (an interrupt to that core; in a VM, an
 * exit to the host). Replies written one by one while the turn handles one replica's answer
 * after another wake the client once each; written together at the turn's end, the first
 * wakes it and the rest find it awake. On `npm run bench:cpu` that is a fifth to a quarter
 * of the gateway's CPU per request. A reply waits at most for the rest of its turn; a
 * request's own bookkeeping (settlement, audit, metrics) is queued behind its reply
 * (inference/pipeline.ts), so the client reads while the gateway does that.
 */
let due: (() => void)[] = []
let scheduled = false

function runDue(): void {
  scheduled = false
  const tasks = due
  due = []
  let i = 0
  try {
    for (; i < tasks.length; i++) tasks[i]()
  } finally {
    // A task that threw (a bug: tasks catch what they expect) does not take the replies
    // queued after it down with it: they run on the next turn.
    for (let j = i + 1; j < tasks.length; j++) atTurnEnd(tasks[j])
  }
}

export function atTurnEnd(task: () => void): void {
  due.push(task)
  if (!scheduled) {
    scheduled = true
    setImmediate(runDue)
  }
}

/** A whole reply (status, headers, body), written with the turn's other replies. */
export function replyAtTurnEnd(out: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
  atTurnEnd(() => {
    if (out.destroyed) return
    try {
      out.writeHead(status, headers)
      out.end(body)
    } catch {
      // A header node refuses (nothing the gateway builds): the client sees the connection cut.
      out.destroy()
    }
  })
}
