import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildAdminAuditEvent, buildRequestAuditEvent, promptFromBody, scrubText } from '../../src/audit/index.js'
import { SPEC_FIELDS } from './fixtures.js'

test('a refused request event has every SPEC field, null where it does not apply', () => {
  const event = buildRequestAuditEvent(
    { requestId: 'r1', route: '/v1/chat/completions', status: 401, durationMs: 0.4, reason: 'unknown_key', prompt: 'hi' },
    { includePrompts: false },
  )
  for (const field of SPEC_FIELDS) assert.ok(field in event, `missing ${field}`)
  assert.equal(event.type, 'request')
  assert.equal(event.authMethod, 'none')
  for (const field of ['subject', 'keyId', 'roles', 'model', 'upstream', 'replica', 'promptTokens', 'ttftMs', 'clientIp'] as const) {
    assert.equal(event[field], null, field)
  }
  assert.equal(event.reason, 'unknown_key')
  assert.equal('prompt' in event, false)
})

test('prompt and completion are kept only with includePrompts', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] }
  const event = buildRequestAuditEvent(
    { requestId: 'r', route: '/v1/chat/completions', status: 200, durationMs: 5, prompt: promptFromBody(body), completion: 'hello' },
    { includePrompts: true },
  )
  assert.deepEqual(event.prompt, body.messages)
  assert.equal(event.completion, 'hello')
})

test('an admin event carries action and target and the principal', () => {
  const event = buildAdminAuditEvent({
    requestId: 'a1',
    route: '/admin/keys',
    status: 201,
    durationMs: 3,
    action: 'key.create',
    target: 'key_123',
    principal: { subject: 'root', authMethod: 'admin_token', keyId: null },
  })
  for (const field of SPEC_FIELDS) assert.ok(field in event, `missing ${field}`)
  assert.deepEqual([event.type, event.action, event.target, event.subject, event.model], ['admin', 'key.create', 'key_123', 'root', null])
})

test('credential-shaped text is redacted', () => {
  assert.equal(scrubText('key ghk_AbC123_xyz rejected'), 'key [redacted] rejected')
  assert.equal(scrubText('Authorization: Bearer abc.def'), 'Authorization: [redacted]')
  assert.equal(scrubText('plain reason'), 'plain reason')
})
