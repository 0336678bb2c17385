import { createServer, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'

// `npm run bench:cpu`'s "socket-floor": like undici-floor, but the replica is reached over
// plain keep-alive sockets with a minimal HTTP/1.1 response reader of its own (status line,
// Content-Length or chunked bodies), no HTTP client library. The gap to undici-floor is what
// a lean upstream client could save the gateway at most. Not a proxy for production: no
// timeouts, no errors beyond cutting the client, trusts the replica's framing.
//   node dist/bench/socket-floor.js PORT UPSTREAM_URL

const [port, upstream] = [Number(process.argv[2]), new URL(process.argv[3])]
const CRLF2 = Buffer.from('\r\n\r\n')
const idle: Conn[] = []

/** One keep-alive connection to the replica and the reply it is reading now. */
class Conn {
  readonly socket: Socket
  private res: ServerResponse | null = null
  private buf: Buffer = Buffer.alloc(0)
  private headersDone = false
  private remaining = 0
  private chunked = false

  constructor() {
    this.socket = connect(Number(upstream.port), upstream.hostname)
    this.socket.setNoDelay(true)
    this.socket.on('data', (d: Buffer) => this.onData(d))
    this.socket.on('error', () => this.res?.destroy())
    this.socket.on('close', () => {
      const i = idle.indexOf(this)
      if (i >= 0) idle.splice(i, 1)
      this.res?.destroy()
    })
  }

  send(path: string, body: Buffer, res: ServerResponse): void {
    this.res = res
    this.headersDone = false
    this.socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${upstream.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
    )
    this.socket.write(body)
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
    if (!this.headersDone) {
      const end = this.buf.indexOf(CRLF2)
      if (end < 0) return
      const head = this.buf.toString('latin1', 0, end)
      this.buf = this.buf.subarray(end + 4)
      this.headersDone = true
      const status = Number(head.slice(9, 12))
      const lower = head.toLowerCase()
      const type = /\r\ncontent-type: *([^\r\n]*)/.exec(lower)?.[1] ?? 'application/json'
      const length = /\r\ncontent-length: *(\d+)/.exec(lower)
      this.chunked = length === null
      this.remaining = length === null ? 0 : Number(length[1])
      this.res!.writeHead(status, length === null ? { 'content-type': type } : { 'content-type': type, 'content-length': length[1] })
    }
    if (this.chunked) this.readChunks()
    else this.readLength()
  }

  private readLength(): void {
    const take = this.buf.subarray(0, this.remaining)
    this.remaining -= take.length
    this.buf = this.buf.subarray(take.length)
    if (take.length > 0) this.res!.write(take)
    if (this.remaining === 0) this.done()
  }

  private readChunks(): void {
    for (;;) {
      const line = this.buf.indexOf('\r\n')
      if (line < 0) return
      const size = parseInt(this.buf.toString('latin1', 0, line), 16)
      if (this.buf.length < line + 2 + size + 2) return
      if (size === 0) {
        this.buf = this.buf.subarray(line + 4)
        this.done()
        return
      }
      this.res!.write(this.buf.subarray(line + 2, line + 2 + size))
      this.buf = this.buf.subarray(line + 2 + size + 2)
    }
  }

  private done(): void {
    const res = this.res!
    this.res = null
    res.end()
    idle.push(this)
  }
}

createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    try {
      ;(JSON.parse(body.toString('utf8')) as { model?: unknown }).model
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"invalid JSON","type":"invalid_request_error"}}')
      return
    }
    ;(idle.pop() ?? new Conn()).send(req.url ?? '/', body, res)
  })
}).listen(port, '127.0.0.1')
