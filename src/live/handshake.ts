/**
 * Reads a Socket.IO handshake into what the hub needs of it, or a refusal with a clear message.
 * Nothing of the raw handshake is kept afterwards: the parsed result is all a socket carries.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config';
import { verifyToken } from '../auth';
import type { JsonObject, JsonValue } from '../sessions/model';
import { type SessionDataLimits, isPlainObject, parseSessionInfo } from '../sessions/sessionData';
import { type PeerId, parsePeerId } from './peerId';
import { type GeoLookup, addressOf } from './geo';
import type { UserAgentCache } from './userAgent';

export interface TrackerHandshake {
  role: 'session';
  peer: PeerId;
  /** sessionInfo as announced, plus the fields derived from the request. */
  info: JsonObject;
}

export interface AgentHandshake {
  role: 'agent';
  peer: PeerId;
  info: JsonObject;
  /** As sent: a JSON string from real players; null when absent. */
  config: JsonValue;
}

export type Handshake = TrackerHandshake | AgentHandshake;

/** Why a handshake was refused: `message` goes to the client in `connect_error`. */
export interface Refusal {
  reason: 'identity' | 'peerId' | 'sessionInfo' | 'authentication' | 'authorization' | 'agentInfo';
  message: string;
}

export interface HandshakeInput {
  query: Record<string, unknown>;
  auth: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  /** The socket's peer address (Socket.IO's `handshake.address`). */
  address?: string;
}

export interface HandshakeDeps {
  config: Config;
  jwtSecret: string;
  sessionLimits: SessionDataLimits;
  userAgents: UserAgentCache;
  /** The MaxMind database, when MAXMINDDB_FILE is set. */
  geo?: GeoLookup;
}

/** A header's value; `maxLength` bounds geo headers (User-Agents are longer, and bounded by the UA cache). */
function header(headers: IncomingHttpHeaders, name: string | undefined, maxLength = 128): string | null {
  if (!name) return null;
  const v = headers[name.toLowerCase()];
  const s = Array.isArray(v) ? v[0] : v;
  return s && s.length <= maxLength ? s : null;
}

function parseJsonObjectParam(raw: unknown, name: string, maxBytes: number): { ok: true; value: JsonObject } | { ok: false; message: string } {
  if (raw === undefined || raw === null || raw === '') return { ok: true, value: {} };
  if (isPlainObject(raw)) return { ok: true, value: raw };
  if (typeof raw !== 'string') return { ok: false, message: `${name} must be a JSON string` };
  if (raw.length > maxBytes) return { ok: false, message: `${name} is longer than ${maxBytes} characters` };
  try {
    const value: unknown = JSON.parse(raw);
    if (isPlainObject(value)) return { ok: true, value };
  } catch {
    return { ok: false, message: `${name} is not valid JSON` };
  }
  return { ok: false, message: `${name} must be a JSON object` };
}

/**
 * An agent's `config`: any JSON value (the real player sends its ICE servers as an array,
 * `JSON.stringify(iceServers)`). Tabs receive it exactly as the agent sent it, the JSON text
 * unparsed, as the OpenReplay server passes it on (the tracker parses it itself); absent (or
 * empty) is null, which is what the reference's tabs get from an agent that sent none. Text that
 * is not JSON is refused: no tracker could read it.
 */
function parseConfigParam(raw: unknown, maxBytes: number): { ok: true; value: JsonValue } | { ok: false; message: string } {
  if (raw === undefined || raw === null || raw === '') return { ok: true, value: null };
  if (typeof raw !== 'string') return { ok: false, message: 'config must be a JSON string' };
  if (raw.length > maxBytes) return { ok: false, message: `config is longer than ${maxBytes} characters` };
  try {
    JSON.parse(raw);
  } catch {
    return { ok: false, message: 'config is not valid JSON' };
  }
  return { ok: true, value: detached(raw) as string };
}

/**
 * A copy of a query-string value that shares no memory with the request URL. V8 keeps substrings
 * as slices of their parent string: the peerId parts and an agent's config, kept for the socket's
 * whole life, would otherwise keep the URL (sessionInfo included) alive with them.
 */
function detached(value: unknown): unknown {
  return typeof value === 'string' ? (JSON.parse(JSON.stringify(value)) as string) : value;
}

export function readHandshake(input: HandshakeInput, deps: HandshakeDeps): { ok: true; value: Handshake } | { ok: false; refusal: Refusal } {
  const identity = input.query.identity;
  if (identity !== 'session' && identity !== 'agent') {
    return { ok: false, refusal: { reason: 'identity', message: 'identity must be "session" or "agent"' } };
  }
  const peer = parsePeerId(detached(input.query.peerId), deps.config.projectKeyLength);
  if (!peer.ok) return { ok: false, refusal: { reason: 'peerId', message: peer.message } };

  if (identity === 'session') {
    // Real trackers send sessionInfo in the query; `auth` is accepted too (no URL length limits there).
    const parsed = parseSessionInfo(input.query.sessionInfo ?? input.auth.sessionInfo, deps.sessionLimits);
    if (!parsed.ok) return { ok: false, refusal: { reason: 'sessionInfo', message: parsed.message } };
    const ua = deps.userAgents.fields(header(input.headers, 'user-agent', Infinity) ?? undefined);
    // Not `{ ...parsed.value, ...ua, userCountry, ... }`: V8 gave each object built that way hidden
    // classes of its own, allocated in old space per connect (measured in docs/performance.md).
    // Nor a copy: parseSessionInfo's result is a fresh object of this connect's own, so the derived
    // fields are set on it, in the same order and with the same overrides as a copy would have.
    // Geo: the trusted geo headers first, then the MaxMind database on the client's address.
    const fromDb = deps.geo?.lookup(addressOf(deps.config.clientIpHeader ? input.headers[deps.config.clientIpHeader] : undefined, input.address));
    const info: JsonObject = Object.assign(parsed.value, ua);
    info.userCountry = header(input.headers, deps.config.geoCountryHeader) ?? fromDb?.userCountry ?? null;
    info.userState = header(input.headers, deps.config.geoStateHeader) ?? fromDb?.userState ?? null;
    info.userCity = header(input.headers, deps.config.geoCityHeader) ?? fromDb?.userCity ?? null;
    return { ok: true, value: { role: 'session', peer: peer.value, info } };
  }

  const token = verifyToken(input.auth.token, deps.jwtSecret);
  if (!token.ok) return { ok: false, refusal: { reason: 'authentication', message: 'Authentication error' } };
  const { projectKey, sessionId } = token.claims as { projectKey?: unknown; sessionId?: unknown };
  if (String(projectKey) !== peer.value.projectKey || String(sessionId) !== peer.value.sessionId) {
    return { ok: false, refusal: { reason: 'authorization', message: 'Authorization error' } };
  }
  const agentInfo = parseJsonObjectParam(input.query.agentInfo, 'agentInfo', deps.sessionLimits.maxBytes);
  if (!agentInfo.ok) return { ok: false, refusal: { reason: 'agentInfo', message: agentInfo.message } };
  const config = parseConfigParam(input.query.config, deps.sessionLimits.maxBytes);
  if (!config.ok) return { ok: false, refusal: { reason: 'agentInfo', message: config.message } };
  return { ok: true, value: { role: 'agent', peer: peer.value, info: agentInfo.value, config: config.value } };
}
