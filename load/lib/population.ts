/**
 * The simulated population of projects, sessions and tabs.
 *
 * Everything is a pure function of an index and the run's `PopulationConfig`, so every worker
 * process derives the same project keys, session ids and session infos without shipping them
 * over IPC: the tracker worker that connects tab #1234 and the REST worker that later asks for
 * its session agree on the ids.
 *
 * Layout: tabs are numbered 0..N-1. Every block of 11 tabs holds 10 sessions, the last of which
 * has two tabs (so ~9% of sessions have 2 tabs, as when a user opens a second browser tab).
 * Session s belongs to project s % projectCount.
 */

export interface PopulationConfig {
  projectCount: number;
  /**
   * A per-run 7-digit prefix of every session id, so that sessions of two runs against the same
   * long-running hub never collide (a collision would look like a duplicate-tab refusal).
   */
  runTag: string;
  /** Date.now() when the run started: session start times are set back from it, identically for every tab. */
  startedAtMs: number;
}

export interface SessionIdentity {
  sessionIndex: number;
  projectIndex: number;
  projectKey: string;
  sessionId: string;
}

export interface TabIdentity extends SessionIdentity {
  tabNumber: number;
  tabId: string;
  /** `<projectKey>-<sessionId>-<tabId>`: the tracker's handshake peerId. */
  peerId: string;
  /** `<projectKey>-<sessionId>`: the session's room, and the agent's peerId. */
  roomId: string;
}

/** The JSON the tracker sends as the `sessionInfo` handshake query (a subset of the real one). */
export interface TrackerSessionInfo {
  pageTitle: string;
  active: boolean;
  assistOnly: boolean;
  sessionID: string;
  projectID: number;
  userID: string;
  userUUID: string;
  metadata: Record<string, string>;
  timestamp: number;
  trackerVersion: string;
  isSnippet: boolean;
  revID: string;
}

const TABS_PER_BLOCK = 11;
const SESSIONS_PER_BLOCK = 10;
export const PROJECT_KEY_LENGTH = 20;
/** Relay pairs use their own sessions, far above any tracker session index. */
export const RELAY_SESSION_INDEX_BASE = 900_000_000;

export function tabIdentity(tabIndex: number, config: PopulationConfig): TabIdentity {
  const block = Math.floor(tabIndex / TABS_PER_BLOCK);
  const slot = tabIndex % TABS_PER_BLOCK;
  const sessionIndex = block * SESSIONS_PER_BLOCK + Math.min(slot, SESSIONS_PER_BLOCK - 1);
  const tabNumber = slot === TABS_PER_BLOCK - 1 ? 1 : 0;
  return tabOfSession(sessionIndex, tabNumber, config);
}

export function tabOfSession(sessionIndex: number, tabNumber: number, config: PopulationConfig): TabIdentity {
  const session = sessionIdentity(sessionIndex, config);
  // Tab ids must not contain '-': the hub splits peerIds on it.
  const tabId = randomToken(sessionIndex, 100 + tabNumber, 10, LOWER_ALNUM);
  const roomId = `${session.projectKey}-${session.sessionId}`;
  return { ...session, tabNumber, tabId, roomId, peerId: `${roomId}-${tabId}` };
}

export function sessionIdentity(sessionIndex: number, config: PopulationConfig): SessionIdentity {
  const projectIndex = sessionIndex % config.projectCount;
  return {
    sessionIndex,
    projectIndex,
    projectKey: projectKeyOf(projectIndex),
    sessionId: `${config.runTag}${String(sessionIndex).padStart(9, '0')}`,
  };
}

/** How many distinct sessions the first `tabCount` tabs belong to. */
export function sessionCountForTabs(tabCount: number): number {
  if (tabCount <= 0) return 0;
  return tabIdentity(tabCount - 1, { projectCount: 1, runTag: '0', startedAtMs: 0 }).sessionIndex + 1;
}

/** A 20-character alphanumeric project key; the same for a given index in every run. */
export function projectKeyOf(projectIndex: number): string {
  return randomToken(projectIndex, 7, PROJECT_KEY_LENGTH, MIXED_ALNUM);
}

/** A 7-digit run tag (see `PopulationConfig.runTag`). */
export function newRunTag(nowMs: number): string {
  return String(1_000_000 + (Math.floor(nowMs / 1000) % 9_000_000));
}

export function userAgentOf(sessionIndex: number): string {
  return weightedPick(USER_AGENTS, unitRandom(sessionIndex, 1));
}

/** What the tracker of this session announces; both tabs of a session announce the same data. */
export function sessionInfoOf(session: SessionIdentity, tabNumber: number, config: PopulationConfig): TrackerSessionInfo {
  const i = session.sessionIndex;
  const first = pick(FIRST_NAMES, unitRandom(i, 2));
  const last = pick(LAST_NAMES, unitRandom(i, 3));
  const company = pick(COMPANIES, unitRandom(i, 4));
  const userKind = unitRandom(i, 5);
  // A third of real sessions are anonymous, others are identified by an email or a product id.
  const userID =
    userKind < 0.4
      ? `${first}.${last}@${company.toLowerCase().replace(/[^a-z]/g, '')}.com`
      : userKind < 0.7
        ? `usr_${Math.floor(unitRandom(i, 6) * 9_000_000) + 1_000_000}`
        : '';
  return {
    pageTitle: pick(PAGE_TITLES, unitRandom(i, 10 + tabNumber)),
    active: true,
    assistOnly: false,
    sessionID: session.sessionId,
    projectID: session.projectIndex + 1,
    userID,
    userUUID: uuidOf(i),
    metadata: { plan: weightedPick(PLANS, unitRandom(i, 7)), company },
    // Sessions started at some point in the last two hours.
    timestamp: config.startedAtMs - Math.floor(unitRandom(i, 8) * 2 * 3600 * 1000),
    trackerVersion: pick(TRACKER_VERSIONS, unitRandom(i, 9)),
    isSnippet: unitRandom(i, 12) < 0.3,
    revID: unitRandom(i, 13) < 0.5 ? '' : `v2.${Math.floor(unitRandom(i, 14) * 40)}.0`,
  };
}

