/**
 * OpenReplay's internal assist API, as its backend calls it (api/chalicelib/core/assist.py with
 * `ASSIST_URL=http://<hub>:9001/assist/%s` filled with `ASSIST_KEY`): under
 * `${PREFIX}/${ASSIST_KEY}`,
 * - `GET|POST /sockets-live/:projectKey`: list / search, `{"data": {"total", "sessions"}}`;
 * - `GET /sockets-live/:projectKey/:sessionId`: `{"data": session}` or `{"data": null}`;
 * - `GET /sockets-list/:projectKey/:sessionId` (is_live): `{"data": "<sessionId>"}` or `{"data": null}`;
 * - `GET /sockets-list|sockets-live/:projectKey/autocomplete?q=&key=`: `{"data": [{type, value}]}`;
 * - `GET ${PREFIX}` and `${PREFIX}/${ASSIST_KEY}`: `ok!`.
 * The key in the path is the credential (compared in constant time); a wrong key is a 404, as the
 * reference answers it. Off when ASSIST_KEY is unset. The grammar is translated by
 * `sessions/openreplayQuery.ts` into the hub's query; the index and the answers' code are the
 * public API's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { PROJECT_KEY_PATTERN } from '../protocol';
import { filterTypeOf, translateLiveSearch } from '../sessions/openreplayQuery';
import { FILTER_ATTRIBUTES, QUERY_LIMITS, type SearchQuery } from '../sessions/query';
import { parseJsonBody, readBodyText } from './body';
import { failRequest } from './errors';
import { observeResponse } from './observe';
import { apiKeyRateLimit } from './rateLimit';
import { type EncodedBody, SearchResponses, SessionJson, inRestTurn } from './searchResponses';

/** Route patterns, as they appear in metrics labels and logs (never with the key). */
export const OPENREPLAY_ROUTES = {
  live: '/assist/:key/sockets-live/:projectKey',
  liveSession: '/assist/:key/sockets-live/:projectKey/:sessionId',
  isLive: '/assist/:key/sockets-list/:projectKey/:sessionId',
  autocomplete: '/assist/:key/sockets-(list|live)/:projectKey/autocomplete',
  ping: '/assist/:key',
} as const;
type RouteName = keyof typeof OPENREPLAY_ROUTES;

/** Most results an autocomplete answers (the reference has no bound). */
export const OPENREPLAY_AUTOCOMPLETE_MAX = 200;
/** Attributes an autocomplete without `key` looks through, besides the metadata keys. */
/** The internal API's one bucket id in its own limiter. */
const ASSIST_KEY_BUCKET = 0;
const AUTOCOMPLETE_ATTRIBUTES = [...new Set(Object.entries(FILTER_ATTRIBUTES).filter(([t]) => t !== 'METADATA').map(([, a]) => a))];

export interface OpenReplayMatch {
  route: RouteName;
  projectKey?: string;
  sessionId?: string;
  search: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Matches the internal API's paths; `undefined` leaves the request to the other routes. */
export function openReplayMatcher(prefix: string, assistKey: string): (method: string | undefined, url: string | undefined) => OpenReplayMatch | undefined {
  const keyDigest = digest(assistKey);
  const prefixLower = `${prefix.toLowerCase()}/`;
  const tail = /^(?:\/(sockets-live|sockets-list)\/([^/]+)(?:\/([^/]+))?)?\/?$/i;
  return (method, url) => {
    if (url === undefined || (method !== 'GET' && method !== 'HEAD' && method !== 'POST')) return undefined;
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const search = queryAt < 0 ? '' : url.slice(queryAt + 1);
    if (path.toLowerCase() === prefix.toLowerCase() || path.toLowerCase() === prefixLower) {
      return method === 'POST' ? undefined : { route: 'ping', search };
    }
    if (!path.toLowerCase().startsWith(prefixLower)) return undefined;
    const rest = path.slice(prefixLower.length);
    const slash = rest.indexOf('/');
    const key = slash < 0 ? rest : rest.slice(0, slash);
    // Every request under the prefix hashes what it presents, so timing tells nothing about the key.
    if (!timingSafeEqual(digest(key), keyDigest)) return undefined;
    const m = tail.exec(slash < 0 ? '' : rest.slice(slash));
    if (!m) return undefined;
    const [, family, projectKey, third] = m;
    if (!family) return method === 'POST' ? undefined : { route: 'ping', search };
    const list = family.toLowerCase() === 'sockets-list';
    if (third !== undefined && third.toLowerCase() === 'autocomplete') {
      return method === 'POST' ? undefined : { route: 'autocomplete', projectKey, search };
    }
    if (third !== undefined) {
      if (method === 'POST') return undefined;
      return { route: list ? 'isLive' : 'liveSession', projectKey, sessionId: third, search };
    }
    // `sockets-list/:projectKey` has no route in the reference either.
    return list ? undefined : { route: 'live', projectKey, search };
  };
}

function decodeSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HubError(ErrorCode.BAD_REQUEST, `${name}: malformed percent-encoding`);
  }
}

function oneParam(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw new HubError(ErrorCode.BAD_REQUEST, `${name}: expected a single value`);
  const v = values[0];
  if (v !== undefined && v.length > QUERY_LIMITS.maxValueLength) {
    throw new HubError(ErrorCode.BAD_REQUEST, `${name}: longer than ${QUERY_LIMITS.maxValueLength} characters`);
  }
  return v;
}

