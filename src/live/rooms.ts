/**
 * Socket.IO handlers of the default namespace: tracker tabs and agents in session rooms.
 * A thin adapter: handshakes are read by handshake.ts, session state lives in the index (changed
 * only through `ctx.store.publish`), and every lookup here (the tabs and agents of a room) reads
 * that room in the index, never a scan of sockets. Room traffic goes through `io.to(...)`, so with the
 * Redis adapter it reaches sockets on other nodes unchanged.
 */
import { performance } from 'node:perf_hooks';
import type { Server, Socket } from 'socket.io';
import type { DefaultEventsMap } from 'socket.io/dist/typed-events';
import type { HubContext } from '../context';
import { snakeCase } from '../ops/metrics';
import { ErrorCode } from '../errors';
import { RoomEvent, type TabPayload } from '../protocol';
import { isPlainObject } from '../sessions/sessionData';
import { findTab } from '../sessions/sessionIndex';
import { TabClock, agentEventTab, lastAgentConfig, tabJoinOp, tabUpdateOp } from '../sessions/tabOps';
import { notReady, pendingBytes, probeAlive, refusalError } from './backpressure';
import type { GeoLookup } from './geo';
import { type AgentHandshake, type Handshake, type Refusal, type TrackerHandshake, readHandshake } from './handshake';
import type { PeerId } from './peerId';
import { compactSocket, releaseHandshake } from './socketMemory';
import type { UserAgentCache } from './userAgent';

/**
 * What a connected socket carries: its role and peer, nothing of the raw request. The parsed
 * handshake (sessionInfo, agent info) is held only until the connection handler has used it.
 */
export interface LiveSocketData {
  role: Handshake['role'];
  peer: PeerId;
  handshake?: Handshake;
  /** Set when the hub refused the socket after connecting (duplicate tab): its leave is silent. */
  refused?: boolean;
}

// Relayed events are arbitrary names with arbitrary arguments: the event maps are Socket.IO's open default.
type LiveServer = Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, LiveSocketData>;
type LiveSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, LiveSocketData>;

/** Wraps a legacy bare payload as `{meta: {tabId, version: 1}, data}`; a payload with `meta` passes as is. */
export function wrapTabPayload(arg: unknown, tabId: string): TabPayload {
  if (isPlainObject(arg) && isPlainObject(arg.meta)) return arg as TabPayload;
  const meta = { tabId, version: 1 };
  return arg === undefined ? { meta } : ({ meta, data: arg } as TabPayload);
}

/** The error code a handshake refusal carries to the client. */
export function refusalCode(reason: Refusal['reason']): ErrorCode {
  if (reason === 'authentication') return ErrorCode.UNAUTHORIZED;
  if (reason === 'authorization') return ErrorCode.FORBIDDEN;
  return ErrorCode.BAD_REQUEST;
}

/** Whether one more tab may join a room that has `tabs` tabs (a tab already there is a duplicate, decided later). */
export function tabFits(tabs: number, hasTab: boolean, maxTabs: number): boolean {
  return hasTab || tabs < maxTabs;
}

/**
 * The refusal a duplicate tab gets, for a local socket whose tab lost a cross-node race (the cluster
 * store calls it through StoreHooks.refuseTab). Its leave is not silent: other nodes hold its claim,
 * and the `tab:down` it publishes is what removes it there (a silent refusal left ghosts).
 */
export function refuseLostTab(io: Server, socketId: string): void {
  const socket = io.of('/').sockets.get(socketId);
  if (!socket) return;
  socket.emit(RoomEvent.SESSION_ALREADY_CONNECTED);
  socket.disconnect(true);
}

