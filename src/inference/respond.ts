import type { ServerResponse } from 'node:http'
import type { RequestState } from '../http/context.js'
import { ReplicaRejected, UpstreamError, UpstreamTimeout, errorJson } from '../errors/index.js'
import { SseRelay } from '../upstream/sse.js'
import { atTurnEnd } from '../http/turn-end.js'
import { usageFrom, usageInReply, type TokenUsage } from '../upstream/usage.js'
import type { Exchange } from '../upstream/exchange.js'
import type { UpstreamCall } from '../upstream/proxy.js'
import type { ModelRoute } from './models.js'
import type { InferenceBody } from './request-body.js'

/** A replica reply larger than this is refused rather than buffered (non-streaming only). */
export const MAX_UPSTREAM_BODY = 32 * 1024 * 1024

/** Response headers the gateway builds itself (never the replica's immutable Headers). */
export function clientHeaders(state: RequestState, contentType: string): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': contentType, 'x-request-id': state.requestId }
  const rl = state.rateLimitHeaders
  if (rl) for (const k in rl) headers[k] = rl[k]
  return headers
}

const CLIENT_LEFT = new Error('the client went away')
const REPLY_TOO_LARGE = 'the replica sent a reply larger than the gateway accepts'

/** Reads a non-streaming reply, bounded, as the bytes the replica sent. */
export function readReply(exchange: Exchange, limit = MAX_UPSTREAM_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    exchange.read({
      data(c) {
        size += c.length
        if (size > limit) {
          const err = new UpstreamError(REPLY_TOO_LARGE, { reason: 'reply_too_large' })
          exchange.abort(err)
          reject(err)
          return
        }
        chunks.push(c)
      },
      end() {
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
      },
      error: reject,
    })
  })
}

/**
 * A replica's 4xx body is passed on when it is in OpenAI's `{error: {...}}` shape; older vLLM
 * answers `{object: "error", message}`, whose message is kept in our shape; anything else
 * (a proxy's HTML page) gets a generic message.
 */
function checkReplicaError(status: number, text: string): void {
  let parsed: { error?: unknown; message?: unknown } | null = null
  try {
    parsed = JSON.parse(text) as { error?: unknown; message?: unknown }
  } catch {
    // not JSON
  }
  if (parsed && typeof parsed === 'object' && typeof parsed.error === 'object' && parsed.error !== null) return
  const message =
    parsed && typeof parsed === 'object' && typeof parsed.message === 'string'
      ? parsed.message.slice(0, 2000)
      : `the replica refused the request (status ${status})`
  throw new ReplicaRejected(status, message, { reason: `status_${status}` })
}

/**
 * A non-streaming reply: read it, note its usage, rewrite the model name, and return what to
 * send: the replica's own bytes when nothing is rewritten (no second encoding), else the
 * rewritten text. Replica 5xx become our 502; 4xx (e.g. context too long) pass through. A
 * 2xx reply that is not JSON is refused (502) when its usage cannot be found; one that holds
 * a well-formed usage member is relayed as sent, as a plain proxy would.
 */
export async function relayJson(
  call: UpstreamCall,
  state: RequestState,
  route: ModelRoute,
  wantCompletion: boolean,
): Promise<{ status: number; body: Buffer | string; contentType: string }> {
  const status = call.exchange.status
  let raw: Buffer
  try {
    raw = await readReply(call.exchange)
  } catch (err) {
    call.done('dropped')
    if (err instanceof UpstreamError) throw err
    throw new UpstreamError('the replica failed while answering', { reason: 'dropped' })
  }
  call.done(null)
  if (status >= 500) throw new UpstreamError(`the replica failed (status ${status})`, { reason: `status_${status}` })
  const contentType = call.exchange.contentType ?? 'application/json'
  if (status >= 400) checkReplicaError(status, raw.toString('utf8'))
  if (status < 300) {
    // The usage member alone, unless the audit keeps the whole completion. A reply without
    // one is parsed whole: not JSON at all, it becomes a 502.
    const usage = wantCompletion ? undefined : usageInReply(raw)
    if (usage !== undefined) {
      noteUsage(state, usage)
    } else {
      let parsed: unknown
      try {
        parsed = JSON.parse(raw.toString('utf8'))
      } catch {
        throw new UpstreamError('the replica sent a reply that is not valid JSON', { reason: 'invalid_reply' })
      }
      const found = usageFrom(parsed)
      if (found) noteUsage(state, found)
      if (wantCompletion) state.completion = parsed
    }
  }
  return { status, body: route.rewrite ? route.rewrite(raw.toString('utf8')) : raw, contentType }
}

function noteUsage(state: RequestState, usage: TokenUsage): void {
  state.promptTokens = usage.promptTokens
  state.completionTokens = usage.completionTokens
  state.usageSource = 'upstream'
}

/**
 * A streaming reply, written to the client event by event as it arrives. The client's
 * headers wait for the first event (vLLM sends its own at once, even while the request is
 * still queued), so a replica that never starts still gets a clean 504 or 502. Resolves when
 * the stream is over: complete, cut by the replica (the client gets an error event), or left
 * by the client (the replica's request is then aborted).
 */
