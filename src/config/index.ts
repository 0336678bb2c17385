export { loadConfig, parseConfig, substituteEnv, ConfigError } from './load.js'
export { embeddedDefaults } from './defaults.js'
export type {
  Config,
  Limits,
  RoleConfig,
  ModelConfig,
  UpstreamConfig,
  OidcIssuerConfig,
  AuditConfig,
} from './schema.js'
