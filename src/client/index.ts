/**
 * `live-session-hub/client`: the typed, browser-safe dashboard client (ESM and CJS builds, types).
 * Its only runtime dependency is socket.io-client.
 */
export {
  DashboardClient,
  LiveSubscription,
  SubscribeError,
  type ClientEvents,
  type ConnectionState,
  type DashboardClientOptions,
  type DashboardQuery,
  type SubscriptionEvents,
  type TokenProvider,
} from './dashboardClient';
export { Emitter, type EventMap } from './emitter';
export { LiveView, type ApplyResult } from './liveView';
export { FILTER_ATTRIBUTES, QUERY_LIMITS, SORTABLE_ATTRIBUTES, compareSessions, type FilterType, type Operator, type SortOrder } from '../sessions/grammar';
export { DASHBOARD_NAMESPACE, DEFAULT_WS_PATH, DashboardEvent, type SessionsDiff, type SubscribeAck, type SubscribeRequest } from '../protocol';
export type { JsonObject, JsonValue, Session } from '../sessions/model';
