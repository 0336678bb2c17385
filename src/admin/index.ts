export { createAdminRoutes, keyView, type AdminDeps } from './routes.js'
export type { AdminAuditEvent, AdminCall } from './context.js'
export { parseIsoDate } from './validation.js'