export function attachRooms(io: Server, ctx: HubContext, userAgents: UserAgentCache, geo?: GeoLookup): void {
  const { index, store, metrics, logger } = ctx;
  const live = io as unknown as LiveServer;
  const sockets = live.of('/');
  const to = (target: string | string[]) => live.to(target);
  // Tab times (sessions/tabOps.ts): wall-clock milliseconds with a microsecond fraction.
  const tabClock = new TabClock(() => performance.timeOrigin + performance.now());
  /**
   * Runs a socket handler so that a payload the hub cannot handle (say, nested too deep for the
   * encoder's recursion) costs that one event, never the process or another session. Handlers are
   * made once and shared by every socket (Socket.IO calls them with the socket as `this`): closures
   * per socket and handler cost memory per tab (figures: docs/performance.md, "Figures behind choices in the code").
   */
  const guarded = <A extends unknown[]>(fn: (socket: LiveSocket, ...args: A) => void) =>
    function (this: LiveSocket, ...args: A): void {
      try {
        fn(this, ...args);
      } catch (err) {
        metrics.eventsDropped.inc();
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'socket event dropped');
      }
    };

  const relayBound = ctx.config.relayBufferBytes;
  /**
   * A socket that has more than RELAY_BUFFER_BYTES queued (it stopped reading) is disconnected
   * before anything more is relayed to it: what it holds is freed, and its tracker or player
   * reconnects and starts over, rather than receiving a stream with a hole in it.
   */
  const dropIfSlow = (target: LiveSocket | undefined): void => {
    if (!target || pendingBytes(target) <= relayBound) return;
    metrics.slowPeersDisconnected.inc({ role: target.data.role });
    logger.warn({ role: target.data.role, roomId: target.data.peer?.roomId }, 'peer disconnected: it did not read what was relayed to it');
    target.disconnect(true);
  };
  /** Checks the receivers of a relay on this node (a room's other members, or given socket ids). */
  const dropSlowReceivers = (ids: Iterable<string> | undefined, except?: string): void => {
    if (!ids) return;
    for (const id of [...ids]) if (id !== except) dropIfSlow(sockets.sockets.get(id));
  };

  const onDisconnect = function (this: LiveSocket): void {
    metrics.connections.dec({ role: this.data.role });
    onLeave(this);
  };

  const onTabUpdate = guarded((socket, arg: unknown) => onUpdateSession(socket, socket.data.peer, arg));

  const onTabEvent = guarded((socket, event: string, ...args: unknown[]) => {
    if (event === RoomEvent.UPDATE_SESSION) return;
    const { peer } = socket.data;
    metrics.eventsRelayed.inc({ direction: 'tab_to_room' });
    dropSlowReceivers(sockets.adapter.rooms.get(peer.roomId), socket.id);
    socket.to(peer.roomId).emit(event, wrapTabPayload(args[0], peer.tabId));
  });

  const onAgentCall = guarded((socket, arg: unknown) => {
    const { peer } = socket.data;
    const target = isPlainObject(arg) && isPlainObject(arg.data) ? arg.data.toAgentId : undefined;
    const current = index.room(peer.projectKey, peer.sessionId);
    if (typeof target !== 'string' || target === socket.id || !current?.agents.has(target)) return;
    metrics.eventsRelayed.inc({ direction: 'agent_to_agent' });
    dropIfSlow(sockets.sockets.get(target));
    to(target).emit(RoomEvent.WEBRTC_AGENT_CALL, arg);
  });

  const onAgentEvent = guarded((socket, event: string, ...args: unknown[]) => {
    if (event === RoomEvent.WEBRTC_AGENT_CALL) return;
    const { peer } = socket.data;
    const payload = args[0];
    const tab = agentEventTab(index.room(peer.projectKey, peer.sessionId), payload);
    if (!tab) {
      socket.emit(RoomEvent.SESSION_DISCONNECTED);
      return;
    }
    metrics.eventsRelayed.inc({ direction: 'agent_to_tab' });
    dropIfSlow(sockets.sockets.get(tab.socketId));
    to(tab.socketId).emit(event, socket.id, payload);
  });

  sockets.use((socket, next) => {
    if (ctx.lifecycle() !== 'ready') return next(notReady(ctx, 'the hub is not accepting connections (starting or shutting down)'));
    // A node that has not joined the cluster cannot tell a duplicate tab from a new one: refused until it has.
    if (!ctx.store.status().ready) return next(notReady(ctx, 'the hub is not accepting connections (joining the cluster)'));
    const result = readHandshake(
      { query: socket.handshake.query as Record<string, unknown>, auth: socket.handshake.auth, headers: socket.handshake.headers, address: socket.handshake.address },
      { config: ctx.config, jwtSecret: ctx.jwtSecret, sessionLimits: ctx.sessionLimits, userAgents, geo },
    );
    if (!result.ok) {
      const reason = snakeCase(result.refusal.reason);
      metrics.connectsRefused.inc({ reason });
      ctx.refusals?.handshake(reason);
      // What a support engineer needs to find the client; never its token or sessionInfo.
      const { peerId, identity } = socket.handshake.query;
      logger.debug(
        { reason, message: result.refusal.message, peerId: typeof peerId === 'string' ? peerId.slice(0, 256) : undefined, identity, address: socket.handshake.address },
        'handshake refused',
      );
      return next(refusalError(refusalCode(result.refusal.reason), result.refusal.message));
    }
    socket.data.role = result.value.role;
    socket.data.peer = result.value.peer;
    socket.data.handshake = result.value;
    const { peer } = result.value;
    if (result.value.role === 'session') {
      const room = index.room(peer.projectKey, peer.sessionId);
      if (!tabFits(room?.tabs.length ?? 0, findTab(room, peer.tabId) !== undefined, ctx.config.maxTabsPerSession)) {
        metrics.connectsRefused.inc({ reason: 'too_many_tabs' });
        ctx.refusals?.handshake('too_many_tabs');
        return next(refusalError(ErrorCode.TOO_MANY_TABS, `a session may have at most ${ctx.config.maxTabsPerSession} tabs (MAX_TABS_PER_SESSION)`));
      }
      // A tab that reloads while its old socket is half-open (cut without a FIN) would be refused as
      // a duplicate until that socket's ping timeout (~45 s), longer than the tracker retries. The
      // holder (on this node) gets a ping out of turn: if it does not answer, the newcomer takes its place.
      const holderTab = findTab(room, peer.tabId);
      const holder = holderTab && holderTab.nodeId === store.nodeId && ctx.config.duplicateTabPingMs > 0 ? sockets.sockets.get(holderTab.socketId) : undefined;
      if (holder) {
        void probeAlive(holder, ctx.config.duplicateTabPingMs).then((alive) => {
          if (!alive && holder.connected) {
            metrics.staleTabsReplaced.inc();
            logger.info({ roomId: peer.roomId }, 'duplicate tab: the holder did not answer a ping, the newcomer replaces it');
            holder.disconnect(true);
          }
          next();
        });
        return;
      }
    }
    next();
  });

  sockets.on('connection', (socket) => {
    const hs = socket.data.handshake as Handshake;
    socket.data.handshake = undefined;
    releaseHandshake(socket);
    metrics.connections.inc({ role: hs.role });
    // Before the role handlers: they may refuse the socket (disconnect it) synchronously, and its
    // `disconnect` must still be seen (the connection gauge, the silent leave of a refused tab).
    socket.on('disconnect', onDisconnect);
    if (hs.role === 'session') onTrackerConnect(socket, hs);
    else onAgentConnect(socket, hs);
    compactSocket(socket);
  });

  function onTrackerConnect(socket: LiveSocket, hs: TrackerHandshake): void {
    const { peer } = hs;
    const room = index.room(peer.projectKey, peer.sessionId);
    const held = findTab(room, peer.tabId);
    // In a cluster, a tab whose node stopped heartbeating is taken over (its tracker reconnected here).
    if (held && !store.mayReplace?.(held)) {
      socket.data.refused = true;
      metrics.connectsRefused.inc({ reason: 'duplicate_tab' });
      ctx.refusals?.handshake('duplicate_tab');
      logger.debug({ reason: 'duplicate_tab', peerId: `${peer.roomId}-${peer.tabId}`, address: socket.handshake.address }, 'handshake refused');
      socket.emit(RoomEvent.SESSION_ALREADY_CONNECTED);
      socket.disconnect(true);
      return;
    }
    const join = tabJoinOp(room, { projectKey: peer.projectKey, sessionId: peer.sessionId, tabId: peer.tabId, socketId: socket.id, nodeId: store.nodeId, info: hs.info }, ctx.sessionLimits, tabClock);
    if (!join.ok) {
      socket.data.refused = true;
      metrics.connectsRefused.inc({ reason: 'session_info' });
      ctx.refusals?.handshake('session_info');
      logger.debug({ reason: 'session_info', message: join.message, peerId: `${peer.roomId}-${peer.tabId}`, address: socket.handshake.address }, 'handshake refused');
      socket.emit('error', { code: 'BAD_REQUEST', message: `sessionInfo refused: ${join.message}` });
      socket.disconnect(true);
      return;
    }
    void socket.join(peer.roomId);
    store.publish(join.op);
    if (room && room.agents.size > 0) {
      const agents = [...room.agents.values()];
      socket.emit(RoomEvent.WEBRTC_CONFIG, lastAgentConfig(room));
      socket.emit(RoomEvent.AGENTS_CONNECTED, agents.map((a) => a.socketId));
      socket.emit(RoomEvent.AGENTS_INFO_CONNECTED, agents.map((a) => ({ ...a.info, socketId: a.socketId })));
      socket.to(peer.roomId).emit(RoomEvent.SESSION_RECONNECTED, socket.id);
    }

    socket.on(RoomEvent.UPDATE_SESSION, onTabUpdate);
    socket.onAny(onTabEvent);
  }

  function onUpdateSession(socket: LiveSocket, peer: PeerId, arg: unknown): void {
    const payload = wrapTabPayload(arg, peer.tabId);
    const room = index.room(peer.projectKey, peer.sessionId);
    const tab = findTab(room, peer.tabId);
    if (!room || !tab || tab.socketId !== socket.id || !room.data) return;
    const update = tabUpdateOp(peer, room, tab, payload.data, ctx.sessionLimits, store.nodeId, tabClock);
    if (!update.ok) {
      metrics.sessionUpdatesRejected.inc();
      logger.warn({ roomId: peer.roomId, reason: update.message }, 'UPDATE_SESSION refused');
      return;
    }
    if (update.op) store.publish(update.op);
    if (room.agents.size > 0) {
      metrics.eventsRelayed.inc({ direction: 'tab_to_agents' });
      dropSlowReceivers(room.agents.keys());
      to([...room.agents.keys()]).emit(RoomEvent.UPDATE_SESSION, payload);
    }
  }

  function onAgentConnect(socket: LiveSocket, hs: AgentHandshake): void {
    const { peer } = hs;
    void socket.join(peer.roomId);
    store.publish({
      type: 'agent:up',
      projectKey: peer.projectKey,
      sessionId: peer.sessionId,
      agent: { socketId: socket.id, nodeId: store.nodeId, info: hs.info, config: hs.config, joinedAt: Date.now() },
    });
    const room = index.room(peer.projectKey, peer.sessionId);
    if (!room || room.tabs.length === 0) socket.emit(RoomEvent.SESSION_DISCONNECTED);
    to(peer.roomId).emit(RoomEvent.WEBRTC_CONFIG, hs.config);
    socket.to(peer.roomId).emit(RoomEvent.NEW_AGENT, socket.id, hs.info);

    socket.on(RoomEvent.WEBRTC_AGENT_CALL, onAgentCall);
    socket.onAny(onAgentEvent);
  }

  function onLeave(socket: LiveSocket): void {
    const { role, peer, refused } = socket.data;
    if (refused) return;
    if (role === 'session') {
      store.publish({ type: 'tab:down', projectKey: peer.projectKey, sessionId: peer.sessionId, tabId: peer.tabId, socketId: socket.id });
    } else {
      store.publish({ type: 'agent:down', projectKey: peer.projectKey, sessionId: peer.sessionId, socketId: socket.id });
      to(peer.roomId).emit(RoomEvent.AGENT_DISCONNECTED, socket.id);
    }
    const room = index.room(peer.projectKey, peer.sessionId);
    if (!room) return;
    if (room.tabs.length === 0) to(peer.roomId).emit(RoomEvent.SESSION_DISCONNECTED);
    // After any leave, as the contract says: each one costs the room's size, so closing N tabs costs
    // N² writes; MAX_TABS_PER_SESSION is what bounds N (docs/protocol-notes.md).
    if (room.agents.size === 0) to(peer.roomId).emit(RoomEvent.NO_AGENT);
  }
}

