/**
 * CORS for the public REST API (and /openapi.json), from CORS_ORIGIN: `*` answers any origin with
 * `Access-Control-Allow-Origin: *`; a list answers only the origins in it (each echoed back, with
 * `Vary: Origin`). Preflights (OPTIONS with an Origin) are answered 204 before any guard: a browser
 * sends them without credentials. Requests with no Origin header (curl, servers) skip it.
 *
 * No credentials mode: the API key travels in the Authorization header, which CORS allows with `*`
 * once it is listed in Access-Control-Allow-Headers; cookies are never read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';

/** Headers a cross-origin script may read from an answer: the rate limit's wait and the partial-view mark. */
export const EXPOSED_HEADERS = ['Retry-After', 'X-Hub-Partial'] as const;

/** How long a browser may cache a preflight's answer, seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

export type Cors = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** `CORS_ORIGIN` as the cors package takes it: `*`, or the list of allowed origins. */
export function corsOrigins(setting: string): '*' | string[] {
  const origins = setting.split(',').map((o) => o.trim()).filter(Boolean);
  return origins.length === 0 || origins.includes('*') ? '*' : origins;
}

/** A CORS handler for routes answering `methods`: calls `next` unless it answered a preflight itself. */
export function restCors(corsOrigin: string, methods: readonly string[]): Cors {
  const handle = cors({
    origin: corsOrigins(corsOrigin),
    methods: methods.filter((m) => m !== 'OPTIONS'),
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: [...EXPOSED_HEADERS],
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
  return (req, res, next) => {
    // Not a cross-origin request: nothing to add (and nothing to spend on the polled routes).
    if (req.headers.origin === undefined) {
      next();
      return;
    }
    handle(req, res, () => next());
  };
}
