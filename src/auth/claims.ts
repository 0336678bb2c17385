/**
 * Reads a claim by name or dot path (`realm_access.roles`). A claim whose own name contains
 * dots (`https://example.com/roles`) is found too: the literal name is tried first.
 */
export function claimAt(payload: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path]
  let node: unknown = payload
  for (const part of path.split('.')) {
    if (!node || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

/** Roles from a claim value: an array of strings or one space-separated string; else none. */
export function parseRoles(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((r) => r.length > 0)
  if (Array.isArray(value)) return value.filter((r): r is string => typeof r === 'string' && r.length > 0)
  return []
}
