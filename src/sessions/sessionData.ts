/**
 * Session data as announced by trackers: validation of `sessionInfo`, the defaults of the fields
 * REST returns, the prototype-safe bounded deep merge behind UPDATE_SESSION, and how the tabs of
 * one session combine into the one session REST returns. Pure.
 */
import type { JsonObject, JsonValue, Session, SessionData, TabState } from './model';
import { COMPUTED_FIELDS, DERIVED_FIELDS, TAB_FIELDS } from './model';

export interface SessionDataLimits {
  /** Largest serialised session data (bytes of JSON) a session may hold. */
  maxBytes: number;
  /** Deepest nesting of objects/arrays accepted in sessionInfo or an update. */
  maxDepth: number;
  /** Most metadata keys a session may carry. */
  maxMetadataKeys: number;
}

export const DEFAULT_SESSION_DATA_LIMITS: SessionDataLimits = { maxBytes: 16 * 1024, maxDepth: 8, maxMetadataKeys: 64 };

/** Keys that could reach an object's prototype when assigned: never merged. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export type DataResult<T> = { ok: true; value: T } | { ok: false; message: string };

function depthOf(value: JsonValue, limit: number, depth = 0): number {
  if (depth > limit) return depth;
  if (Array.isArray(value)) {
    let max = depth + 1;
    for (const v of value) max = Math.max(max, depthOf(v, limit, depth + 1));
    return max;
  }
  if (isPlainObject(value)) {
    let max = depth + 1;
    for (const k in value) max = Math.max(max, depthOf(value[k] as JsonValue, limit, depth + 1));
    return max;
  }
  return depth;
}

/**
 * Deepest nesting `sanitize` copies; anything below is cut (replaced by null). Above every
 * configurable `maxDepth`, so a cut value is still refused by `boundSessionFields`: the cut only
 * keeps a hostile, deeply nested update from overflowing the stack.
 */
const SANITIZE_MAX_DEPTH = 128;

/** Copies a parsed JSON object without prototype keys; `undefined` values are dropped. */
function sanitize(value: JsonValue, depth = 0): JsonValue {
  if (depth >= SANITIZE_MAX_DEPTH && (Array.isArray(value) || isPlainObject(value))) return null;
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  if (!isPlainObject(value)) return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    const v = value[key];
    if (v !== undefined) out[key] = sanitize(v, depth + 1);
  }
  return out;
}

/**
 * Whether `sanitize` would return an equal copy of `value` (no prototype key, no undefined, no
 * nesting past its cut): the value can then be kept as it is by whoever owns it. Allocates nothing.
 */
function isSanitized(value: JsonValue, depth = 0): boolean {
  if (Array.isArray(value)) {
    if (depth >= SANITIZE_MAX_DEPTH) return false;
    for (const v of value) if (!isSanitized(v, depth + 1)) return false;
    return true;
  }
  if (!isPlainObject(value)) return true;
  if (depth >= SANITIZE_MAX_DEPTH) return false;
  for (const key in value) {
    if (!Object.hasOwn(value, key) || FORBIDDEN_KEYS.has(key)) return false;
    const v = value[key];
    if (v === undefined || !isSanitized(v, depth + 1)) return false;
  }
  return true;
}

/**
 * Deep-merges `patch` into `base` and returns a new object; neither input is changed. Objects merge
 * key by key, anything else (arrays included) replaces. Prototype keys are skipped.
 */
export function deepMerge(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const key of Object.keys(patch)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    const next = patch[key];
    if (next === undefined) continue;
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(next) ? deepMerge(prev, next) : sanitize(next);
  }
  return out;
}

/**
 * Metadata as string values, at most `maxKeys` of them: values are strings on the wire; numbers and
 * booleans are kept as their text. An object that already is so is returned as is, not copied: the
 * view then shares the session data's object (one less per session).
 */
function normalizeMetadata(raw: JsonValue | undefined, maxKeys: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isPlainObject(raw)) return out;
  const keys = Object.keys(raw);
  if (keys.length <= maxKeys && keys.every((key) => typeof raw[key] === 'string' && !FORBIDDEN_KEYS.has(key))) return raw as Record<string, string>;
  let count = 0;
  for (const key of keys) {
    if (FORBIDDEN_KEYS.has(key) || count >= maxKeys) continue;
    const v = raw[key];
    if (typeof v === 'string') out[key] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[key] = String(v);
    else continue;
    count++;
  }
  return out;
}

/** UTF-8 bytes of a string as JSON.stringify writes it: quotes, escapes and lone surrogates (\\uXXXX) included. */
function jsonStringBytes(text: string): number {
  let bytes = 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20) bytes += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) bytes += 2;
    else if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c < 0xd800 || c > 0xdfff) bytes += 3;
    else if (c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 6;
  }
  return bytes;
}

/**
 * `Buffer.byteLength(JSON.stringify(value))` without building the text: the size check runs on
 * every join and update. Anything but plain JSON data (a toJSON method, a bigint, a symbol, a
 * function at the top) is measured by JSON.stringify itself.
 */
