/**
 * The public session routes: list, search, one session, autocomplete (see shared/spec/rest-api.md).
 *
 * Served on plain Node request/response objects, not through Express: these are the routes clients
 * poll, and under 16 concurrent searchers Express's per-request routing was a third of the hub's
 * allocations, whose garbage collections held the event loop and with it the agent<->tab relay
 * (docs/performance.md). The grammar is `parseSearchQuery` (shared with live subscriptions), the
 * work is the index's; what is here is matching, guards and writing answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import type { z } from 'zod';
import { FILTER_ATTRIBUTES, type FilterType, type SearchQuery, describeIssues, parseSearchQuery } from '../sessions/query';
import { readableIssues } from '../validation';
import { checkAccess } from './auth';
import { parseJsonBody, readBodyText } from './body';
import { restCors } from './cors';
import { failRequest } from './errors';
import { observeResponse } from './observe';
import { apiKeyRateLimit } from './rateLimit';
import { AUTOCOMPLETE_LIMITS, autocompleteQuerySchema, listQuerySchema, sessionQuerySchema } from './schemas';
import { EncodedBody, SearchResponses, SessionJson, inRestTurn } from './searchResponses';

export { AUTOCOMPLETE_LIMITS };

/** Route patterns, as they appear in metrics labels and logs. */
export const ROUTES = {
  sessions: '/api/v1/:projectKey/assist/sessions',
  session: '/api/v1/:projectKey/assist/sessions/:sessionId',
  autocomplete: '/api/v1/:projectKey/assist/autocomplete',
} as const;
type RouteName = keyof typeof ROUTES;

/** The methods each route answers (the `Allow` of a 405); OPTIONS is the CORS preflight. */
export const ROUTE_METHODS: Readonly<Record<RouteName, readonly string[]>> = {
  sessions: ['GET', 'HEAD', 'POST', 'OPTIONS'],
  session: ['GET', 'HEAD', 'OPTIONS'],
  autocomplete: ['GET', 'HEAD', 'OPTIONS'],
};

/**
 * Parsed search queries kept by their request text (body, or query string of a list): clients send
 * the same few searches over and over. Bounded in entries and in the text they hold.
 */
const PARSED_QUERY_CACHE = { maxEntries: 1_000, maxChars: 4 * 1024 * 1024 } as const;

export interface SessionRouteMatch {
  route: RouteName;
  /** Raw path segment: checked against the project-key pattern before any use. */
  projectKey: string;
  /** Raw (percent-encoded) path segment of the one-session route. */
  sessionId?: string;
  /** The query string, without its `?`. */
  search: string;
}

/** Literal segments match case-insensitively and a trailing slash is allowed, as Express routing did. */
const SESSION_ROUTE = /^\/api\/v1\/([^/]+)\/assist\/(?:sessions(?:\/([^/]+))?|(autocomplete))\/?$/i;

/**
 * Which session route a request's path is for, whatever its method (a method the route does not
 * answer gets 405 there), or undefined: the request then goes to Express (ops routes, 404).
 */
export function matchSessionRoute(_method: string | undefined, url: string | undefined): SessionRouteMatch | undefined {
  if (url === undefined) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  const [, projectKey, sessionId, autocomplete] = SESSION_ROUTE.exec(path) ?? [];
  if (projectKey === undefined) return undefined;
  const route: RouteName = autocomplete ? 'autocomplete' : sessionId ? 'session' : 'sessions';
  return { route, projectKey, sessionId, search: queryAt < 0 ? '' : url.slice(queryAt + 1) };
}

/** A parse failure of the search grammar: a filter at fault, or the rest of the body. */
function queryError(refusal: { message: string; filterError: boolean }, shown = refusal.message): HubError {
  return new HubError(refusal.filterError ? ErrorCode.INVALID_FILTER : ErrorCode.BAD_REQUEST, shown);
}

/**
 * A query string as one value per name, for a strict schema to check. An empty value counts as
 * absent (`?userId=` means no filter); a repeated name is refused.
 */
