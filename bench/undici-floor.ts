import { createServer } from 'node:http'
import type { Dispatcher } from 'undici'
import { Pool } from 'undici'

// `npm run bench:cpu`'s "undici-floor": the least a Node proxy built like the gateway can do
// per request. node:http in, undici dispatch() out (the gateway's own transport), the body
// read and parsed for its model, the reply streamed back chunk by chunk; no authentication,
// quotas, audit, metrics, timeouts or error handling. What the gateway spends above it is
// what its features cost; what node-min spends above it is node:http's client.
//   node dist/bench/undici-floor.js PORT UPSTREAM_URL

const [port, upstream] = [Number(process.argv[2]), process.argv[3]]
const pool = new Pool(upstream, { connections: 1024 })
const host = new URL(upstream).host

createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    if (body.length > 0) {
      try {
        ;(JSON.parse(body.toString('utf8')) as { model?: unknown }).model
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"invalid JSON","type":"invalid_request_error"}}')
        return
      }
    }
    const handler: Dispatcher.DispatchHandler = {
      onConnect() {},
      onHeaders(status, rawHeaders) {
        let contentType = 'application/json'
        for (let i = 0; i < rawHeaders.length; i += 2) {
          if (rawHeaders[i].toString('latin1').toLowerCase() === 'content-type') contentType = rawHeaders[i + 1].toString('latin1')
        }
        res.writeHead(status, { 'content-type': contentType })
        return true
      },
      onData(chunk) {
        res.write(chunk)
        return true
      },
      onComplete() {
        res.end()
      },
      onError() {
        res.destroy()
      },
    }
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: { 'content-type': 'application/json', host }, body: body.length > 0 ? body : null }, handler)
  })
}).listen(port, '127.0.0.1')