export function jsonByteLength(value: unknown): number {
  if (value === null) return 4;
  if (typeof value === 'string') return jsonStringBytes(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value).length : 4;
  if (typeof value === 'boolean') return value ? 4 : 5;
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
    if (Array.isArray(value)) {
      let bytes = value.length > 0 ? 1 + value.length : 2;
      for (const v of value) bytes += v === undefined || typeof v === 'function' || typeof v === 'symbol' ? 4 : jsonByteLength(v);
      return bytes;
    }
    let bytes = 2;
    let members = 0;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const v = record[key];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      bytes += jsonStringBytes(key) + 1 + jsonByteLength(v);
      members++;
    }
    return members > 1 ? bytes + members - 1 : bytes;
  }
  const text = JSON.stringify(value) as string | undefined;
  return text === undefined ? 0 : Buffer.byteLength(text);
}

/**
 * Checks a session-data candidate against the limits and normalises `metadata`.
 * Tab fields (pageTitle, active) and computed fields are removed: they live elsewhere.
 */
export function boundSessionFields(fields: JsonObject, limits: SessionDataLimits): DataResult<JsonObject> {
  if (depthOf(fields, limits.maxDepth) > limits.maxDepth) {
    return { ok: false, message: `nesting deeper than ${limits.maxDepth} levels` };
  }
  const out: JsonObject = {};
  for (const key of Object.keys(fields)) {
    if (TAB_FIELDS.has(key) || COMPUTED_FIELDS.has(key) || FORBIDDEN_KEYS.has(key)) continue;
    out[key] = fields[key] as JsonValue;
  }
  return withinLimits(out, limits);
}

/** The last steps of {@link boundSessionFields} on its own copy: metadata normalised, then the size checked. */
function withinLimits(out: JsonObject, limits: SessionDataLimits): DataResult<JsonObject> {
  if ('metadata' in out) out.metadata = normalizeMetadata(out.metadata, limits.maxMetadataKeys);
  const bytes = jsonByteLength(out);
  if (bytes > limits.maxBytes) {
    return { ok: false, message: `session data of ${bytes} bytes exceeds the limit of ${limits.maxBytes}` };
  }
  return { ok: true, value: out };
}

/**
 * The data of a session that has none yet, from its first tab's sessionInfo, in one pass: equal to
 * `mergeSessionData(undefined, splitTabFields(info).session, limits, origin)`, without its three
 * copies of the sessionInfo (the split, the merge's deep copy, the bound). `info` must be the
 * caller's own, as parseSessionInfo's result is: its values are kept, not copied, when `sanitize`
 * would leave them as they are (the others are copied as the merge would).
 */
export function newSessionData(info: JsonObject, limits: SessionDataLimits, origin: string): DataResult<SessionData> {
  const out: JsonObject = {};
  // The depth the merge checks is that of the session part, computed fields included.
  let depth = 1;
  for (const key of Object.keys(info)) {
    if (TAB_FIELDS.has(key) || FORBIDDEN_KEYS.has(key)) continue;
    const v = info[key];
    if (v === undefined) continue;
    const kept = isSanitized(v) ? v : sanitize(v);
    depth = Math.max(depth, depthOf(kept, limits.maxDepth, 1));
    if (!COMPUTED_FIELDS.has(key)) out[key] = kept;
  }
  if (depth > limits.maxDepth) {
    return { ok: false, message: `nesting deeper than ${limits.maxDepth} levels` };
  }
  const fields = withinLimits(out, limits);
  if (!fields.ok) return fields;
  return { ok: true, value: { fields: fields.value, version: 1, origin } };
}

/**
 * The session data after `patch` (a tab's sessionInfo, or an UPDATE_SESSION's session part) is
 * deep-merged into `current`, bounded by the limits, one version above it and written by `origin`.
 */
export function mergeSessionData(current: SessionData | undefined, patch: JsonObject, limits: SessionDataLimits, origin: string): DataResult<SessionData> {
  const fields = boundSessionFields(deepMerge(current?.fields ?? {}, patch), limits);
  if (!fields.ok) return fields;
  return { ok: true, value: { fields: fields.value, version: (current?.version ?? 0) + 1, origin } };
}

/** Parses the `sessionInfo` JSON string of a tracker handshake (or an object from `handshake.auth`) into a fresh object: the caller owns it. */
export function parseSessionInfo(raw: unknown, limits: SessionDataLimits): DataResult<JsonObject> {
  if (raw === undefined || raw === null || raw === '') return { ok: true, value: {} };
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.length > limits.maxBytes * 2) return { ok: false, message: `sessionInfo longer than ${limits.maxBytes * 2} characters` };
    try {
      value = JSON.parse(raw);
    } catch {
      return { ok: false, message: 'sessionInfo is not valid JSON' };
    }
  }
  if (!isPlainObject(value)) return { ok: false, message: 'sessionInfo must be a JSON object' };
  if (depthOf(value, limits.maxDepth) > limits.maxDepth) {
    return { ok: false, message: `sessionInfo nests deeper than ${limits.maxDepth} levels` };
  }
  // A parsed string is this call's own: copied only when it holds something `sanitize` removes.
  // An object (from `handshake.auth`) belongs to the handshake: always copied.
  return { ok: true, value: typeof raw === 'string' && isSanitized(value) ? value : (sanitize(value) as JsonObject) };
}

