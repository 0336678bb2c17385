import { EventEmitter } from 'node:events'
import { createLogger, type Logger } from '../../src/log/index.js'
import { buildRequestAuditEvent, type AuditEvent } from '../../src/audit/index.js'

/** The SPEC section 5 fields every event carries (admin ones add action and target). */
export const SPEC_FIELDS = [
  'ts', 'type', 'requestId', 'subject', 'authMethod', 'keyId', 'roles', 'route', 'model', 'upstream',
  'replica', 'status', 'promptTokens', 'completionTokens', 'usageSource', 'durationMs', 'ttftMs',
  'clientIp', 'userAgent', 'reason',
] as const

export function sampleEvent(i: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ...buildRequestAuditEvent(
      {
        requestId: `req-${i}`,
        route: '/v1/chat/completions',
        status: 200,
        durationMs: 12.5 + i,
        principal: { subject: `user-${i}`, authMethod: 'api_key', keyId: 'k1', roles: ['analyst'] },
        model: 'mistral-7b-instruct',
        upstream: 'vllm-mistral',
        replica: 'http://10.0.0.11:8000',
        promptTokens: 10 + i,
        completionTokens: 20 + i,
        usageSource: 'upstream',
        ttftMs: 3.25,
        clientIp: '10.1.2.3',
        userAgent: 'OpenAI/JS 6.0',
      },
      { includePrompts: false },
    ),
    ...extra,
  }
}

/** A logger that keeps its JSON lines (what would go to stderr). */
export function captureLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = []
  return { log: createLogger('debug', (l) => lines.push(l)), lines }
}

/** A stream that records each write call, and fails the first `failures` of them (asynchronously, like a pipe). */
export class RecordingStream extends EventEmitter {
  readonly chunks: string[] = []
  constructor(public failures = 0) {
    super()
  }
  write(chunk: string, cb: (err?: Error | null) => void): boolean {
    if (this.failures > 0) {
      this.failures--
      setImmediate(() => cb(Object.assign(new Error('simulated failure'), { code: 'EIO' })))
      return false
    }
    this.chunks.push(chunk)
    setImmediate(() => cb())
    return true
  }
  lines(): string[] {
    return this.chunks.join('').split('\n').filter((l) => l !== '')
  }
}
