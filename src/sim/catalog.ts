// The models a simulated replica serves, listed and matched the way each server does it.
import { createHash } from 'node:crypto'
import type { SimKind } from './options.js'

/** Ollama version reported by `GET /api/version` (one with /v1/responses, added in 0.13.3). */
export const OLLAMA_VERSION = '0.13.5'
/** vLLM version reported by `GET /version`. */
export const VLLM_VERSION = '0.11.0'

/** Ollama names carry a tag; a bare name means `:latest`. */
function ollamaName(name: string): string {
  return name.includes(':') ? name : `${name}:latest`
}

export class Catalog {
  private readonly started = Math.floor(Date.now() / 1000)
  private readonly names: Set<string>

  constructor(
    readonly kind: SimKind,
    readonly models: readonly string[],
  ) {
    this.names = new Set(kind === 'ollama' ? models.map(ollamaName) : models)
  }

  /** The metrics label and vLLM's `root`: the first served name. */
  get primary(): string {
    return this.models[0]
  }

  /** Whether a request's `model` is served here (Ollama also accepts the name without `:latest`). */
  serves(model: string): boolean {
    return this.names.has(this.kind === 'ollama' ? ollamaName(model) : model)
  }

  /** `GET /v1/models`. */
  list(): string {
    if (this.kind === 'ollama') {
      const data = [...this.names].map((id) => this.ollamaModel(id))
      return JSON.stringify({ object: 'list', data }) + '\n'
    }
    const data = this.models.map((id) => ({
      id,
      object: 'model',
      created: this.started,
      owned_by: 'vllm',
      root: this.primary,
      parent: null,
      max_model_len: 8192,
      permission: [
        {
          id: `modelperm-${createHash('sha256').update(id).digest('hex').slice(0, 32)}`,
          object: 'model_permission',
          created: this.started,
          allow_create_engine: false,
          allow_sampling: true,
          allow_logprobs: true,
          allow_search_indices: false,
          allow_view: true,
          allow_fine_tuning: false,
          organization: '*',
          group: null,
          is_blocking: false,
        },
      ],
    }))
    return JSON.stringify({ object: 'list', data })
  }

  /** `GET /v1/models/{model}` (Ollama only); undefined when not served. */
  one(model: string): string | undefined {
    if (!this.serves(model)) return undefined
    return JSON.stringify({ ...this.ollamaModel(model) }) + '\n'
  }

  private ollamaModel(id: string): Record<string, unknown> {
    // Ollama's owned_by is the name's namespace: "library" unless the name has one.
    const parts = id.split('/')
    return { id, object: 'model', created: this.started, owned_by: parts.length > 1 ? parts[parts.length - 2] : 'library' }
  }

  /** `GET /api/tags`. */
  tags(): string {
    const modified = new Date(this.started * 1000).toISOString()
    const models = [...this.names].map((name) => {
      const digest = createHash('sha256').update(name).digest('hex')
      return {
        name,
        model: name,
        modified_at: modified,
        size: 2_000_000_000 + (parseInt(digest.slice(0, 6), 16) % 1_000_000_000),
        digest,
        details: {
          parent_model: '',
          format: 'gguf',
          family: 'llama',
          families: ['llama'],
          parameter_size: '3.2B',
          quantization_level: 'Q4_K_M',
        },
      }
    })
    return JSON.stringify({ models })
  }
}
