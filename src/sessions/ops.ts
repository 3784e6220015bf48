/**
 * Index operations: the only way the session index changes. Live handlers produce them for their
 * own sockets; in a cluster the same operations are replicated to every node, so one stream of
 * operations drives every node's index the same way. Each op carries whole states (never deltas),
 * so applying one twice, or an older one after a newer one, leaves the index as it was.
 */
import type { AgentState, SessionData, TabState } from './model';

export type IndexOp =
  /** A tab connected (or changed its tab fields); `data` set when the session data changed too. */
  | { type: 'tab:up'; projectKey: string; sessionId: string; tab: TabState; data?: SessionData }
  /** A tab left; ignored unless the tab still belongs to `socketId` (a reconnect may have replaced it). */
  | { type: 'tab:down'; projectKey: string; sessionId: string; tabId: string; socketId: string }
  /** Session-wide data changed (UPDATE_SESSION). */
  | { type: 'data'; projectKey: string; sessionId: string; data: SessionData }
  | { type: 'agent:up'; projectKey: string; sessionId: string; agent: AgentState }
  | { type: 'agent:down'; projectKey: string; sessionId: string; socketId: string }
  /** Every tab and agent of a node is gone (it shut down or stopped heartbeating). */
  | { type: 'node:down'; nodeId: string };
