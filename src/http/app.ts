/**
 * The hub's HTTP request handler: the public session routes (`sessions.ts`, plain Node), OpenReplay's
 * internal API when ASSIST_KEY is set (`openreplay.ts`, plain Node), then an
 * Express app for the operational routes and JSON 404s. server.ts mounts it on the same HTTP
 * server as Socket.IO.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { HubContext } from '../context';
import { consoleFile, consoleHandler } from './console';
import { restCors } from './cors';
import { errorHandler, notFound } from './errors';
import { observeDuration } from './observe';
import { openApiDocument } from './openapi';
import { openReplayRoutes } from './openreplay';
import { opsRoutes } from './ops';
import { matchSessionRoute, sessionRoutes } from './sessions';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HttpAppOptions {
  /** Serve /metrics and /debug/* here (false when OPS_PORT has its own server for them). */
  internal?: boolean;
}

function operationsApp(ctx: HubContext, options: Required<HttpAppOptions>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags would hash every body on every request; nothing here is worth revalidating.
  app.disable('etag');
  app.use(observeDuration(ctx));
  // Routers are mounted at the root so that a matched route's path is its whole pattern (the
  // metrics label).
  app.use(opsRoutes(ctx, options));
  // Public, like the API it describes: code generators and API explorers fetch it cross-origin.
  const cors = restCors(ctx.config.corsOrigin, ['GET', 'HEAD']);
  const openapi = JSON.stringify(openApiDocument());
  app.get('/openapi.json', (req, res, next) => cors(req, res, next), (_req, res) => {
    res.type('application/json').send(openapi);
  });
  app.use(notFound);
  app.use(errorHandler(ctx));
  return app;
}

/** The handler of the OPS_PORT server: probes, /metrics and /debug/*, JSON 404s for the rest. */
export function createOpsApp(ctx: HubContext): HttpHandler {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(opsRoutes(ctx, { internal: true }));
  app.use(notFound);
  app.use(errorHandler(ctx));
  return app;
}

export function createHttpApp(ctx: HubContext, options: HttpAppOptions = {}): HttpHandler {
  const sessions = sessionRoutes(ctx);
  const operations = operationsApp(ctx, { internal: options.internal ?? true });
  const consolePages = ctx.config.consoleEnabled ? consoleHandler(ctx) : undefined;
  const openReplay = openReplayRoutes(ctx);
  return (req, res) => {
    const match = matchSessionRoute(req.method, req.url);
    if (match) return sessions(req, res, match);
    const file = consolePages && consoleFile(req.url);
    if (consolePages && file !== undefined) consolePages(req, res, file);
    else if (!openReplay?.(req, res)) operations(req, res);
  };
}