/** The tab part (pageTitle, active) of an update's data, as {@link splitTabFields} reads it. */
export function tabFieldsOf(data: JsonObject): { pageTitle?: string; active?: boolean } {
  const tab: { pageTitle?: string; active?: boolean } = {};
  if (typeof data.pageTitle === 'string' && Object.hasOwn(data, 'pageTitle')) tab.pageTitle = data.pageTitle;
  if (typeof data.active === 'boolean' && Object.hasOwn(data, 'active')) tab.active = data.active;
  return tab;
}

/** Splits an update's data into its tab part (pageTitle, active) and its session-wide part. */
export function splitTabFields(data: JsonObject): { tab: { pageTitle?: string; active?: boolean }; session: JsonObject } {
  const tab: { pageTitle?: string; active?: boolean } = {};
  const session: JsonObject = {};
  for (const key of Object.keys(data)) {
    const v = data[key] as JsonValue;
    if (FORBIDDEN_KEYS.has(key)) continue;
    if (key === 'pageTitle') {
      if (typeof v === 'string') tab.pageTitle = v;
    } else if (key === 'active') {
      if (typeof v === 'boolean') tab.active = v;
    } else {
      session[key] = v;
    }
  }
  return { tab, session };
}

/** An UPDATE_SESSION's session part without the fields the hub derives (User-Agent, geo). */
export function updatableFields(session: JsonObject): JsonObject {
  let out: JsonObject | undefined;
  for (const key of Object.keys(session)) {
    if (!DERIVED_FIELDS.has(key)) continue;
    out ??= { ...session };
    delete out[key];
  }
  return out ?? session;
}

function str(v: JsonValue | undefined, fallback = ''): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

function strOrNull(v: JsonValue | undefined): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Picks the tab whose pageTitle the session shows: most recently active, then most recently connected. */
export function primaryTab(tabs: Iterable<TabState>): TabState | undefined {
  let best: TabState | undefined;
  for (const t of tabs) {
    if (
      !best ||
      t.lastActiveAt > best.lastActiveAt ||
      (t.lastActiveAt === best.lastActiveAt && t.connectedAt > best.connectedAt) ||
      (t.lastActiveAt === best.lastActiveAt && t.connectedAt === best.connectedAt && t.tabId > best.tabId)
    ) {
      best = t;
    }
  }
  return best;
}

/** The one session REST returns, from the session data and its tabs (see model.ts for the rules). */
export function combineSession(projectKey: string, sessionId: string, data: SessionData, tabs: readonly TabState[]): Session {
  const f = data.fields;
  const primary = primaryTab(tabs);
  const ordered = [...tabs].sort((a, b) => a.connectedAt - b.connectedAt || (a.tabId < b.tabId ? -1 : 1));
  const timestamp = typeof f.timestamp === 'number' ? f.timestamp : Number(f.timestamp) || 0;
  const projectId = typeof f.projectId === 'number' || typeof f.projectId === 'string' ? f.projectId : (f.projectID ?? null);
  // The REST fields first, in a fixed order, then the tracker's extra fields: sessions then share
  // V8 hidden classes (spreading the announced fields first gave nearly every session its own).
  const view: Session = {
    sessionID: sessionId,
    projectKey,
    projectId: typeof projectId === 'number' || typeof projectId === 'string' ? projectId : null,
    pageTitle: primary?.pageTitle ?? '',
    active: tabs.some((t) => t.active),
    live: true,
    userID: str(f.userID),
    userUUID: str(f.userUUID),
    userAnonymousId: str(f.userAnonymousId),
    metadata: normalizeMetadata(f.metadata, Number.MAX_SAFE_INTEGER),
    revID: str(f.revID),
    timestamp,
    trackerVersion: str(f.trackerVersion),
    isSnippet: f.isSnippet === true,
    assistOnly: f.assistOnly === true,
    userOs: strOrNull(f.userOs),
    userBrowser: strOrNull(f.userBrowser),
    userBrowserVersion: strOrNull(f.userBrowserVersion),
    userDevice: strOrNull(f.userDevice),
    userDeviceType: str(f.userDeviceType, 'desktop') || 'desktop',
    userCountry: strOrNull(f.userCountry),
    userState: strOrNull(f.userState),
    userCity: strOrNull(f.userCity),
    tabIds: ordered.map((t) => t.tabId),
    tabId: primary?.tabId ?? null,
  };
  for (const key of Object.keys(f)) if (!Object.hasOwn(view, key)) view[key] = f[key];
  return view;
}
