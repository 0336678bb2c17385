import { randomUUID } from 'node:crypto'

// A client's id is echoed only when it is short and plain: anything else could inject
// headers or log lines downstream.
const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/

/** The client's `x-request-id` if it is sane, else a fresh one. */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && SANE_ID.test(header) ? header : randomUUID()
}
