/**
 * WebSocket upgrades without engine.io's CORS middleware.
 *
 * engine.io runs its middlewares for every request it handles, WebSocket upgrades included, as a
 * chain of promises (one per middleware, plus the chain's own reactions), even when each middleware
 * calls `next` at once. Here the only middleware is CORS, which means nothing to a WebSocket:
 * browsers apply no CORS to WebSocket connections, and the headers it adds to the 101 answer are
 * read by no client. So an upgrade skips the chain when CORS is all it holds; long-polling requests,
 * where CORS does matter, still run it. Any other middleware added later (an authentication step)
 * makes upgrades run the whole chain again: nothing but the known CORS middleware is ever skipped.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
type ApplyMiddlewares = (req: IncomingMessage, res: unknown, callback: (error?: unknown) => void) => void;

/** The two members of engine.io's server (6.6, protected) this reads and replaces. */
interface EngineMiddlewares {
  middlewares: Middleware[];
  _applyMiddlewares: ApplyMiddlewares;
}

/** Whether `req` asks for a WebSocket upgrade (what engine.io's upgrade path is entered with). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** Whether every middleware of `middlewares` is one an upgrade may skip (an empty list included). */
export function onlySkippable(middlewares: readonly Middleware[], skippable: ReadonlySet<Middleware>): boolean {
  for (const middleware of middlewares) if (!skippable.has(middleware)) return false;
  return true;
}

/**
 * Makes WebSocket upgrades skip engine.io's middleware chain while it holds only the middlewares
 * present now (call it right after the server is built: the CORS middleware its `cors` option
 * added). Returns false, changing nothing, when engine.io's internals are not the expected ones.
 */
export function skipCorsOnUpgrades(engine: object): boolean {
  const internals = engine as Partial<EngineMiddlewares>;
  const apply = internals._applyMiddlewares;
  if (!Array.isArray(internals.middlewares) || typeof apply !== 'function' || apply.length !== 3) return false;
  const skippable = new Set<Middleware>(internals.middlewares);
  const target = internals as EngineMiddlewares;
  target._applyMiddlewares = function applyMiddlewares(this: EngineMiddlewares, req, res, callback) {
    if (isWebSocketUpgrade(req) && onlySkippable(this.middlewares, skippable)) {
      callback();
      return;
    }
    apply.call(this, req, res, callback);
  };
  return true;
}
