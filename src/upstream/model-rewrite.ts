/**
 * Rewrites the replica's model id back to the public name inside response text, without
 * parsing and re-serialising the JSON: a targeted replace of the `"model":"<id>"` member.
 * Null when both names are equal, so the hot path can skip the work entirely.
 */
export type ModelRewriter = ((text: string) => string) | null

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export function createModelRewriter(upstreamModel: string, publicModel: string): ModelRewriter {
  if (upstreamModel === publicModel) return null
  const pattern = new RegExp(`"model"(\\s*):(\\s*)${escapeRegExp(JSON.stringify(upstreamModel))}`, 'g')
  const replacement = `"model"$1:$2${JSON.stringify(publicModel).replace(/\$/g, '$$$$')}`
  return (text) => text.replace(pattern, replacement)
}
