// Small HTTP and SSE helpers for the simulator tests (plain fetch: no gateway involved).
// Bodies are typed with the caller's expectation (often the openai package's own types); a
// body of another shape fails the assertion that reads it.

export interface HttpResult<T> {
  status: number
  headers: Headers
  body: T
}

/** The error body both imitated servers use on their OpenAI routes. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number | string | null }
}

/** `GET /sim/stats`. */
export interface Stats {
  id: string
  kind: string
  requests: number
  byPath: Record<string, number>
  running: number
  waiting: number
  completed: number
  aborted: number
  errors: number
  dropped: number
  hung: number
  promptTokens: number
  generationTokens: number
}

/** One entry of `GET /sim/requests`. */
export interface Recorded {
  method: string
  path: string
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

async function parse<T>(res: Response): Promise<HttpResult<T>> {
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as T }
}

export async function postJson<T>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return parse<T>(res)
}

export async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  return parse<T>(await fetch(url, { headers }))
}

export function stats(base: string): Promise<Stats> {
  return getJson<Stats>(`${base}/sim/stats`).then((r) => r.body)
}

/** One SSE event: its `event:` name (if any) and raw `data:` text. */
export interface SseEvent {
  event?: string
  data: string
}

/** Splits an SSE body into events, checking the `\n\n` framing on the way. */
export function parseSse(text: string): SseEvent[] {
  if (text.length > 0 && !text.endsWith('\n\n')) throw new Error(`SSE body does not end with a blank line: ${JSON.stringify(text.slice(-40))}`)
  const out: SseEvent[] = []
  for (const block of text.split('\n\n')) {
    if (block === '') continue
    const ev: SseEvent = { data: '' }
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) ev.event = line.slice(7)
      else if (line.startsWith('data: ')) ev.data = line.slice(6)
      else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`)
    }
    out.push(ev)
  }
  return out
}

/** The `data:` payloads of a chat/completions stream, JSON-parsed, and whether `[DONE]` ended it. */
export function chunksOf<T>(events: SseEvent[]): { chunks: T[]; done: boolean } {
  const done = events.length > 0 && events[events.length - 1].data === '[DONE]'
  const body = done ? events.slice(0, -1) : events
  return { chunks: body.map((e) => JSON.parse(e.data) as T), done }
}

export async function streamPost(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; events: SseEvent[] }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, events: res.ok ? parseSse(text) : [] }
}

/** Polls `check` until it returns a truthy value; throws naming `what` after `ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T>, ms = 10000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms
  for (;;) {
    const last = await check()
    if (last) return last as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Reads the value of the first series of a metric from Prometheus text. */
export function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}
