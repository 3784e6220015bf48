/**
 * Every wire event of the live protocol, with its payload types (see shared/spec/protocol.md).
 * Names are the OpenReplay tracker's and agent player's: they must not change.
 */
import type { JsonObject, JsonValue, Session } from './sessions/model';

export const Identity = { session: 'session', agent: 'agent' } as const;
export type Identity = (typeof Identity)[keyof typeof Identity];

/** Room events the hub itself emits or interprets. Any other event name is relayed as is. */
export const RoomEvent = {
  SESSION_ALREADY_CONNECTED: 'SESSION_ALREADY_CONNECTED',
  SESSION_RECONNECTED: 'SESSION_RECONNECTED',
  SESSION_DISCONNECTED: 'SESSION_DISCONNECTED',
  WEBRTC_CONFIG: 'WEBRTC_CONFIG',
  AGENTS_CONNECTED: 'AGENTS_CONNECTED',
  AGENTS_INFO_CONNECTED: 'AGENTS_INFO_CONNECTED',
  NEW_AGENT: 'NEW_AGENT',
  AGENT_DISCONNECTED: 'AGENT_DISCONNECTED',
  NO_AGENT: 'NO_AGENT',
  UPDATE_SESSION: 'UPDATE_SESSION',
  WEBRTC_AGENT_CALL: 'WEBRTC_AGENT_CALL',
} as const;

/** Payload of tab events once wrapped: `{meta: {tabId, version?}, data}`. */
export type TabPayload = JsonObject & { meta: JsonObject & { tabId: string; version?: number }; data?: JsonValue };

/** An agent's info as announced in the handshake, with its socket id added when sent to tabs. */
export type AgentInfo = JsonObject & { socketId?: string };

/** A project key as REST paths and dashboard subscriptions accept it. */
export const PROJECT_KEY_PATTERN = /^[\w-]{1,256}$/;

/** Default Socket.IO path of the OpenReplay tracker. */
export const DEFAULT_WS_PATH = '/ws-assist/socket';

// ---- /dashboard namespace ----

export const DASHBOARD_NAMESPACE = '/dashboard';

export const DashboardEvent = {
  subscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  diff: 'sessions:diff',
  resync: 'sessions:resync',
  /** `{subscriptionId, code, message}`: the subscription is no longer this connection's (taken over). */
  revoked: 'sessions:revoked',
} as const;

export interface SubscribeRequest {
  projectKey: string;
  filters?: unknown[];
  sort?: string;
  order?: string;
  limit?: number;
  resume?: { subscriptionId: string; seq: number };
}

export type SubscribeAck =
  | { ok: true; subscriptionId: string; seq: number; total: number; sessions: Session[]; resync?: boolean; resumed?: boolean }
  | { ok: false; error: { code: string; message: string } };

export interface SessionsDiff {
  subscriptionId: string;
  seq: number;
  total: number;
  added: Session[];
  updated: Session[];
  removed: string[];
}
