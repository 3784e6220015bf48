/** Request duration metrics, labelled by route pattern so label values stay a bounded set. */
import { performance } from 'node:perf_hooks';
import type { Request, RequestHandler } from 'express';
import type { HubContext } from '../context';

/** Label of requests no route matched: the raw URL would make the label set unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The pattern of the route that handled the request (routes are mounted at the root, so the
 * pattern is the whole path), or UNMATCHED_ROUTE.
 */
export function routeLabel(req: Request): string {
  const route: unknown = req.route;
  if (typeof route === 'object' && route !== null && 'path' in route && typeof route.path === 'string') return route.path;
  return UNMATCHED_ROUTE;
}

export function observeDuration(ctx: HubContext): RequestHandler {
  return (req, res, next) => {
    const start = performance.now();
    res.once('finish', () => {
      ctx.metrics.httpDuration.observe(
        { route: routeLabel(req), method: req.method, status: String(res.statusCode) },
        (performance.now() - start) / 1000,
      );
    });
    next();
  };
}
