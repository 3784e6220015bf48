/** What the hub's adapters (Socket.IO handlers, Express routes) share: built once in server.ts. */
import type { ApiKeys } from './auth';
import type { ClusterStore } from './cluster/store';
import type { Config } from './config';
import type { Logger } from './ops/logger';
import type { Metrics } from './ops/metrics';
import type { RefusalSummary } from './ops/refusals';
import type { SessionIndexView } from './sessions/sessionIndex';
import type { SessionDataLimits } from './sessions/sessionData';
import type { TurnBudgetQueue } from './turnBudget';

export type Lifecycle = 'starting' | 'ready' | 'draining' | 'stopped';

export interface HubContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Read-only: changes go through `store.publish` (docs/architecture.md). */
  readonly index: SessionIndexView;
  readonly store: ClusterStore;
  readonly apiKeys: ApiKeys;
  readonly jwtSecret: string;
  readonly sessionLimits: SessionDataLimits;
  /** Info-level summaries of refused handshakes and 401/403/429 (absent: not summarised). */
  readonly refusals?: RefusalSummary;
  /**
   * REST work that walks a project's sessions (list, search, autocomplete) runs here, in turns of
   * REST_TURN_MS with I/O between them: 16 clients searching must not hold the relay and the
   * dashboards' diffs for 16 searches at a time. Absent: at once. The trade (relay latency against
   * REST throughput) is measured in docs/performance.md, "Work in turns".
   */
  readonly restTurns?: TurnBudgetQueue;
  /** Where the hub is in its life: only 'ready' serves /ready with 200. */
  lifecycle(): Lifecycle;
}
