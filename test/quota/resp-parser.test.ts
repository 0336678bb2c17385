import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RespError, RespParser, RespProtocolError, type RespValue } from '../../src/store/resp-parser.js'

// The quota connection's reply parser: a reply may arrive cut anywhere (one byte at a time
// over a slow link); what comes out must be the same replies, in order.

const WIRE =
  '+OK\r\n' +
  ':42\r\n' +
  ':-7\r\n' +
  '$12\r\nhello\r\nworld\r\n' +
  '$0\r\n\r\n' +
  '$-1\r\n' +
  '*-1\r\n' +
  '-NOSCRIPT No matching script. Please use EVAL.\r\n' +
  `$${Buffer.byteLength('ünïcødé ✓')}\r\nünïcødé ✓\r\n` +
  '*6\r\n:0\r\n:1732406400123\r\n:1\r\n:96\r\n:96\r\n:1\r\n' +
  '*3\r\n*2\r\n:1\r\n$1\r\nx\r\n*0\r\n-ERR inner\r\n'

function expected(): RespValue[] {
  return [
    'OK',
    42,
    -7,
    'hello\r\nworld',
    '',
    null,
    null,
    new RespError('NOSCRIPT No matching script. Please use EVAL.'),
    'ünïcødé ✓',
    [0, 1732406400123, 1, 96, 96, 1],
    [[1, 'x'], [], new RespError('ERR inner')],
  ]
}

function comparable(v: RespValue): unknown {
  if (v instanceof RespError) return { error: v.message }
  if (Array.isArray(v)) return v.map(comparable)
  return v
}

function parseInPieces(bytes: Buffer, cuts: number[]): RespValue[] {
  const out: RespValue[] = []
  const parser = new RespParser((v) => out.push(v))
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    parser.feed(bytes.subarray(from, cut))
    from = cut
  }
  return out
}

test('every reply type, whole', () => {
  assert.deepEqual(parseInPieces(Buffer.from(WIRE), []).map(comparable), expected().map(comparable))
})

test('the same bytes cut at every single position give the same replies', () => {
  const bytes = Buffer.from(WIRE)
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(parseInPieces(bytes, [cut]).map(comparable), expected().map(comparable), `cut at ${cut}`)
  }
})

test('one byte at a time', () => {
  const bytes = Buffer.from(WIRE)
  const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)
  assert.deepEqual(parseInPieces(bytes, cuts).map(comparable), expected().map(comparable))
})

test('bytes that are not RESP are a protocol error, not a reply', () => {
  const parser = new RespParser(() => assert.fail('no reply expected'))
  assert.throws(() => parser.feed(Buffer.from('HTTP/1.1 400 Bad Request\r\n')), RespProtocolError)
  const again = new RespParser(() => assert.fail('no reply expected'))
  assert.throws(() => again.feed(Buffer.from(':12a\r\n')), RespProtocolError)
})