/** The internal API's handler, or undefined (with one log line) when ASSIST_KEY is unset. */
export function openReplayRoutes(ctx: HubContext): ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined {
  const { assistKey, prefix } = ctx.config;
  if (!assistKey) {
    ctx.logger.info(`ASSIST_KEY is not set: OpenReplay's internal API (${prefix}/<ASSIST_KEY>/sockets-live, sockets-list) is off`);
    return undefined;
  }
  // Never the key itself: it is the credential.
  ctx.logger.info(`OpenReplay's internal API is on under ${prefix}/<ASSIST_KEY>`);
  const match = openReplayMatcher(prefix, assistKey);
  const sessionJson = new SessionJson(ctx.config.sessionJsonCacheSize);
  const responses = new SearchResponses(ctx.index, sessionJson, ctx.config.searchCacheSize);
  // ASSIST_KEY is one credential, so one bucket: the limit the public API gives each of its keys.
  const rateLimit = apiKeyRateLimit(ctx.config.restRateLimit);

  function send(res: ServerResponse, body: string | Buffer, type = 'application/json; charset=utf-8'): void {
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  function projectOf(m: OpenReplayMatch): string {
    const projectKey = decodeSegment('projectKey', m.projectKey ?? '');
    if (!PROJECT_KEY_PATTERN.test(projectKey)) throw new HubError(ErrorCode.BAD_REQUEST, 'projectKey: expected 1 to 256 letters, digits, "_" or "-"');
    return projectKey;
  }

  function searchPage(projectKey: string, body: unknown, userId: string | undefined): EncodedBody {
    const parsed = translateLiveSearch(body, userId);
    if (!parsed.ok) throw new HubError(parsed.filterError ? ErrorCode.INVALID_FILTER : ErrorCode.BAD_REQUEST, parsed.message);
    return responses.body(projectKey, parsed.value as SearchQuery);
  }

  async function live(req: IncomingMessage, res: ServerResponse, m: OpenReplayMatch, fail: (error: unknown) => void): Promise<void> {
    const projectKey = projectOf(m);
    const body = req.method === 'POST' ? parseJsonBody(await readBodyText(req, ctx.config.restBodyLimit)) : {};
    const userId = oneParam(new URLSearchParams(m.search), 'userId');
    inRestTurn(ctx.restTurns, res, () => send(res, searchPage(projectKey, body, userId).json), fail);
  }

  function session(res: ServerResponse, m: OpenReplayMatch): void {
    const room = ctx.index.room(projectOf(m), decodeSegment('sessionId', m.sessionId ?? ''));
    const view = room?.view;
    if (m.route === 'isLive') send(res, JSON.stringify({ data: view ? view.sessionID : null }));
    else send(res, view ? `{"data":${sessionJson.peek(view)}}` : '{"data":null}');
  }

  /**
   * Values containing `q` (any case) of the attribute named by `key` (a filter name or a metadata
   * key), or of every filterable attribute and metadata key without one; typed by the attribute's
   * name in upper case, as the reference types them. No `q` and no `key`: nothing.
   */
  function autocomplete(res: ServerResponse, m: OpenReplayMatch): void {
    const projectKey = projectOf(m);
    const query = new URLSearchParams(m.search);
    const q = oneParam(query, 'q');
    const key = oneParam(query, 'key');
    const results: { type: string; value: string }[] = [];
    if (q !== undefined || (key !== undefined && key !== '')) {
      const targets: { attribute: string; isMetadata: boolean }[] = [];
      if (key) {
        const { type, source } = filterTypeOf(key);
        targets.push(type === 'METADATA' ? { attribute: source as string, isMetadata: true } : { attribute: FILTER_ATTRIBUTES[type], isMetadata: false });
      } else {
        for (const attribute of AUTOCOMPLETE_ATTRIBUTES) targets.push({ attribute, isMetadata: false });
        for (const attribute of ctx.index.metadataKeys(projectKey, 64)) targets.push({ attribute, isMetadata: true });
      }
      for (const target of targets) {
        const left = OPENREPLAY_AUTOCOMPLETE_MAX - results.length;
        if (left <= 0) break;
        const type = target.attribute.toUpperCase();
        for (const value of ctx.index.autocomplete(projectKey, target, q ?? '', left)) results.push({ type, value });
      }
    }
    send(res, JSON.stringify({ data: results }));
  }

  return (req, res) => {
    const m = match(req.method, req.url);
    if (!m) return false;
    const route = OPENREPLAY_ROUTES[m.route];
    observeResponse(ctx, res, req.method, () => route);
    const fail = (error: unknown): void => failRequest(ctx, { route, method: req.method }, res, error);
    try {
      rateLimit(ASSIST_KEY_BUCKET);
      if (m.route === 'ping') send(res, 'ok!', 'text/plain; charset=utf-8');
      else if (m.route === 'live') live(req, res, m, fail).catch(fail);
      else if (m.route === 'autocomplete') inRestTurn(ctx.restTurns, res, () => autocomplete(res, m), fail);
      else session(res, m);
    } catch (error) {
      fail(error);
    }
    return true;
  };
}
