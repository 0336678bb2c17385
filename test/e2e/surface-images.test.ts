import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from './helpers.js'
import { gatewayClient, reachedReplica, received, requestId, settledUsage, withId } from './surface-helpers.js'

// Images in chat messages (issue 11, item 3): the content array with text and image_url
// parts (data URLs included) reaches the replica unchanged; the body's size, data URL and
// all, counts against maxBodyBytes; the reservation counts text parts plus a fixed cost per
// image (IMAGE_TOKEN_COST, 768 tokens) whatever the image's size, and is settled to the
// replica's own count afterwards.

const MAX_BODY = 65536
const METER_TPM = 100000
const PER_IMAGE = 768

const config = (vllm: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
maxBodyBytes: ${MAX_BODY}
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["*"] }
  meter: { models: ["*"], tokensPerMinute: ${METER_TPM} }
  tiny: { models: ["*"], tokensPerMinute: 700 }
models:
  vision: { upstream: vllm, upstreamModel: Qwen/Qwen2.5-VL-7B-Instruct }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

/** A real 1×1 PNG. */
const PIXEL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
/** A data URL of about `bytes` bytes (valid base64; the simulator does not decode it). */
const dataUrl = (bytes: number) => `data:image/jpeg;base64,${'/9j/'.repeat(Math.ceil(bytes / 4))}`

type Part = OpenAI.Chat.ChatCompletionContentPart
const text = (t: string): Part => ({ type: 'text', text: t })
const image = (url: string, detail?: 'low' | 'high' | 'auto'): Part => ({ type: 'image_url', image_url: detail ? { url, detail } : { url } })

