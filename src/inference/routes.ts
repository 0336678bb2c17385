/** The inference endpoints the gateway forwards, and what each one's body looks like. */
export type InferenceRoute = '/v1/chat/completions' | '/v1/completions' | '/v1/embeddings' | '/v1/responses'

export interface RouteShape {
  /** The field holding the prompt, required by the API. */
  inputField: 'messages' | 'prompt' | 'input'
  /** Fields that cap the completion, in the order clients use them. */
  maxTokenFields: readonly string[]
  /** Whether the reply has completion tokens at all. */
  generates: boolean
  /** Whether `stream_options.include_usage` is how usage is obtained when streaming. */
  streamUsageOption: boolean
}

export const ROUTE_SHAPES: Readonly<Record<InferenceRoute, RouteShape>> = {
  '/v1/chat/completions': {
    inputField: 'messages',
    maxTokenFields: ['max_completion_tokens', 'max_tokens'],
    generates: true,
    streamUsageOption: true,
  },
  '/v1/completions': { inputField: 'prompt', maxTokenFields: ['max_tokens'], generates: true, streamUsageOption: true },
  '/v1/embeddings': { inputField: 'input', maxTokenFields: [], generates: false, streamUsageOption: false },
  // The Responses API streams usage in its `response.completed` event; no option needed.
  '/v1/responses': { inputField: 'input', maxTokenFields: ['max_output_tokens'], generates: true, streamUsageOption: false },
}
