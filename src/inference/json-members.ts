/**
 * Where each top-level member's value lies in a JSON object's text, so the gateway can
 * change a few members by splicing the client's bytes instead of re-serialising the whole
 * body: faster for large bodies (images, long prompts), and exact for everything it does not
 * touch (a 64-bit `seed` keeps its digits). Call it only on text JSON.parse accepted.
 */
export interface ValueSpan {
  start: number
  end: number
}

const enum Ch {
  Quote = 34,
  Backslash = 92,
  OpenBrace = 123,
  CloseBrace = 125,
  OpenBracket = 91,
  CloseBracket = 93,
  Comma = 44,
  Colon = 58,
}

function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === 32 || c === 10 || c === 13 || c === 9) i++
    else return i
  }
}

/** Index just past the string that starts at `i` (an opening quote). */
function skipString(text: string, i: number): number {
  i++
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === Ch.Quote) return i + 1
    i += c === Ch.Backslash ? 2 : 1
  }
}

/** Index just past the value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c === Ch.Quote) return skipString(text, i)
  if (c === Ch.OpenBrace || c === Ch.OpenBracket) {
    let depth = 0
    for (;;) {
      const d = text.charCodeAt(i)
      if (d === Ch.Quote) {
        i = skipString(text, i)
        continue
      }
      if (d === Ch.OpenBrace || d === Ch.OpenBracket) depth++
      else if (d === Ch.CloseBrace || d === Ch.CloseBracket) {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
  }
  // number, true, false, null
  for (;;) {
    const d = text.charCodeAt(i)
    if (d === Ch.Comma || d === Ch.CloseBrace || d === 32 || d === 10 || d === 13 || d === 9 || Number.isNaN(d)) return i
    i++
  }
}

/** The value spans of the top-level members named in `wanted` (the last one wins, as in JSON.parse). */
export function memberSpans(text: string, wanted: ReadonlySet<string>): Map<string, ValueSpan> {
  const spans = new Map<string, ValueSpan>()
  let i = skipWs(text, 0) + 1 // past '{'
  for (;;) {
    i = skipWs(text, i)
    if (text.charCodeAt(i) !== Ch.Quote) return spans // '}' of an empty object
    const keyEnd = skipString(text, i)
    const key = text.slice(i + 1, keyEnd - 1)
    i = skipWs(text, keyEnd)
    i = skipWs(text, i + 1) // past ':'
    const end = skipValue(text, i)
    if (wanted.has(key)) spans.set(key, { start: i, end })
    i = skipWs(text, end)
    if (text.charCodeAt(i) !== Ch.Comma) return spans
    i++
  }
}

/** One change to a body: replace a span, or (span null) append a member. */
export interface Edit {
  key: string
  span: ValueSpan | null
  value: string
}

/** Applies edits to the object text; appended members go before its closing brace. */
export function applyEdits(text: string, edits: readonly Edit[]): string {
  const replaced = edits.filter((e) => e.span !== null).sort((a, b) => b.span!.start - a.span!.start)
  let out = text
  for (const e of replaced) out = out.slice(0, e.span!.start) + e.value + out.slice(e.span!.end)
  const appended = edits.filter((e) => e.span === null)
  if (appended.length === 0) return out
  const close = out.lastIndexOf('}')
  const members = appended.map((e) => `${JSON.stringify(e.key)}:${e.value}`).join(',')
  return `${out.slice(0, close)},${members}${out.slice(close)}`
}