describe('images in chat messages', () => {
  let vllm: SimHandle
  let gw: GatewayHandle
  let dev: OpenAI

  before(async () => {
    vllm = await startSim('vllm', ['--model', 'Qwen/Qwen2.5-VL-7B-Instruct', '--tokens', '8'])
    ;({ gw } = await gatewayWithKey(config(vllm.url), ['dev']))
    dev = await gatewayClient(gw, ['dev'])
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
  })

  /** Tokens one request reserves: a fresh subject's limit minus what remains after it. */
  async function reserved(send: (client: OpenAI) => Promise<{ response: Response }>): Promise<number> {
    const { response } = await send(await gatewayClient(gw, ['meter'], `meter-${randomUUID()}`))
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), String(METER_TPM))
    return METER_TPM - Number(response.headers.get('x-ratelimit-remaining-tokens'))
  }
  const reservedBy = (content: Part[], maxTokens = 16) =>
    reserved((c) => c.chat.completions.create({ model: 'vision', messages: [{ role: 'user', content }], max_tokens: maxTokens }).withResponse())
  const reservedByResponses = (content: OpenAI.Responses.ResponseInputContent[]) =>
    reserved((c) => c.responses.create({ model: 'vision', input: [{ role: 'user', content }], max_output_tokens: 16 }).withResponse())

  it('a text + image_url message (data URL and https URL) reaches the replica unchanged', async () => {
    const big = dataUrl(40000)
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'Describe images.' },
      { role: 'user', content: [text('What is in these pictures?'), image(PIXEL, 'low'), image(big), image('https://example.com/cat.png', 'high')] },
    ]
    const id = requestId('image')
    const res = await dev.chat.completions.create({ model: 'vision', messages, max_tokens: 8 }, withId(id))
    assert.equal(res.model, 'vision')
    assert.equal(res.usage?.completion_tokens, 8)
    const seen = await received(vllm.url, id)
    assert.deepEqual(seen.body, { model: 'Qwen/Qwen2.5-VL-7B-Instruct', messages, max_tokens: 8 })
    assert.equal(((seen.body?.messages as { content: { image_url?: { url: string } }[] }[])[1].content[2].image_url?.url), big)
  })

  it('the data URL counts against maxBodyBytes: over it is a 413 that reaches no replica', async () => {
    const id = requestId('image-too-large')
    const err = await dev.chat.completions
      .create({ model: 'vision', messages: [{ role: 'user', content: [text('hi'), image(dataUrl(MAX_BODY))] }] }, withId(id))
      .then(() => null, (e: unknown) => e)
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${String(err)}`)
    assert.equal(err.status, 413)
    assert.equal(err.code, 'request_too_large')
    assert.equal(await reachedReplica(vllm.url, id), false)

    // Just under the limit, the same shape is served.
    const fits = dataUrl(MAX_BODY - 1024)
    const ok = await dev.chat.completions.create({ model: 'vision', messages: [{ role: 'user', content: [text('hi'), image(fits)] }] })
    assert.equal(ok.choices[0].finish_reason, 'stop')
  })

  it('the reservation counts text parts and a fixed cost per image, not the data URL size', async () => {
    const words = 'Please describe this image in detail. '.repeat(4)
    const textOnly = await reservedBy([text(words)])
    const longerText = await reservedBy([text(words + 'x'.repeat(400))])
    assert.equal(longerText - textOnly, 100, 'text parts are counted at 4 characters per token')
    const onePixel = await reservedBy([text(words), image(PIXEL)])
    const oneBig = await reservedBy([text(words), image(dataUrl(40000), 'high')])
    const two = await reservedBy([text(words), image(PIXEL), image('https://example.com/a.png')])
    assert.equal(onePixel - textOnly, PER_IMAGE)
    assert.equal(oneBig, onePixel, 'the size of the data URL changed the reservation')
    assert.equal(two - onePixel, PER_IMAGE)
    assert.equal((await reservedBy([text(words), image(PIXEL)], 100)) - onePixel, 84, 'max_tokens is reserved on top')

    // The Responses API's input_image parts cost the same.
    const inputText = { type: 'input_text' as const, text: words }
    const responsesText = await reservedByResponses([inputText])
    const responsesImage = await reservedByResponses([inputText, { type: 'input_image', detail: 'auto', image_url: dataUrl(20000) }])
    assert.equal(responsesImage - responsesText, PER_IMAGE)
  })

  it('an image that cannot fit a small tokensPerMinute is refused with 429 before reaching the replica', async () => {
    const client = await gatewayClient(gw, ['tiny'], `tiny-${randomUUID()}`)
    const words = 'What is this?'
    const plain = await client.chat.completions.create({ model: 'vision', messages: [{ role: 'user', content: [text(words)] }], max_tokens: 16 })
    assert.equal(plain.choices[0].finish_reason, 'stop')

    const id = requestId('image-429')
    const content = [text(words), image(PIXEL)]
    const err = await client.chat.completions
      .create({ model: 'vision', messages: [{ role: 'user', content }], max_tokens: 16 }, withId(id))
      .then(() => null, (e: unknown) => e)
    assert.ok(err instanceof OpenAI.RateLimitError, `expected a 429, got ${String(err)}`)
    assert.equal(err.code, 'rate_limit_exceeded')
    assert.match(err.message, /tokensPerMinute/)
    const reserves = Number(/reserves (\d+)/.exec(err.message)?.[1])
    assert.equal(reserves, await reservedBy(content), 'the 429 names the same reservation the headers show')
    assert.ok(reserves > 700 && reserves >= PER_IMAGE)
    assert.equal(await reachedReplica(vllm.url, id), false)
  })

  it('after the reply, the image request is charged the replica usage, not the estimate', async () => {
    const subject = `settle-${randomUUID()}`
    const client = await gatewayClient(gw, ['meter'], subject)
    const res = await client.chat.completions.create({
      model: 'vision',
      messages: [{ role: 'user', content: [text('Caption this.'), image(PIXEL), image(PIXEL)] }],
      max_tokens: 8,
    })
    const want = { requests: 1, promptTokens: res.usage!.prompt_tokens, completionTokens: res.usage!.completion_tokens }
    assert.ok(want.promptTokens < 2 * PER_IMAGE, 'the replica counts images its own way')
    assert.deepEqual(await settledUsage(gw, subject, want), want)
  })
})
