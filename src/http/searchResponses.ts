/**
 * REST response bodies, built as text and cached.
 *
 * A body is the concatenation of each session's JSON, not a JSON.stringify of objects: dashboards
 * poll the same searches over and over. Whole bodies are cached per (project, query, page, limit)
 * and stay valid while the project's version is the one they were built at; any change to the
 * project's sessions bumps it. Session JSON is cached too, in a bounded LRU: kept for every session
 * REST ever read, it cost a polled hub memory per session (figures: docs/performance.md, "Figures behind choices in the code").
 */
import { gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import type { Session } from '../sessions/model';
import type { SessionIndexView } from '../sessions/sessionIndex';
import { type SearchQuery, queryKey } from '../sessions/query';
import type { TurnBudgetQueue } from '../turnBudget';

/** A response body, encoded once: a cached body is written many times. */
export class EncodedBody {
  private compressed: Buffer | undefined;

  constructor(
    /** The project version the body was built at. */
    readonly version: number,
    /** UTF-8 JSON (encoding the same cached string on every hit showed in profiles). */
    readonly json: Buffer,
  ) {}

  /**
   * The same, gzip-compressed, made on first use and kept with the body. Level 1: higher levels gained
   * little size for much more time (figures: docs/performance.md, "Figures behind choices in the code").
   */
  gzipped(): Buffer {
    this.compressed ??= gzipSync(this.json, { level: 1 });
    return this.compressed;
  }
}

/** Room a cached body leaves for its gzipped copy in the byte cap (JSON compresses far below this). */
const GZIP_ALLOWANCE = 0.25;

/**
 * Cap on the bytes all cached bodies may take together: `searchCacheSize` bounds entries, but a
 * full page is up to 200 sessions of up to the session data limit each.
 */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;

/** Cap on the characters of all cached session JSON: `SESSION_JSON_CACHE_SIZE` bounds entries. */
const MAX_SESSION_JSON_CHARS = 8 * 1024 * 1024;

/**
 * Session JSON by view. A view is never changed, only replaced when its session changes, so an
 * entry is valid as long as it lives; views of ended or changed sessions age out.
 */
export class SessionJson {
  private readonly cache: LRUCache<Session, string> | undefined;

  constructor(maxEntries: number) {
    this.cache =
      maxEntries > 0
        ? new LRUCache<Session, string>({ max: maxEntries, maxSize: MAX_SESSION_JSON_CHARS, sizeCalculation: (json) => Math.max(1, json.length) })
        : undefined;
  }

  /** For building pages: after a change, a page's other sessions are the ones already serialised. */
  of(view: Session): string {
    let json = this.cache?.get(view);
    if (json === undefined) {
      json = JSON.stringify(view);
      this.cache?.set(view, json);
    }
    return json;
  }

  /**
   * For one-session answers: the cached JSON if there is one, else a fresh one that is not kept.
   * Reads of sessions all over a project would otherwise churn the cache (the evicted strings
   * ageing in the old generation cost hub CPU per request; figures: docs/performance.md, "Figures behind choices in the code").
   */
  peek(view: Session): string {
    return this.cache?.peek(view) ?? JSON.stringify(view);
  }
}

export class SearchResponses {
  private readonly cache: LRUCache<string, EncodedBody> | undefined;
  /** Cache keys of query objects: the session routes reuse one parsed object per distinct request. */
  private readonly keys = new WeakMap<SearchQuery, string>();

  constructor(
    private readonly index: SessionIndexView,
    private readonly sessionJson: SessionJson,
    maxEntries: number,
  ) {
    this.cache =
      maxEntries > 0
        ? new LRUCache<string, EncodedBody>({
            max: maxEntries,
            maxSize: MAX_CACHE_BYTES,
            sizeCalculation: (e) => Math.max(1, Math.ceil(e.json.byteLength * (1 + GZIP_ALLOWANCE))),
          })
        : undefined;
  }

  private keyOf(query: SearchQuery): string {
    let key = this.keys.get(query);
    if (key === undefined) {
      key = `${queryKey(query)}\0${query.page}\0${query.limit}`;
      this.keys.set(query, key);
    }
    return key;
  }

  /** `{"data": {"total", "sessions"}}` for one page of a search. */
  body(projectKey: string, query: SearchQuery): EncodedBody {
    const version = this.index.projectVersion(projectKey);
    const key = this.cache ? `${projectKey}\0${this.keyOf(query)}` : '';
    const hit = this.cache?.get(key);
    if (hit && hit.version === version) return hit;
    const page = this.index.search(projectKey, query);
    // Search results are rooms with a view: matching reads it.
    const sessions = page.rooms.map((room) => this.sessionJson.of(room.view as Session)).join(',');
    const body = new EncodedBody(version, Buffer.from(`{"data":{"total":${page.total},"sessions":[${sessions}]}}`));
    this.cache?.set(key, body);
    return body;
  }
}

/**
 * Runs `work` (a search, list or autocomplete and its answer to `res`) in the REST turns when
 * there are some (HubContext.restTurns), at once otherwise; what it throws goes to `fail`. A
 * client that went away while its request waited costs no search.
 */
export function inRestTurn(turns: TurnBudgetQueue | undefined, res: { destroyed: boolean }, work: () => void, fail: (error: unknown) => void): void {
  const guarded = (): void => {
    if (res.destroyed) return;
    try {
      work();
    } catch (error) {
      fail(error);
    }
  };
  if (turns) turns.push(guarded);
  else guarded();
}
