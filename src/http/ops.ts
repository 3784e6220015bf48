/**
 * Operational routes: liveness, readiness, Prometheus metrics and, when enabled, a forced GC for
 * memory investigations. Unauthenticated, like most probe and scrape endpoints: none of them reveals
 * session data. With OPS_PORT set, /metrics and /debug/* are served only on that port (probes on both).
 */
import { Router } from 'express';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { renderMetrics, selectMetrics } from '../ops/metrics';

/** Paths of probes, scrapes and debugging: not public API traffic, so not in its request metrics. */
export function isOpsPath(path: string): boolean {
  return path === '/health' || path === '/ready' || path === '/metrics' || path.startsWith('/debug/');
}

export interface OpsRouteOptions {
  /** /metrics and /debug/* (false on the public port when OPS_PORT serves them). */
  internal: boolean;
}

export function opsRoutes(ctx: HubContext, options: OpsRouteOptions = { internal: true }): Router {
  const router = Router();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/ready', (_req, res) => {
    const lifecycle = ctx.lifecycle();
    const store = ctx.store.status();
    if (lifecycle === 'ready' && store.ready) {
      res.json({ status: 'ready', partial: store.partial });
      return;
    }
    const reason = lifecycle !== 'ready' ? `hub is ${lifecycle}` : (store.reason ?? 'session store is not ready');
    res.status(503).json({ status: 'not_ready', partial: store.partial, error: { code: ErrorCode.NOT_READY, message: reason } });
  });

  if (!options.internal) return router;

  router.get('/metrics', async (req, res) => {
    const { registry } = ctx.metrics;
    // Other parameters are left alone: Prometheus passes a job's `params` on, and they are not ours.
    const selection = selectMetrics(req.query.name, (name) => registry.getSingleMetric(name) !== undefined);
    if (selection.kind === 'refused') throw new HubError(ErrorCode.BAD_REQUEST, selection.message);
    const text = await renderMetrics(registry, selection);
    res.type(registry.contentType).send(text);
  });

  if (ctx.config.debugGc) {
    router.post('/debug/gc', (_req, res) => {
      // Only there when node runs with --expose-gc; without it the numbers are still worth having.
      const gc = globalThis.gc;
      if (gc) gc();
      // heapTotal (V8's committed heap) and external split an RSS figure into heap pages and native memory.
      const { heapUsed, heapTotal, external, arrayBuffers, rss } = process.memoryUsage();
      res.json({ gc: gc !== undefined, heapUsed, heapTotal, external, arrayBuffers, rss });
    });
  }

  return router;
}