export function queryObject(search: string): Record<string, string> {
  // No prototype: `?__proto__=x` is a parameter like any other (refused as unknown), not a setter.
  const out = Object.create(null) as Record<string, string>;
  const seen = new Set<string>();
  for (const [name, value] of new URLSearchParams(search)) {
    if (seen.has(name)) throw new HubError(ErrorCode.BAD_REQUEST, `${name}: expected a single value`);
    seen.add(name);
    if (value !== '') out[name] = value;
  }
  return out;
}

const readableParams = readableIssues('query parameter');

/**
 * A query string checked against its route's schema. A refusal names the parameter and the reason;
 * it is an INVALID_FILTER when the parameter is one that becomes a filter.
 */
function parseParams<T extends z.ZodType>(schema: T, search: string, filterParams: readonly string[] = []): z.output<T> {
  const parsed = schema.safeParse(queryObject(search), { error: readableParams });
  if (parsed.success) return parsed.data;
  const filterError = parsed.error.issues.some((i) => filterParams.includes(String(i.path[0])));
  throw new HubError(filterError ? ErrorCode.INVALID_FILTER : ErrorCode.BAD_REQUEST, describeIssues(parsed.error));
}

/**
 * The list's query string as a search body. `userId` filters like the OpenReplay assist server's
 * list does: USERID `contains`, case-insensitive.
 */
function listBody(search: string): Record<string, unknown> {
  const { userId, ...options } = parseParams(listQuerySchema, search, ['userId']);
  const body: Record<string, unknown> = { ...options };
  if (userId !== undefined) body.filters = [{ type: 'USERID', value: [userId], operator: 'contains' }];
  return body;
}

function decodeSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HubError(ErrorCode.BAD_REQUEST, `${name}: malformed percent-encoding`);
  }
}