export function relayStream(
  call: UpstreamCall,
  out: ServerResponse,
  state: RequestState,
  route: ModelRoute,
  body: InferenceBody,
  timeouts: { firstByteMs: number; idleMs: number },
): Promise<void> {
  const upstream = call.exchange
  const mode = body.route === '/v1/responses' ? 'responses' : 'chat'
  const relay = new SseRelay(route.rewrite, !body.clientWantsStreamUsage, mode)
  const status = upstream.status
  return new Promise((resolve, reject) => {
    let started = false
    let finished = false
    // Every way out goes through here first, so the abort's own error callback finds the
    // stream finished and does nothing.
    const finish = (error: string | null) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      call.done(error)
      if (relay.usage) {
        state.promptTokens = relay.usage.promptTokens
        state.completionTokens = relay.usage.completionTokens
        state.usageSource = 'upstream'
      } else {
        // Ended early: what was streamed still counts (an aborted stream is never free).
        state.promptTokens = body.promptEstimate
        state.completionTokens = relay.contentEvents
        state.usageSource = 'estimated'
      }
      if (error) state.reason = error
    }
    const start = () => {
      started = true
      const headers = clientHeaders(state, 'text/event-stream; charset=utf-8')
      headers['cache-control'] = 'no-cache'
      out.writeHead(status, headers)
      state.status = status
    }
    /** Ends the relay on the gateway's own decision: stop the replica, tell the client. */
    const cut = (err: UpstreamError | UpstreamTimeout) => {
      finish(err.reason)
      upstream.abort(err)
      if (!started) return reject(err)
      out.end(`data: ${errorJson(err)}\n\n`)
      resolve()
    }
    // The first event must come within firstByteMs; after it, no silence longer than idleMs.
    const onTimeout = () => {
      if (finished) return
      cut(
        receivedAny
          ? new UpstreamTimeout(`the replica stalled for ${timeouts.idleMs} ms`, { reason: 'idle_timeout' })
          : new UpstreamTimeout(`the replica sent nothing within ${timeouts.firstByteMs} ms`, { reason: 'first_byte_timeout' }),
      )
    }
    let receivedAny = false
    let timer = setTimeout(onTimeout, timeouts.firstByteMs)
    const onDrain = () => upstream.resume()
    const send = (data: Buffer | string | null) => {
      if (data === null) return
      if (!started) {
        start()
        state.ttftMs = performance.now() - state.startedAt
      }
      if (!out.write(data)) {
        upstream.pause()
        out.once('drain', onDrain)
      }
    }
    // What the replica sent during one turn of the event loop (a replica that writes an event
    // per token sends dozens per read) is relayed at the turn's end, with the other replies
    // (see atTurnEnd): one scan, one timer refresh, one write to the client instead of one
    // each, and the end of the stream with its last events.
    let gathered: Buffer[] = []
    let flushQueued = false
    let upstreamEnded = false
    const relayGathered = () => {
      flushQueued = false
      if (finished) return
      if (gathered.length > 0) {
        const chunk = gathered.length === 1 ? gathered[0] : Buffer.concat(gathered)
        gathered = []
        if (receivedAny) {
          timer.refresh()
        } else {
          receivedAny = true
          clearTimeout(timer)
          timer = setTimeout(onTimeout, timeouts.idleMs)
        }
        send(relay.push(chunk))
        if (relay.overflow) {
          cut(new UpstreamError('the replica sent an event larger than the gateway accepts', { reason: 'event_too_large' }))
          return
        }
      }
      if (upstreamEnded) complete()
    }
    const queueRelay = () => {
      if (flushQueued) return
      flushQueued = true
      atTurnEnd(relayGathered)
    }
    /** The replica ended its reply: close the client's stream, as complete or as cut. */
    const complete = () => {
      send(relay.finish())
      if (!started) start()
      if (relay.complete) {
        out.end()
        finish(null)
      } else {
        // Ended without [DONE] or usage: tell the client the reply is cut, in a form it parses.
        const err = new UpstreamError('the replica ended the stream before the reply was complete', { reason: 'truncated' })
        out.end(`data: ${errorJson(err)}\n\n`)
        finish('truncated')
      }
      resolve()
    }
    upstream.read({
      data(chunk) {
        if (finished) return
        gathered.push(chunk)
        queueRelay()
      },
      end() {
        if (finished) return
        upstreamEnded = true
        queueRelay()
      },
      error() {
        // What arrived before the failure is still the client's.
        if (!out.destroyed) relayGathered()
        if (finished) return
        if (out.destroyed) {
          finish('client_gone')
          resolve()
          return
        }
        if (!started) {
          finish('dropped')
          reject(new UpstreamError('the replica failed before sending anything', { reason: 'dropped' }))
          return
        }
        relay.discard()
        const err = new UpstreamError('the replica stopped in the middle of the stream', { reason: 'dropped' })
        out.end(`data: ${errorJson(err)}\n\n`)
        finish('dropped')
        resolve()
      },
    })
    out.on('close', () => {
      if (finished) return
      finish('client_gone')
      upstream.abort(CLIENT_LEFT)
      resolve()
    })
  })
}
