export { createQuotaLimiter, type QuotaLimiterDeps } from './create.js'
export { RedisQuotaLimiter, type RedisQuotaOptions } from './redis-limiter.js'
export { EmbeddedQuotaLimiter, type EmbeddedQuotaOptions } from './embedded-limiter.js'
export { hasQuota } from './headers.js'
export { formatReset } from './windows.js'
export type {
  QuotaLimiter,
  ReserveInput,
  Reservation,
  UsageReport,
  UsageFilter,
  UsageRow,
} from './types.js'
