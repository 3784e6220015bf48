/** Request duration metrics, labelled by route pattern so label values stay a bounded set. */
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Request, RequestHandler } from 'express';
import type { HubContext } from '../context';
import { isOpsPath } from './ops';

/** Label of requests no route matched: the raw URL would make the label set unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The pattern of the Express route that handled the request (routes are mounted at the root, so
 * the pattern is the whole path), or UNMATCHED_ROUTE.
 */
export function routeLabel(req: Request): string {
  const route: unknown = req.route;
  if (typeof route === 'object' && route !== null && 'path' in route && typeof route.path === 'string') return route.path;
  return UNMATCHED_ROUTE;
}

/** Records the response's duration once it is sent; `route()` is read then, when it is known. */
export function observeResponse(ctx: HubContext, res: ServerResponse, method: string | undefined, route: () => string): void {
  const start = performance.now();
  res.once('finish', () => {
    ctx.metrics.httpDuration.observe({ route: route(), method: method ?? '', status: String(res.statusCode) }, (performance.now() - start) / 1000);
  });
}

/** Observes the public API's requests; probes, scrapes and /debug are left out (isOpsPath). */
export function observeDuration(ctx: HubContext): RequestHandler {
  return (req, res, next) => {
    if (!isOpsPath(req.path)) observeResponse(ctx, res, req.method, () => routeLabel(req));
    next();
  };
}
