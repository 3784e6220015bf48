/**
 * The hub's Express app: public session routes, operational routes, JSON errors everywhere.
 * server.ts mounts it on the same HTTP server as Socket.IO.
 */
import express from 'express';
import type { HubContext } from '../context';
import { errorHandler, notFound } from './errors';
import { observeDuration } from './observe';
import { opsRoutes } from './ops';
import { sessionRoutes } from './sessions';

export function createHttpApp(ctx: HubContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags would hash every body on every request; live lists change too often to be revalidated.
  app.disable('etag');
  app.use(observeDuration(ctx));
  // Routers are mounted at the root so that a matched route's path is its whole pattern (the
  // metrics label).
  app.use(opsRoutes(ctx));
  app.use(sessionRoutes(ctx));
  app.use(notFound);
  app.use(errorHandler(ctx));
  return app;
}
