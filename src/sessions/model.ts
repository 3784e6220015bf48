/**
 * The session model: what one live session is, as the index stores it and as REST returns it.
 *
 * A session is one room (`<projectKey>-<sessionId>`) with one or more tabs. Its data is split in two:
 * - session-wide data (`SessionData`): what the tracker announced (userID, metadata, timestamp, ...)
 *   plus fields derived from the handshake (User-Agent, geo). Every tab's connect and every
 *   UPDATE_SESSION deep-merges into it. It carries a version so replicas converge (last writer wins).
 * - per-tab state (`TabState`): `pageTitle`, `active` and when the tab was last active.
 *
 * How tabs combine into the one session REST returns (see `combineSession`):
 * - every session-wide field comes from `SessionData`;
 * - `active` is true if any tab is active;
 * - `pageTitle` is the page title of the most recently active tab (ties: the most recently connected);
 * - `tabIds` lists the connected tabs, oldest first; `tabId` is the tab whose pageTitle it shows;
 *   `live` is always true.
 */

/** JSON values as they arrive on the wire. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The session object REST returns and dashboards receive. Extra tracker fields are kept as announced. */
export interface Session {
  sessionID: string;
  projectKey: string;
  projectId: number | string | null;
  pageTitle: string;
  active: boolean;
  live: true;
  userID: string;
  userUUID: string;
  userAnonymousId: string;
  metadata: Record<string, string>;
  revID: string;
  timestamp: number;
  trackerVersion: string;
  isSnippet: boolean;
  assistOnly: boolean;
  userOs: string | null;
  userBrowser: string | null;
  userBrowserVersion: string | null;
  userDevice: string | null;
  userDeviceType: string;
  userCountry: string | null;
  userState: string | null;
  userCity: string | null;
  tabIds: string[];
  /** The tab that stands for the session (the one whose pageTitle it shows), as OpenReplay's `tabId`. */
  tabId: string | null;
  [extra: string]: JsonValue | undefined;
}

/** Session-wide data with its replication version. `fields` never holds pageTitle/active/tabIds/live. */
export interface SessionData {
  fields: JsonObject;
  /** Grows by one per change; replicas keep the higher (ties: the higher `origin`). */
  version: number;
  /** The node that wrote this version. */
  origin: string;
}

/** One connected tab. */
export interface TabState {
  tabId: string;
  socketId: string;
  nodeId: string;
  pageTitle: string;
  active: boolean;
  connectedAt: number;
  /** Last time the tab connected or reported `active: true`: picks the session's pageTitle. */
  lastActiveAt: number;
}

/** One agent attached to a session's room (not part of the REST view). */
export interface AgentState {
  socketId: string;
  nodeId: string;
  info: JsonObject;
  config: JsonValue;
  joinedAt: number;
}

/** Fields that live on the tab, not on the session data. */
export const TAB_FIELDS: ReadonlySet<string> = new Set(['pageTitle', 'active']);
/** Fields computed by the hub that a tracker may not overwrite. */
export const COMPUTED_FIELDS: ReadonlySet<string> = new Set(['live', 'tabIds', 'tabId', 'projectKey']);
/**
 * Fields the hub derives from a tab's handshake (User-Agent, geo): set when a tab connects, never
 * by a tracker's UPDATE_SESSION (OpenReplay's server let an update overwrite them).
 */
export const DERIVED_FIELDS: ReadonlySet<string> = new Set([
  'userOs', 'userBrowser', 'userBrowserVersion', 'userDevice', 'userDeviceType', 'userCountry', 'userState', 'userCity',
]);