/**
 * Whether an Accept-Encoding header admits gzip: listed (or `*`) with a non-zero q, and not refused
 * by name (`gzip;q=0` beats `*`).
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let wildcard = false;
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    const allowed = q === undefined || Number(q) > 0;
    if (name.trim() === 'gzip') return allowed;
    if (name.trim() === '*') wildcard = allowed;
  }
  return wildcard;
}

/** The request handler of the session routes, for requests `matchSessionRoute` matched. */
export function sessionRoutes(ctx: HubContext): (req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch) => void {
  const sessionJson = new SessionJson(ctx.config.sessionJsonCacheSize);
  const responses = new SearchResponses(ctx.index, sessionJson, ctx.config.searchCacheSize);
  const rateLimit = apiKeyRateLimit(ctx.config.restRateLimit);
  const parsedQueries = new LRUCache<string, SearchQuery>({
    max: PARSED_QUERY_CACHE.maxEntries,
    maxSize: PARSED_QUERY_CACHE.maxChars,
    sizeCalculation: (_query, text) => Math.max(1, text.length),
  });

  const gzipMinBytes = ctx.config.restGzipMinBytes;

  /**
   * Answers 200 with JSON. Cached search pages go gzip-compressed to clients that accept it (from
   * `REST_GZIP_MIN_BYTES`; they are compressed once per cached page). Data that may miss other
   * nodes' changes is marked, so clients can tell a stale view.
   */
  function sendData(req: IncomingMessage, res: ServerResponse, body: string | EncodedBody): void {
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json; charset=utf-8' };
    let payload: string | Buffer = body instanceof EncodedBody ? body.json : body;
    if (body instanceof EncodedBody) {
      headers.Vary = 'Accept-Encoding';
      if (gzipMinBytes > 0 && payload.length >= gzipMinBytes && acceptsGzip(req.headers['accept-encoding'])) {
        payload = body.gzipped();
        headers['Content-Encoding'] = 'gzip';
      }
    }
    headers['Content-Length'] = Buffer.byteLength(payload);
    if (ctx.store.status().partial) headers['X-Hub-Partial'] = 'true';
    res.writeHead(200, headers);
    res.end(payload);
  }

  /** A search query from its request text, parsed once per distinct text. */
  function searchQuery(cacheKey: string, parse: () => SearchQuery): SearchQuery {
    const cached = parsedQueries.get(cacheKey);
    if (cached) return cached;
    const query = parse();
    parsedQueries.set(cacheKey, query);
    return query;
  }

  function list(req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch): void {
    const query = searchQuery(`?${match.search}`, () => {
      const parsed = parseSearchQuery(listBody(match.search));
      // The only filter a list has is the one built from userId: name the parameter the client sent.
      if (!parsed.ok) throw queryError(parsed, parsed.message.replace(/^filters\.0\.value(\.\d+)?/, 'userId'));
      return parsed.value;
    });
    sendData(req, res, responses.body(match.projectKey, query));
  }

  async function search(req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch, fail: (error: unknown) => void): Promise<void> {
    // Every body is read as JSON whatever its Content-Type: `curl -d` sends form-encoded by default,
    // and silently ignoring its filters would answer a different question than the one asked.
    if (match.search !== '') {
      const names = [...new Set(new URLSearchParams(match.search).keys())];
      const shown = names.slice(0, 5).map((n) => `"${n.slice(0, 64)}"`).join(', ');
      throw new HubError(ErrorCode.BAD_REQUEST, `query parameters are not read by a search (POST), here ${shown}: send the search in the JSON body`);
    }
    const text = await readBodyText(req, ctx.config.restBodyLimit);
    const query = searchQuery(`{${text}`, () => {
      const parsed = parseSearchQuery(parseJsonBody(text), { strict: true });
      if (!parsed.ok) throw queryError(parsed);
      return parsed.value;
    });
    inRestTurn(ctx.restTurns, res, () => sendData(req, res, responses.body(match.projectKey, query)), fail);
  }

  function one(req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch): void {
    // The polled route: nothing to check (and nothing allocated) without a query string.
    if (match.search !== '') parseParams(sessionQuerySchema, match.search);
    const room = ctx.index.room(match.projectKey, decodeSegment('sessionId', match.sessionId ?? ''));
    if (!room?.view) throw new HubError(ErrorCode.NOT_FOUND, 'no live session with that id in this project');
    sendData(req, res, `{"data":${sessionJson.peek(room.view)}}`);
  }

  function autocomplete(req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch): void {
    const { type, source, q = '', limit = AUTOCOMPLETE_LIMITS.defaultLimit } = parseParams(autocompleteQuerySchema, match.search);
    const isMetadata = type === 'METADATA';
    const attribute = isMetadata ? (source as string) : FILTER_ATTRIBUTES[type as FilterType];
    const values = ctx.index.autocomplete(match.projectKey, { attribute, isMetadata }, q, limit);
    sendData(req, res, JSON.stringify({ data: values.map((value) => ({ type, value })) }));
  }

  const cors = {
    sessions: restCors(ctx.config.corsOrigin, ROUTE_METHODS.sessions),
    session: restCors(ctx.config.corsOrigin, ROUTE_METHODS.session),
    autocomplete: restCors(ctx.config.corsOrigin, ROUTE_METHODS.autocomplete),
  };

  /** The route's work once CORS is through: method, guards, then the route itself. */
  function serve(req: IncomingMessage, res: ServerResponse, match: SessionRouteMatch, fail: (error: unknown) => void): void {
    const allowed = ROUTE_METHODS[match.route];
    if (req.method === 'OPTIONS') {
      // Not a preflight (those were answered by CORS): say what the route answers.
      res.writeHead(204, { Allow: allowed.join(', ') }).end();
      return;
    }
    if (!allowed.includes(req.method ?? '')) {
      throw new HubError(ErrorCode.METHOD_NOT_ALLOWED, `${req.method ?? ''} is not allowed here; allowed: ${allowed.join(', ')}`, undefined, {
        Allow: allowed.join(', '),
      });
    }
    rateLimit(checkAccess(ctx, req.headers.authorization, match.projectKey));
    if (match.route === 'session') one(req, res, match);
    else if (match.route === 'autocomplete') inRestTurn(ctx.restTurns, res, () => autocomplete(req, res, match), fail);
    else if (req.method === 'POST') search(req, res, match, fail).catch(fail);
    else inRestTurn(ctx.restTurns, res, () => list(req, res, match), fail);
  }

  return (req, res, match) => {
    const route = ROUTES[match.route];
    observeResponse(ctx, res, req.method, () => route);
    const fail = (error: unknown): void => failRequest(ctx, { route, method: req.method, address: req.socket.remoteAddress }, res, error);
    cors[match.route](req, res, () => {
      try {
        serve(req, res, match, fail);
      } catch (error) {
        fail(error);
      }
    });
  };
}
