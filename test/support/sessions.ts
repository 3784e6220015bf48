/**
 * Fixtures and builders for the pure session core: complete `Session` objects, tabs, session data,
 * index operations and parsed queries. Unit tests build everything from here.
 */
import type { AgentState, JsonObject, Session, SessionData, TabState } from '../../src/sessions/model';
import type { IndexOp } from '../../src/sessions/ops';
import { type SearchQuery, parseSearchQuery } from '../../src/sessions/query';

/** A 20-character project key, the default length. */
export const PROJECT = 'aYYaFHiagqdXKEmVlmvJ';

/** The search body of the example in shared/spec/rest-api.md. */
export const SPEC_EXAMPLE_SEARCH = {
  filters: [
    { value: ['trial', 'free'], type: 'METADATA', source: 'plan', operator: 'is' },
    { value: ['openreplay'], type: 'USERID', operator: 'contains' },
  ],
  sort: 'timestamp',
  order: 'DESC',
  limit: 10,
  page: 1,
};
export const OTHER_PROJECT = 'bZZbGIjbhrYLfnWmwnwK';

/** A complete session as REST returns it, with every field set to a neutral value. */
export function makeSession(overrides: Partial<Session> = {}): Session {
  return {
    sessionID: '1000',
    projectKey: PROJECT,
    projectId: 3,
    pageTitle: '',
    active: false,
    live: true,
    userID: '',
    userUUID: '',
    userAnonymousId: '',
    metadata: {},
    revID: '',
    timestamp: 0,
    trackerVersion: '',
    isSnippet: false,
    assistOnly: false,
    userOs: null,
    userBrowser: null,
    userBrowserVersion: null,
    userDevice: null,
    userDeviceType: 'desktop',
    userCountry: null,
    userState: null,
    userCity: null,
    tabIds: ['tab-1'],
    tabId: 'tab-1',
    ...overrides,
  } as Session;
}

/** A connected tab; `socketId` defaults to `sock-<tabId>`, times to 1. */
export function makeTab(tabId: string, overrides: Partial<TabState> = {}): TabState {
  return {
    tabId,
    socketId: `sock-${tabId}`,
    nodeId: 'node-a',
    pageTitle: `title ${tabId}`,
    active: true,
    connectedAt: 1,
    lastActiveAt: 1,
    ...overrides,
  };
}

export function makeData(fields: JsonObject, version = 1, origin = 'node-a'): SessionData {
  return { fields, version, origin };
}

export function makeAgent(socketId: string, overrides: Partial<AgentState> = {}): AgentState {
  return { socketId, nodeId: 'node-a', info: { name: socketId }, config: null, joinedAt: 1, ...overrides };
}

export function tabUp(sessionId: string, tab: TabState, data?: SessionData, projectKey = PROJECT): IndexOp {
  return data ? { type: 'tab:up', projectKey, sessionId, tab, data } : { type: 'tab:up', projectKey, sessionId, tab };
}

export function tabDown(sessionId: string, tabId: string, socketId = `sock-${tabId}`, projectKey = PROJECT): IndexOp {
  return { type: 'tab:down', projectKey, sessionId, tabId, socketId };
}

export function dataOp(sessionId: string, data: SessionData, projectKey = PROJECT): IndexOp {
  return { type: 'data', projectKey, sessionId, data };
}

export function agentUp(sessionId: string, agent: AgentState, projectKey = PROJECT): IndexOp {
  return { type: 'agent:up', projectKey, sessionId, agent };
}

export function agentDown(sessionId: string, socketId: string, projectKey = PROJECT): IndexOp {
  return { type: 'agent:down', projectKey, sessionId, socketId };
}

/** Parses a search body and fails loudly if it is refused: for tests that need a valid query. */
export function query(body: unknown = {}): SearchQuery {
  const parsed = parseSearchQuery(body);
  if (!parsed.ok) throw new Error(`query refused: ${parsed.message}`);
  return parsed.value;
}

/** Parses a search body that must be refused and returns the message. */
export function refusal(body: unknown): string {
  const parsed = parseSearchQuery(body);
  if (parsed.ok) throw new Error(`query accepted but should be refused: ${JSON.stringify(body)}`);
  return parsed.message;
}
