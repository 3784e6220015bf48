/**
 * The public session routes: list, search, one session, autocomplete (see shared/spec/rest-api.md).
 * Thin: the grammar is `parseSearchQuery` (shared with live subscriptions), the work is the index's.
 */
import express, { type Request, type Response, Router } from 'express';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { FILTER_ATTRIBUTES, type FilterType, QUERY_LIMITS, parseSearchQuery } from '../sessions/query';
import { type ProjectParams, checkProjectKey, requireApiKey } from './auth';
import { rateLimit } from './rateLimit';
import { SearchResponses } from './searchResponses';

export const ROUTES = {
  sessions: '/api/v1/:projectKey/assist/sessions',
  session: '/api/v1/:projectKey/assist/sessions/:sessionId',
  autocomplete: '/api/v1/:projectKey/assist/autocomplete',
} as const;

export const AUTOCOMPLETE_LIMITS = { defaultLimit: 50, maxLimit: 200 } as const;

/** A parse failure of the search grammar: a filter at fault, or the rest of the body. */
function queryError(refusal: { message: string; filterError: boolean }, shown = refusal.message): HubError {
  return new HubError(refusal.filterError ? ErrorCode.INVALID_FILTER : ErrorCode.BAD_REQUEST, shown);
}

/** One query-string parameter; empty counts as absent, and repeating it is an error. */
function param(req: Request, name: string): string | undefined {
  const raw: unknown = (req.query as Record<string, unknown>)[name];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string') throw new HubError(ErrorCode.BAD_REQUEST, `${name}: expected a single value`);
  return raw;
}

/**
 * The list's query string as a search body. `userId` filters like the OpenReplay assist server's
 * list does: USERID `contains`, case-insensitive.
 */
function listBody(req: Request): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const name of ['page', 'limit', 'sort', 'order']) {
    const value = param(req, name);
    if (value !== undefined) body[name] = value;
  }
  const userId = param(req, 'userId');
  if (userId !== undefined) body.filters = [{ type: 'USERID', value: [userId], operator: 'contains' }];
  return body;
}

/** Marks data that may miss other nodes' changes, so clients can tell a stale view. */
function sendData(ctx: HubContext, res: Response, body: string | Buffer): void {
  if (ctx.store.status().partial) res.setHeader('X-Hub-Partial', 'true');
  res.type('application/json').send(body);
}

function boundedInt(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HubError(ErrorCode.BAD_REQUEST, `${name}: expected an integer from 1 to ${max}`);
  return n;
}

function boundedText(name: string, raw: string | undefined): string | undefined {
  if (raw !== undefined && raw.length > QUERY_LIMITS.maxValueLength) {
    throw new HubError(ErrorCode.BAD_REQUEST, `${name}: longer than ${QUERY_LIMITS.maxValueLength} characters`);
  }
  return raw;
}

export function sessionRoutes(ctx: HubContext): Router {
  const router = Router();
  const responses = new SearchResponses(ctx.index, ctx.config.searchCacheSize);
  const guard = [checkProjectKey, requireApiKey(ctx), rateLimit(ctx)];
  // Every body is read as JSON whatever its Content-Type: `curl -d` sends form-encoded by default,
  // and silently ignoring its filters would answer a different question than the one asked.
  // Not strict: a body that is JSON but not an object gets the parser's own "expected an object".
  const jsonBody = express.json({ limit: ctx.config.restBodyLimit, strict: false, type: () => true });

  router.get(ROUTES.sessions, ...guard, (req: Request<ProjectParams>, res) => {
    const parsed = parseSearchQuery(listBody(req));
    // The only filter a list has is the one built from userId: name the parameter the client sent.
    if (!parsed.ok) throw queryError(parsed, parsed.message.replace(/^filters\.0\.value(\.\d+)?/, 'userId'));
    sendData(ctx, res, responses.body(req.params.projectKey, parsed.value));
  });

  router.post(ROUTES.sessions, ...guard, jsonBody, (req: Request<ProjectParams>, res) => {
    const parsed = parseSearchQuery(req.body as unknown);
    if (!parsed.ok) throw queryError(parsed);
    sendData(ctx, res, responses.body(req.params.projectKey, parsed.value));
  });

  router.get(ROUTES.session, ...guard, (req: Request<ProjectParams & { sessionId: string }>, res) => {
    const room = ctx.index.room(req.params.projectKey, req.params.sessionId);
    if (!room?.view) throw new HubError(ErrorCode.NOT_FOUND, 'no live session with that id in this project');
    sendData(ctx, res, `{"data":${ctx.index.sessionJson(room)}}`);
  });

  router.get(ROUTES.autocomplete, ...guard, (req: Request<ProjectParams>, res) => {
    const types = Object.keys(FILTER_ATTRIBUTES).join(', ');
    const rawType = param(req, 'type');
    if (rawType === undefined) throw new HubError(ErrorCode.BAD_REQUEST, `type: required; expected one of ${types}`);
    const type = rawType.toUpperCase();
    if (!Object.hasOwn(FILTER_ATTRIBUTES, type)) throw new HubError(ErrorCode.BAD_REQUEST, `type: unknown; expected one of ${types}`);
    const isMetadata = type === 'METADATA';
    const source = boundedText('source', param(req, 'source'));
    if (isMetadata && source === undefined) throw new HubError(ErrorCode.BAD_REQUEST, 'source: required for METADATA (the metadata key)');
    const q = boundedText('q', param(req, 'q')) ?? '';
    const limit = boundedInt('limit', param(req, 'limit'), AUTOCOMPLETE_LIMITS.defaultLimit, AUTOCOMPLETE_LIMITS.maxLimit);
    const attribute = isMetadata ? (source as string) : FILTER_ATTRIBUTES[type as FilterType];
    const values = ctx.index.autocomplete(req.params.projectKey, { attribute, isMetadata }, q, limit);
    sendData(ctx, res, JSON.stringify({ data: values.map((value) => ({ type, value })) }));
  });

  return router;
}
