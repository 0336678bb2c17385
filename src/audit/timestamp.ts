// The `ts` of an audit line, written for every request: formatting a Date costs about half a
// microsecond (V8 prints it field by field), and at a few thousand requests a second most
// share their second with the one before. So the text up to the milliseconds is kept per
// second and only the milliseconds are appended.

let cachedSecond = Number.NaN
let cachedPrefix = ''

/** `new Date(ms).toISOString()`, for an integer `ms` (Date.now()). */
export function isoTimestamp(ms: number): string {
  const milli = ((ms % 1000) + 1000) % 1000
  const second = ms - milli
  if (second !== cachedSecond) {
    // Everything but "mmmZ": the form is fixed from there on, whatever the year's width.
    cachedPrefix = new Date(second).toISOString().slice(0, -4)
    cachedSecond = second
  }
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}
