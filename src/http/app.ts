/**
 * The hub's HTTP request handler: the public session routes (`sessions.ts`, plain Node), OpenReplay's
 * internal API when ASSIST_KEY is set (`openreplay.ts`, plain Node), then an
 * Express app for the operational routes and JSON 404s. server.ts mounts it on the same HTTP
 * server as Socket.IO.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { HubContext } from '../context';
import { errorHandler, notFound } from './errors';
import { observeDuration } from './observe';
import { openReplayRoutes } from './openreplay';
import { opsRoutes } from './ops';
import { matchSessionRoute, sessionRoutes } from './sessions';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

function operationsApp(ctx: HubContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags would hash every body on every request; nothing here is worth revalidating.
  app.disable('etag');
  app.use(observeDuration(ctx));
  // Routers are mounted at the root so that a matched route's path is its whole pattern (the
  // metrics label).
  app.use(opsRoutes(ctx));
  app.use(notFound);
  app.use(errorHandler(ctx));
  return app;
}

export function createHttpApp(ctx: HubContext): HttpHandler {
  const sessions = sessionRoutes(ctx);
  const operations = operationsApp(ctx);
  const openReplay = openReplayRoutes(ctx);
  return (req, res) => {
    const match = matchSessionRoute(req.method, req.url);
    if (match) sessions(req, res, match);
    else if (!openReplay?.(req, res)) operations(req, res);
  };
}
