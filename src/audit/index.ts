export type { AuditEvent, AuditSink } from './types.js'
export { createAuditSink, type AuditSinkOptions, type ChainedAuditSink } from './sink.js'
export type { AuditStream } from './targets.js'
export {
  buildRequestAuditEvent,
  buildAdminAuditEvent,
  redactPrompt,
  sanitizeEvent,
  scrubText,
  promptFromBody,
  type RequestAuditInput,
  type AdminAuditInput,
  type AuditPrincipal,
  type AuditPolicy,
} from './events.js'
export { verifyAuditFile, type VerifyResult, type VerifyOptions } from './verify.js'
export { GENESIS_HASH, chainHash, sealRecord } from './hash-chain.js'
export { canonicalJson } from './canonical-json.js'
