export {
  createMetrics,
  LATENCY_BUCKETS,
  TTFT_BUCKETS,
  UNKNOWN_MODEL,
  NO_ROLE,
  OTHER_ROUTE,
  type Metrics,
  type MetricsOptions,
} from './metrics.js'
export { startMetricsServer, type MetricsServer } from './server.js'
