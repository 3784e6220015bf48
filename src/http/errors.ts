/**
 * How REST failures become responses: every error is `{"error": {"code", "message"}}` with the code's
 * status, on the session API and on Express's routes alike. Expected failures (HubError, and the
 * 4xx errors of Express and its router) are answered as such; anything else is a 500
 * with no detail for the client and the full error in the log.
 */
import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { routeLabel } from './observe';

/** The shape Express and its router give their errors (http-errors). */
interface HttpErrorLike {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
}

function clientStatus(err: HttpErrorLike): number | undefined {
  const status = typeof err.status === 'number' ? err.status : err.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** Maps an error to the HubError the client sees, or undefined when it is a bug (500). */
export function toHubError(err: unknown): HubError | undefined {
  if (err instanceof HubError) return err;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as HttpErrorLike;
  const status = clientStatus(e);
  if (status === undefined) return undefined;
  // The session API raises HubErrors only (its body reader included); what else reaches here comes
  // from Express (say, an undecodable URL): its status stays, and its message only when the library
  // marked it as safe to show.
  const message = e.expose === true && typeof e.message === 'string' ? e.message : 'malformed request';
  return new HubError(ErrorCode.BAD_REQUEST, message, status);
}

export function sendError(res: ServerResponse, error: HubError): void {
  const body = JSON.stringify({ error: error.toBody() });
  res.statusCode = error.status;
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * Answers a failed request: logs it (client mistakes at debug, bugs at error level with only the
 * error's name, message and stack, never the request's body or headers) and sends the error.
 */
export function failRequest(ctx: HubContext, request: { route: string; method: string | undefined; address?: string }, res: ServerResponse, err: unknown): void {
  const expected = toHubError(err);
  const { route, method, address } = request;
  if (expected) {
    ctx.refusals?.httpStatus(expected.status);
    ctx.logger.debug({ route, method, address, code: expected.code, status: expected.status }, expected.message);
  } else {
    const e = err instanceof Error ? err : new Error(String(err));
    // Only name, message and stack: other properties of an arbitrary error may hold request data.
    ctx.logger.error({ route, method, err: { name: e.name, message: e.message, stack: e.stack } }, 'unexpected error in REST route');
  }
  if (res.headersSent) {
    // Half a response cannot be turned into an error one: cut it so the client sees a failure.
    res.destroy();
    return;
  }
  sendError(res, expected ?? new HubError(ErrorCode.INTERNAL, 'internal error'));
}

/** Last Express route: whatever nothing else answered. */
export const notFound: RequestHandler = (_req, _res, next) => {
  next(new HubError(ErrorCode.NOT_FOUND, 'no such route'));
};

export function errorHandler(ctx: HubContext): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => failRequest(ctx, { route: routeLabel(req), method: req.method, address: req.socket.remoteAddress }, res, err);
}
