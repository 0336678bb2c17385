// What a reply says, decided once per request before any timing: the pieces of text (one
// per simulated token) or the tool calls. Renderers for each API and server flavour turn a
// plan into JSON or SSE; usage always equals the number of pieces, so it is consistent.
import { isObject, lastUserText, type Json, type JsonObject } from './prompt.js'

export type FinishReason = 'stop' | 'length' | 'tool_calls'

export interface ToolCallPlan {
  id: string
  name: string
  arguments: string
  /** `arguments` cut into the pieces a stream sends, one simulated token each. */
  pieces: string[]
}

export type Plan =
  | { type: 'text'; pieces: string[]; text: string; finishReason: 'stop' | 'length'; completionTokens: number }
  | { type: 'tools'; calls: ToolCallPlan[]; finishReason: 'tool_calls'; completionTokens: number }

/** Words of the simulated reply, one token each (a trailing space keeps them readable). */
const WORDS = [
  'Hello ', 'from ', 'the ', 'simulated ', 'replica. ', 'Tokens ', 'arrive ', 'one ', 'by ', 'one, ',
  'steady ', 'and ', 'deterministic, ', 'so ', 'tests ', 'can ', 'count ', 'them. ', 'No ', 'GPU ',
  'was ', 'harmed. ',
]

/**
 * The number of tokens to generate: the configured count, lowered by the request's own cap
 * (max_tokens and friends). `cut` says the cap, not the model, ended the reply.
 */
export function tokenBudget(configured: number, cap: number | undefined): { n: number; cut: boolean } {
  if (cap !== undefined && cap < configured) return { n: cap, cut: true }
  return { n: configured, cut: false }
}

function textPieces(n: number): string[] {
  const pieces = new Array<string>(n)
  for (let i = 0; i < n; i++) pieces[i] = WORDS[i % WORDS.length]
  return pieces
}

/** Cuts `s` into exactly `n` non-empty contiguous pieces (s.length >= n). */
function split(s: string, n: number): string[] {
  const out: string[] = []
  let at = 0
  for (let i = 0; i < n; i++) {
    const end = Math.round(((i + 1) * s.length) / n)
    out.push(s.slice(at, end))
    at = end
  }
  return out
}

/** A small value that satisfies a simple JSON schema (type, enum, properties). */
function sample(schema: Json | undefined, depth = 0): Json {
  if (!isObject(schema) || depth > 3) return 'sim'
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  if ('const' in schema) return schema.const
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'object': {
      const out: JsonObject = {}
      const props = isObject(schema.properties) ? schema.properties : {}
      for (const [k, v] of Object.entries(props).slice(0, 6)) out[k] = sample(v, depth + 1)
      return out
    }
    case 'array':
      return []
    case 'number':
    case 'integer':
      return 1
    case 'boolean':
      return true
    case 'null':
      return null
    default:
      return isObject(schema.properties) ? sample({ ...schema, type: 'object' }, depth) : 'sim'
  }
}

/**
 * JSON-mode content: a valid JSON object in exactly `n` pieces. Short objects are padded
 * with whitespace after the opening brace, so the token count and validity both hold.
 */
function jsonPieces(schema: Json | undefined, n: number): string[] {
  const value = schema === undefined ? { answer: 'sim' } : sample(schema)
  let text = JSON.stringify(isObject(value) ? value : { answer: value })
  if (text.length < n) text = '{' + ' '.repeat(n - text.length) + text.slice(1)
  return split(text, n)
}

export interface PlanInput {
  n: number
  cut: boolean
  /** Set when the request asks for JSON output; the schema when it gave one. */
  json?: { schema?: Json }
  /** Functions to call, already chosen by `chooseTools`. */
  tools: JsonObject[]
  toolCallId: () => string
}

export function makePlan(input: PlanInput): Plan {
  const { n, cut } = input
  if (input.tools.length > 0) {
    const perCall = Math.max(1, Math.floor(n / input.tools.length))
    const calls = input.tools.map((fn): ToolCallPlan => {
      const args = JSON.stringify(isObject(fn.parameters) ? sample({ ...fn.parameters, type: 'object' }) : {})
      const count = Math.min(perCall, Math.max(1, Math.ceil(args.length / 4)), args.length)
      return { id: input.toolCallId(), name: String(fn.name), arguments: args, pieces: split(args, count) }
    })
    const completionTokens = calls.reduce((sum, c) => sum + c.pieces.length, 0)
    return { type: 'tools', calls, finishReason: 'tool_calls', completionTokens }
  }
  const pieces = input.json ? jsonPieces(input.json.schema, n) : textPieces(n)
  return { type: 'text', pieces, text: pieces.join(''), finishReason: cut ? 'length' : 'stop', completionTokens: n }
}

/**
 * Which functions a chat request makes the model call: the named one (`tool_choice` names a
 * function), or on `"required"` or a last user message saying "call a tool" the first tool;
 * "call two tools" calls the first two at once unless `parallel_tool_calls` is false.
 * Accepts both the Chat shape (`{type, function: {name}}`) and the Responses shape (`{type, name}`).
 */
export function chooseTools(body: JsonObject, messages: Json | undefined): JsonObject[] {
  if (!Array.isArray(body.tools)) return []
  const fns: JsonObject[] = []
  for (const t of body.tools) {
    if (!isObject(t) || (t.type !== undefined && t.type !== 'function')) continue
    const fn = isObject(t.function) ? t.function : t
    if (typeof fn.name === 'string') fns.push(fn)
  }
  if (fns.length === 0) return []
  const choice = body.tool_choice
  if (choice === 'none') return []
  if (isObject(choice)) {
    const named = isObject(choice.function) ? choice.function.name : choice.name
    const fn = fns.find((f) => f.name === named)
    return fn ? [fn] : []
  }
  const text = lastUserText(messages)
  const two = text.includes('call two tools')
  if (choice !== 'required' && !two && !text.includes('call a tool')) return []
  if (two && fns.length >= 2 && body.parallel_tool_calls !== false) return fns.slice(0, 2)
  return fns.slice(0, 1)
}
