// The replica simulator: a development tool (demo, tests, benchmark), never on the gateway's
// request path. It imitates vLLM's and Ollama's OpenAI-compatible servers closely enough
// that a gateway cannot tell them apart from the real ones.
export { runSimCli } from './cli.js'
export { startSimulator, type SimServer } from './server.js'
export { DEFAULT_SETTINGS, SIM_HELP, type SimKind, type SimOptions, type SimSettings } from './options.js'
export type { RecordedRequest } from './state.js'
export { chatPromptTokens, textInputTokens, responsesPromptTokens, IMAGE_TOKENS } from './prompt.js'
