/**
 * Search response bodies, built as text and cached.
 *
 * A body is the concatenation of each session's JSON as the index caches it (serialised once per
 * change), not a JSON.stringify of objects: dashboards poll the same searches over and over.
 * Whole bodies are cached per (project, query, page, limit) and stay valid while the project's
 * version is the one they were built at; any change to the project's sessions bumps it.
 */
import { LRUCache } from 'lru-cache';
import type { SessionIndex } from '../sessions/sessionIndex';
import { type SearchQuery, queryKey } from '../sessions/query';

interface Entry {
  version: number;
  /** Encoded once: a cached body is written many times, and UTF-8 encoding it each time showed in profiles. */
  body: Buffer;
}

/**
 * Cap on the bytes all cached bodies may take together: `searchCacheSize` bounds entries, but a
 * full page is up to 200 sessions of up to the session data limit each.
 */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;

export class SearchResponses {
  private readonly cache: LRUCache<string, Entry> | undefined;
  /** Cache keys of query objects: the session routes reuse one parsed object per distinct request. */
  private readonly keys = new WeakMap<SearchQuery, string>();

  constructor(
    private readonly index: SessionIndex,
    maxEntries: number,
  ) {
    this.cache =
      maxEntries > 0
        ? new LRUCache<string, Entry>({ max: maxEntries, maxSize: MAX_CACHE_BYTES, sizeCalculation: (e) => Math.max(1, e.body.byteLength) })
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

  /** `{"data": {"total", "sessions"}}` for one page of a search, as UTF-8 JSON. */
  body(projectKey: string, query: SearchQuery): Buffer {
    const version = this.index.projectVersion(projectKey);
    const key = this.cache ? `${projectKey}\0${this.keyOf(query)}` : '';
    const hit = this.cache?.get(key);
    if (hit && hit.version === version) return hit.body;
    const page = this.index.search(projectKey, query);
    const sessions = page.rooms.map((room) => this.index.sessionJson(room)).join(',');
    const body = Buffer.from(`{"data":{"total":${page.total},"sessions":[${sessions}]}}`);
    this.cache?.set(key, { version, body });
    return body;
  }
}
