import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** How the fake replica answers an inference request; the test swaps it per case. */
export type ReplicaBehaviour = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

/**
 * A node:http stand-in for a replica, for the answers the simulator cannot produce (invalid
 * JSON, broken SSE, huge bodies). /health always answers 200; every other request goes to
 * the current behaviour. It counts requests whose connection closed before the reply ended.
 */
export interface FakeReplica {
  url: string
  behaviour: ReplicaBehaviour
  requests: number
  aborted: number
  close(): Promise<void>
}

export async function startFakeReplica(behaviour: ReplicaBehaviour = okChat()): Promise<FakeReplica> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/health' || req.url === '/metrics') {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain' }).end('')
      return
    }
    replica.requests++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.on('close', () => {
        if (!res.writableFinished) replica.aborted++
      })
      replica.behaviour(req, res, Buffer.concat(chunks))
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const replica: FakeReplica = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    behaviour,
    requests: 0,
    aborted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return replica
}

/** One chat.completion.chunk event carrying `content`. */
export function chunkEvent(content: string, model = 'replica-model'): string {
  const data = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: { content }, finish_reason: null }] }
  return `data: ${JSON.stringify(data)}\n\n`
}

/** The usage-only chunk vLLM sends last when asked for `include_usage`. */
export function usageEvent(prompt: number, completion: number): string {
  const data = {
    id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: 'replica-model', choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  }
  return `data: ${JSON.stringify(data)}\n\n`
}

/** A well-behaved replica: a chat completion (JSON, or a stream of `tokens` chunks with usage). */
export function okChat(tokens = 3): ReplicaBehaviour {
  return (_req, res, body) => {
    const json = JSON.parse(body.toString()) as { stream?: boolean; model?: string }
    if (json.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let out = ''
      for (let i = 0; i < tokens; i++) out += chunkEvent(`t${i} `)
      res.end(`${out}${usageEvent(5, tokens)}data: [DONE]\n\n`)
      return
    }
    const reply = {
      id: 'chatcmpl-fake', object: 'chat.completion', created: 1, model: json.model ?? 'replica-model',
      choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: tokens, total_tokens: 5 + tokens },
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply))
  }
}

/**
 * Answers any inference route with a small valid reply (JSON, or SSE when `stream` is true),
 * whatever else the body holds: the fuzz tests need a replica that hostile input cannot break.
 */
export function anyRoute(): ReplicaBehaviour {
  const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
  return (req, res, body) => {
    let stream = false
    try {
      stream = (JSON.parse(body.toString()) as { stream?: unknown }).stream === true
    } catch {
      // not JSON: answer as if it were a plain request
    }
    const path = req.url ?? ''
    if (stream && path === '/v1/responses') {
      const done = { type: 'response.completed', response: { id: 'resp_1', status: 'completed', usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 } } }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(`event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"ok"}\n\nevent: response.completed\ndata: ${JSON.stringify(done)}\n\n`)
      return
    }
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(`${chunkEvent('ok')}${usageEvent(3, 2)}data: [DONE]\n\n`)
      return
    }
    const reply = path === '/v1/embeddings'
      ? { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model: 'replica-model', usage }
      : { id: 'x-1', object: 'chat.completion', created: 1, model: 'replica-model', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply))
  }
}
