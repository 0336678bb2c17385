import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface OtlpAttribute {
  key: string
  value: { stringValue?: string; intValue?: string | number }
}
export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  attributes: OtlpAttribute[]
}
export interface OtlpRequest {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[]
}

/** A minimal OTLP/HTTP receiver: keeps every JSON body POSTed to /v1/traces. */
export async function startReceiver(): Promise<{ url: string; requests: OtlpRequest[]; paths: string[]; close: () => Promise<void> }> {
  const requests: OtlpRequest[] = []
  const paths: string[] = []
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`)
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      requests.push(JSON.parse(body.toString('utf8')) as OtlpRequest)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    paths,
    close: () =>
      new Promise((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  }
}

export const attr = (attrs: OtlpAttribute[], key: string): string | number | undefined => {
  const v = attrs.find((a) => a.key === key)?.value
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue))
}

/** Every span the receiver got. */
export const spansOf = (requests: OtlpRequest[]): OtlpSpan[] =>
  requests.flatMap((r) => r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)))