export function pageTitleOf(seed: number): string {
  return pick(PAGE_TITLES, unitRandom(seed, 15));
}

// --- deterministic randomness -------------------------------------------------------------

/** A uniform number in [0, 1) that depends only on (index, salt): a splitmix-style hash. */
export function unitRandom(index: number, salt: number): number {
  let x = (Math.imul(index | 0, 0x9e3779b1) ^ Math.imul(salt | 0, 0x85ebca6b) ^ Math.floor(index / 2 ** 32)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 2 ** 32;
}

const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const MIXED_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomToken(index: number, salt: number, length: number, alphabet: string): string {
  let token = '';
  for (let position = 0; position < length; position++) {
    token += alphabet[Math.floor(unitRandom(index, salt * 131 + position) * alphabet.length)];
  }
  return token;
}

function uuidOf(index: number): string {
  const hex = (salt: number, digits: number): string => {
    let out = '';
    for (let d = 0; d < digits; d++) out += Math.floor(unitRandom(index, 1000 + salt * 64 + d) * 16).toString(16);
    return out;
  };
  return `${hex(1, 8)}-${hex(2, 4)}-4${hex(3, 3)}-${'89ab'[Math.floor(unitRandom(index, 999) * 4)]}${hex(4, 3)}-${hex(5, 12)}`;
}

function pick<T>(items: readonly T[], unit: number): T {
  return items[Math.floor(unit * items.length)] as T;
}

function weightedPick<T>(items: ReadonlyArray<readonly [T, number]>, unit: number): T {
  const totalWeight = items.reduce((sum, [, weight]) => sum + weight, 0);
  let threshold = unit * totalWeight;
  for (const [item, weight] of items) {
    threshold -= weight;
    if (threshold < 0) return item;
  }
  return (items[items.length - 1] as readonly [T, number])[0];
}

// --- data ---------------------------------------------------------------------------------

/** Real browser User-Agent strings, weighted roughly like web traffic (Chrome-heavy). */
const USER_AGENTS: ReadonlyArray<readonly [string, number]> = [
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 14],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36', 3],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 8],
  ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36', 3],
  ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 1],
  ['Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36', 12],
  ['Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.5615.48 Mobile Safari/537.36', 3],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1', 2],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', 4],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:124.0) Gecko/20100101 Firefox/124.0', 2],
  ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0', 1],
  ['Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0', 1],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15', 1],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15', 7],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1', 12],
  ['Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1', 2],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0', 6],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81', 1],
  ['Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.54 Mobile Safari/537.36 EdgA/124.0.2478.49', 1],
  ['Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36', 3],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 OPR/108.0.0.0', 1],
];

export const PLAN_NAMES = ['trial', 'free', 'pro', 'enterprise'] as const;
const PLANS: ReadonlyArray<readonly [string, number]> = [
  ['trial', 25],
  ['free', 40],
  ['pro', 25],
  ['enterprise', 10],
];

const COMPANIES = [
  'Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Vandelay', 'Stark Industries', 'Wayne Enterprises',
  'Wonka', 'Tyrell', 'Cyberdyne', 'Soylent', 'Aperture', 'Black Mesa', 'Massive Dynamic', 'Pied Piper',
  'Dunder Mifflin', 'Gringotts', 'Oceanic', 'Monarch', 'Nakatomi', 'Sirius Cybernetics', 'Prestige Worldwide',
  'Bluth Company', 'Gekko & Co', 'Rekall', 'Buy n Large', 'Oscorp', 'Virtucon', 'Ollivanders',
] as const;

const FIRST_NAMES = [
  'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj',
  'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yuki', 'zoe', 'amir', 'bea', 'chen',
] as const;

const LAST_NAMES = [
  'smith', 'martin', 'garcia', 'muller', 'rossi', 'dubois', 'tanaka', 'kowalski', 'nguyen', 'silva',
  'johnson', 'ivanova', 'hansen', 'novak', 'okafor', 'larsen', 'moreau', 'schmidt', 'fischer', 'kim',
] as const;

const PAGE_TITLES = [
  'Dashboard | Acme App', 'Checkout - Step 2 of 3', 'Pricing', 'Sign in', 'Settings › Billing',
  'Product: Wireless Headphones', 'Search results for "shoes"', 'Cart (3)', 'Help Center', 'Onboarding',
  'Reports — Q3 revenue', 'Inbox (12)', 'Team members', 'OpenReplay Blog', 'Order #48213 confirmation',
] as const;

const TRACKER_VERSIONS = ['16.0.2', '15.0.5', '14.0.13', '14.0.10', '13.0.2'] as const;
