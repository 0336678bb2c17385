import { test } from 'node:test'
import assert from 'node:assert/strict'
import { relayJson } from '../../src/inference/respond.js'
import { Exchange } from '../../src/upstream/exchange.js'
import type { UpstreamCall } from '../../src/upstream/proxy.js'
import type { ModelRoute } from '../../src/inference/models.js'
import { newRequestState } from '../../src/http/context.js'
import { UpstreamError } from '../../src/errors/index.js'

/** A replica's whole reply, delivered through an Exchange as Http1Pool would deliver it. */
function replyCall(status: number, body: string): { call: UpstreamCall; outcomes: (string | null)[] } {
  const exchange = new Exchange()
  exchange.onHeaders(status, 'application/json', () => {})
  exchange.onData(Buffer.from(body))
  exchange.onComplete()
  const outcomes: (string | null)[] = []
  return { call: { exchange, replica: {} as UpstreamCall['replica'], done: (e) => outcomes.push(e) }, outcomes }
}

const asSent = { rewrite: null } as unknown as ModelRoute
const renamed = { rewrite: (text: string) => text.replace('"model":"upstream-name"', '"model":"public"') } as unknown as ModelRoute

test('a reply is relayed as sent and its usage noted, from the usage member or the whole parse', async () => {
  const body = '{"id":"c1","model":"upstream-name","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":7,"completion_tokens":3}}'
  for (const wantCompletion of [false, true]) {
    const state = newRequestState('r1', '/v1/chat/completions')
    const { call, outcomes } = replyCall(200, body)
    const reply = await relayJson(call, state, asSent, wantCompletion)
    assert.equal(reply.status, 200)
    assert.equal(reply.body.toString(), body)
    assert.deepEqual([state.promptTokens, state.completionTokens, state.usageSource], [7, 3, 'upstream'])
    assert.deepEqual(outcomes, [null])
    assert.equal(state.completion === undefined, !wantCompletion, 'the completion is kept for the audit only when asked')
  }
  const state = newRequestState('r2', '/v1/chat/completions')
  const reply = await relayJson(replyCall(200, body).call, state, renamed, false)
  assert.equal(reply.body, body.replace('upstream-name', 'public'))
})

test('a 2xx reply that is not JSON becomes a 502; one without usage leaves the estimate in place', async () => {
  const state = newRequestState('r3', '/v1/chat/completions')
  await assert.rejects(relayJson(replyCall(200, '<html>oops</html>').call, state, asSent, false), (err: unknown) => {
    assert.ok(err instanceof UpstreamError)
    assert.equal(err.reason, 'invalid_reply')
    return true
  })
  const noUsage = newRequestState('r4', '/v1/chat/completions')
  const reply = await relayJson(replyCall(200, '{"id":"c2","choices":[]}').call, noUsage, asSent, false)
  assert.equal(reply.body.toString(), '{"id":"c2","choices":[]}')
  assert.equal(noUsage.usageSource, null)
})
