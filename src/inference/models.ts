import type { Config, UpstreamConfig } from '../config/index.js'
import type { Entitlements } from '../auth/types.js'
import { ModelNotFound } from '../errors/index.js'
import { createModelRewriter, type ModelRewriter } from '../upstream/model-rewrite.js'

/** Where a public model name goes, resolved once at start. */
export interface ModelRoute {
  readonly publicName: string
  readonly upstream: string
  readonly upstreamModel: string
  readonly upstreamConfig: UpstreamConfig
  /** Rewrites the replica's model id back to the public name; null when they are equal. */
  readonly rewrite: ModelRewriter
}

export type ModelCatalog = ReadonlyMap<string, ModelRoute>

export function buildModelCatalog(config: Config): ModelCatalog {
  const catalog = new Map<string, ModelRoute>()
  for (const [publicName, m] of Object.entries(config.models)) {
    const upstreamModel = m.upstreamModel ?? publicName
    catalog.set(publicName, {
      publicName,
      upstream: m.upstream,
      upstreamModel,
      upstreamConfig: config.upstreams[m.upstream],
      rewrite: createModelRewriter(upstreamModel, publicName),
    })
  }
  return catalog
}

/**
 * The route for `model` if the caller may use it. Unknown and forbidden models get the same
 * 404, so a caller cannot probe which models exist.
 */
export function resolveModel(catalog: ModelCatalog, model: string, entitlements: Entitlements): ModelRoute {
  const route = catalog.get(model)
  if (route === undefined || !entitlements.allowsModel(model)) {
    throw new ModelNotFound(`The model \`${model.slice(0, 256)}\` does not exist or you do not have access to it.`, {
      param: 'model',
      reason: route === undefined ? 'unknown_model' : 'model_not_allowed',
    })
  }
  return route
}

/** OpenAI's model object for a public name. */
export function modelObject(route: ModelRoute, created: number): Record<string, unknown> {
  return { id: route.publicName, object: 'model', created, owned_by: 'gatehouse' }
}
