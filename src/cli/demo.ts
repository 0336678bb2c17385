import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../log/index.js'
import { startGateway } from '../main.js'

// `npm run demo`: two simulated vLLM replicas, one simulated Ollama and the gateway, with an
// API key created at start and examples that work as printed. Ctrl-C stops everything.

const BIN = resolve(import.meta.dirname, '..', '..', '..', 'bin', 'gatehouse.js')

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.on('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => res(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url)
      await r.arrayBuffer()
      if (r.ok) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not come up`)
}

function startSim(port: number, kind: 'vllm' | 'ollama', model: string, id: string): ChildProcess {
  return spawn(process.execPath, [BIN, 'sim', '--port', String(port), '--kind', kind, '--model', model, '--id', id, '--ttft-ms', '80', '--itl-ms', '15', '--tokens', '40'], {
    stdio: 'ignore',
  })
}

export async function runDemo(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const port = Number(env.GATEHOUSE_DEMO_PORT ?? 8080)
  const dataDir = resolve(env.GATEHOUSE_DEMO_DATA ?? join('data', 'demo'))
  mkdirSync(dataDir, { recursive: true })
  const [vllmA, vllmB, ollama, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const children = [
    startSim(vllmA, 'vllm', '/models/mistral-7b-instruct', 'vllm-a'),
    startSim(vllmB, 'vllm', '/models/mistral-7b-instruct', 'vllm-b'),
    startSim(ollama, 'ollama', 'llama3.2', 'ollama'),
  ]
  const stopChildren = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'))
  try {
    await Promise.all([waitFor(`http://127.0.0.1:${vllmA}/health`), waitFor(`http://127.0.0.1:${vllmB}/health`), waitFor(`http://127.0.0.1:${ollama}/api/version`)])
    const adminToken = env.GATEHOUSE_ADMIN_TOKEN || `demo-admin-${randomBytes(12).toString('hex')}`
    const config = parseConfig({
      listen: { host: '127.0.0.1', port },
      metrics: { host: '127.0.0.1', port: metricsPort },
      store: { redis: env.REDIS_URL ?? '', dataDir },
      auth: { adminToken },
      roles: { developer: { models: ['*'], requestsPerMinute: 120, tokensPerMinute: 200000, maxConcurrent: 8, maxTokensPerRequest: 2048 } },
      models: {
        'mistral-7b-instruct': { upstream: 'vllm-mistral', upstreamModel: '/models/mistral-7b-instruct' },
        'llama3.2': { upstream: 'ollama' },
      },
      upstreams: {
        'vllm-mistral': { kind: 'vllm', targets: [`http://127.0.0.1:${vllmA}`, `http://127.0.0.1:${vllmB}`] },
        ollama: { kind: 'ollama', targets: [`http://127.0.0.1:${ollama}`] },
      },
      audit: { sink: 'file', path: join(dataDir, 'audit.jsonl') },
    }, env)
    const gateway = await startGateway(config, createLogger('warn'))
    const res = await fetch(`${gateway.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'demo', roles: ['developer'] }),
    })
    if (res.status !== 201) throw new Error(`could not create the demo key: ${res.status} ${await res.text()}`)
    const { key } = (await res.json()) as { key: string }
    const replicas = [vllmA, vllmB, ollama].map((p) => `http://127.0.0.1:${p}`)
    process.stdout.write(banner(gateway.url, key, adminToken, `http://127.0.0.1:${metricsPort}/metrics`, join(dataDir, 'audit.jsonl'), replicas))
    await new Promise<void>((done) => {
      const stop = () => {
        process.stdout.write('\nstopping the demo...\n')
        void gateway.close(2000).then(done)
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    return 0
  } finally {
    stopChildren()
  }
}

function banner(url: string, key: string, adminToken: string, metricsUrl: string, auditPath: string, replicas: string[]): string {
  return `
Gatehouse demo is running: two simulated vLLM replicas (mistral-7b-instruct), one simulated
Ollama (llama3.2), and the gateway in front of them.

  Base URL     ${url}/v1
  API key      ${key}
  Admin token  ${adminToken}
  Metrics      ${metricsUrl}
  Audit trail  ${auditPath}
  Replicas     ${replicas.join('  ')}

curl:
  curl -s ${url}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"model": "mistral-7b-instruct", "messages": [{"role": "user", "content": "Hello!"}]}'

Python (pip install openai):
  from openai import OpenAI
  client = OpenAI(base_url="${url}/v1", api_key="${key}")
  r = client.chat.completions.create(model="mistral-7b-instruct", messages=[{"role": "user", "content": "Hello!"}])
  print(r.choices[0].message.content)

Node (npm install openai), as an ES module (save as demo.mjs, run node demo.mjs):
  import OpenAI from 'openai'
  const client = new OpenAI({ baseURL: '${url}/v1', apiKey: '${key}' })
  const stream = await client.chat.completions.create({ model: 'llama3.2', stream: true, messages: [{ role: 'user', content: 'Hello!' }] })
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '')

Admin: node bin/gatehouse.js keys list --url ${url} --admin-token ${adminToken}

Press Ctrl-C to stop.
`
}
