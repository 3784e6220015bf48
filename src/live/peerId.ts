/** peerId parsing: `<projectKey>-<sessionId>-<tabId>` or `<projectKey>-<sessionId>`. Pure. */
import { randomBytes } from 'node:crypto';

export interface PeerId {
  projectKey: string;
  sessionId: string;
  /** The tab part; generated when the peerId has two parts. */
  tabId: string;
  /** The room of the session: `<projectKey>-<sessionId>`. */
  roomId: string;
}

export type PeerIdResult = { ok: true; value: PeerId } | { ok: false; message: string };

const PART = /^[\w.:]{1,128}$/;

/** `projectKeyLength` 0 accepts any length. */
export function parsePeerId(raw: unknown, projectKeyLength: number, newTabId: () => string = randomTabId): PeerIdResult {
  if (typeof raw !== 'string' || raw === '') return { ok: false, message: 'peerId is missing' };
  if (raw.length > 400) return { ok: false, message: 'peerId is too long' };
  const parts = raw.split('-');
  if (parts.length !== 2 && parts.length !== 3) {
    return { ok: false, message: 'peerId must be <projectKey>-<sessionId> or <projectKey>-<sessionId>-<tabId>' };
  }
  const [projectKey, sessionId, tabId] = parts as [string, string, string | undefined];
  if (projectKeyLength > 0 && projectKey.length !== projectKeyLength) {
    return { ok: false, message: `peerId project key must be ${projectKeyLength} characters` };
  }
  if (!PART.test(projectKey) || !PART.test(sessionId) || (tabId !== undefined && !PART.test(tabId))) {
    return { ok: false, message: 'peerId parts must be non-empty and use letters, digits, _ . : only' };
  }
  return { ok: true, value: { projectKey, sessionId, tabId: tabId ?? newTabId(), roomId: `${projectKey}-${sessionId}` } };
}

function randomTabId(): string {
  return randomBytes(8).toString('hex');
}
