/**
 * Composes the hub: configuration -> index and store -> Socket.IO handlers and Express routes on one
 * HTTP server. `startHub` is what index.ts runs and what every integration test starts.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import { ApiKeys, loadApiKeys } from './auth';
import type { ClusterStore, StoreHooks } from './cluster/store';
import { createStore } from './cluster';
import type { Config } from './config';
import { ErrorCode } from './errors';
import type { HubContext, Lifecycle } from './context';
import { createHttpApp, createOpsApp } from './http/app';
import { RefusalLog, capConnections, defaultMaxConnections, effectiveBacklog, readOpenFileLimit, readSomaxconn } from './live/connectionCap';
import { attachDashboards } from './live/dashboard';
import { gateFirstReads } from './live/firstReads';
import { GeoLookup } from './live/geo';
import { attachRooms, refuseLostTab } from './live/rooms';
import { checkSocketInternals } from './live/socketMemory';
import { UserAgentCache } from './live/userAgent';
import { type LifecyclePacing, paceLifecycle, pacedConnects } from './live/lifecyclePacing';
import { refusalError } from './live/backpressure';
import { installReceiverEndGuard } from './live/wsTeardown';
import { type ClosableConnection, closeInTurns } from './live/shutdownPacing';
import { createLogger, type Logger } from './ops/logger';
import { LoopStallMonitor, LoopStallTrace } from './ops/loopStalls';
import { createMetrics } from './ops/metrics';
import { RefusalSummary } from './ops/refusals';
import { DEFAULT_SESSION_DATA_LIMITS } from './sessions/sessionData';
import { SessionIndex } from './sessions/sessionIndex';
import { SubscriptionRegistry } from './subscriptions/registry';
import { TurnBudgetQueue } from './turnBudget';

export interface Hub {
  readonly ctx: HubContext;
  readonly io: IoServer;
  readonly httpServer: HttpServer;
  /** `http://host:port` of the listening server. */
  readonly url: string;
  /** `http://host:port` of the OPS_PORT server (/metrics, /debug/*), when OPS_PORT is set. */
  readonly opsUrl?: string;
  /** Graceful stop: not ready first, stop accepting, close sockets; bounded by SHUTDOWN_TIMEOUT_MS. */
  shutdown(): Promise<void>;
}

export interface HubOptions {
  logger?: Logger;
  /** Builds the cluster store; the default is cluster/index.ts: LocalStore, or the Redis store when REDIS_URL is set. */
  createStore?: (nodeId: string, index: SessionIndex, io: IoServer, ctx: Omit<HubContext, 'store'>, hooks: StoreHooks) => Promise<ClusterStore> | ClusterStore;
}

export async function startHub(config: Config, options: HubOptions = {}): Promise<Hub> {
  // First: a bad MAXMINDDB_FILE stops the start before anything (metrics, sockets) is set up.
  const geo = config.maxmindDbFile ? GeoLookup.open(config.maxmindDbFile) : undefined;
  const logger = options.logger ?? createLogger(config.logLevel);
  if (geo) logger.info('geo: MaxMind database loaded (MAXMINDDB_FILE)');
  let loopStalls: LoopStallMonitor | undefined;
  const metrics = createMetrics({ loopStallMaxMs: () => loopStalls?.takeMaxMs() ?? 0, handleMetrics: config.handleMetrics });
  const index = new SessionIndex();
  const nodeId = config.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const apiKeys = new ApiKeys(loadApiKeys(config));
  let jwtSecret = config.jwtSecret;
  if (!jwtSecret) {
    jwtSecret = randomBytes(32).toString('hex');
    logger.warn('ASSIST_JWT_SECRET is not set: agents and dashboards cannot authenticate with a JWT until it is');
  }
  if (apiKeys.size === 0) logger.warn('no API key is configured (HUB_API_KEYS or HUB_API_KEYS_FILE): every REST call will get 401');

  let lifecycle: Lifecycle = 'starting';
  const base = {
    config,
    logger,
    metrics,
    index,
    apiKeys,
    jwtSecret,
    sessionLimits: { maxBytes: config.sessionDataMaxBytes, maxDepth: config.sessionDataMaxDepth, maxMetadataKeys: DEFAULT_SESSION_DATA_LIMITS.maxMetadataKeys },
    lifecycle: () => lifecycle,
    refusals: new RefusalSummary(logger, config.logSummaryMs),
    restTurns: config.restTurnMs > 0 ? new TurnBudgetQueue(config.restTurnMs, (error) => logger.error({ err: error }, 'error in a REST turn')) : undefined,
  };

  // Real trackers put sessionInfo in the query string: Node's 16 KiB default header limit answers 431.
  // The request handler is installed before Socket.IO attaches: engine.io then hands Express only
  // the requests outside its path (otherwise Express would also answer long-polling with a 404).
  let app: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const httpServer = createServer({ maxHeaderSize: config.maxHeaderSize }, (req, res) => {
    // While shutting down, every answer closes its connection: a keep-alive client reconnects
    // (to another node) instead of having its next request reset when the server closes.
    if (lifecycle === 'draining' || lifecycle === 'stopped') {
      res.shouldKeepAlive = false;
      res.setHeader('connection', 'close');
    }
    if (app) app(req, res);
    else res.writeHead(503).end();
  });
  // A mass disconnect otherwise builds one discarded stack-traced error per socket (see wsTeardown.ts).
  installReceiverEndGuard();
  const maxConnections = config.maxConnections > 0 ? config.maxConnections : defaultMaxConnections(readOpenFileLimit());
  let openConnections = (): number => 0;
  const io = new IoServer(httpServer, {
    allowRequest: capConnections(maxConnections, () => openConnections(), metrics, logger),
    path: config.wsPath,
    cors: { origin: config.corsOrigin === '*' ? true : config.corsOrigin.split(','), credentials: true },
    maxHttpBufferSize: config.maxHttpBufferSize,
    perMessageDeflate: config.compression,
    httpCompression: config.compression ? { threshold: 1024 } : false,
  });
  openConnections = () => io.engine.clientsCount;
  metrics.maxConnections.set(maxConnections);
  // Past the listener's start: an accept that fails (out of descriptors) is logged, never fatal.
  const acceptErrors = new RefusalLog(logger);
  httpServer.on('error', (err: NodeJS.ErrnoException) => {
    if (lifecycle === 'starting') return;
    acceptErrors.refused({ code: err.code }, 'HTTP server error (out of file descriptors?)');
  });
  // OpenReplay's ingress strips /ws-assist before its assist server, which serves Socket.IO at
  // /socket: requests on an alias path are rewritten to WS_PATH before engine.io looks at them.
  if (config.wsPathAliases.length > 0) {
    const rewrite = (req: IncomingMessage): void => {
      const url = req.url ?? '';
      for (const alias of config.wsPathAliases) {
        if (url.startsWith(alias) && (url.length === alias.length || url[alias.length] === '/' || url[alias.length] === '?')) {
          req.url = config.wsPath + url.slice(alias.length);
          return;
        }
      }
    };
    httpServer.prependListener('request', rewrite);
    httpServer.prependListener('upgrade', rewrite);
  }
  // Last of the 'upgrade' listeners: from here on they run in bounded turns.
  let pacing: LifecyclePacing | undefined;
  if (config.lifecycleTurnMs > 0) {
    const upgradesRefused = new RefusalLog(logger);
    pacing = paceLifecycle(httpServer, {
      turnMs: config.lifecycleTurnMs,
      maxQueuedUpgrades: config.maxQueuedUpgrades > 0 ? config.maxQueuedUpgrades : maxConnections > 0 ? maxConnections : Number.MAX_SAFE_INTEGER,
      onQueueFull: () => {
        metrics.connectsRefused.inc({ reason: 'upgrade_queue_full' });
        upgradesRefused.refused({ maxQueuedUpgrades: config.maxQueuedUpgrades }, 'WebSocket upgrade answered 503: MAX_QUEUED_UPGRADES upgrades are already waiting');
      },
      onError: (error) => logger.error({ err: error }, 'error in a paced WebSocket upgrade or teardown'),
      onTurnEnd: (left) => metrics.queuedLifecycleJobs.set(left),
      engine: io.engine,
    });
    if (config.maxUnreadConnections > 0) gateFirstReads(httpServer, { maxReading: config.maxUnreadConnections, expireMs: config.firstReadExpireMs });
    if (!pacing.endsDeferred) logger.warn({}, "socket ends handled where libuv reads them: Node's stream read internals differ from what src/live/deferredEof.ts expects (a mass disconnect stalls the loop longer)");
  }
  const trace = config.debugLoopStallMs > 0 ? loopStallTrace(config.debugLoopStallMs, httpServer, pacing, base.restTurns, logger) : undefined;
  loopStalls = new LoopStallMonitor(undefined, (previousAt, now, stallMs) => {
    metrics.observeLoopStall(stallMs);
    trace?.onTick(previousAt, now, stallMs);
  });
  loopStalls.start();
  const store = await (options.createStore ?? createStore)(nodeId, index, io, base, { refuseTab: (socketId) => refuseLostTab(io, socketId) });
  const ctx: HubContext = { ...base, store };

  index.onChange(() => metrics.liveSessions.set(index.size));
  app = createHttpApp(ctx, { internal: config.opsPort === undefined });
  checkSocketInternals(logger);
  // First middleware of the tabs' and agents' namespace: their connects take turns with upgrades and teardowns.
  if (pacing) {
    io.use(
      pacedConnects(pacing, () => {
        metrics.connectsRefused.inc({ reason: 'connect_pending' });
        base.refusals.handshake('connect_pending');
        return refusalError(ErrorCode.BAD_REQUEST, 'a connect is already waiting on this connection');
      }),
    );
  }
  attachRooms(io, ctx, new UserAgentCache(config.uaCacheSize), geo);
  const subscriptions = new SubscriptionRegistry(
    index,
    { diffWindowMs: config.diffWindowMs, maxPerProject: config.maxSubscriptionsPerProject, maxPerCredential: config.maxSubscriptionsPerCredential, historySize: config.diffHistorySize, historyAgeMs: config.diffHistoryAgeMs },
    metrics,
  );
  attachDashboards(io, ctx, subscriptions);

  await store.start();
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const url = urlOf(httpServer);
  let opsServer: HttpServer | undefined;
  if (config.opsPort !== undefined) {
    const server = createServer(createOpsApp(ctx));
    opsServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.opsPort, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  const opsUrl = opsServer ? urlOf(opsServer) : undefined;
  lifecycle = 'ready';
  // The kernel caps the backlog without a word: the log says what the listener really got.
  const somaxconn = readSomaxconn();
  const listenBacklog = effectiveBacklog(config.listenBacklog, somaxconn);
  logger.info({ url, opsUrl, nodeId, wsPath: config.wsPath, apiKeys: apiKeys.size, maxConnections, listenBacklog, somaxconn }, 'hub listening');

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      lifecycle = 'draining';
      logger.info({ drainMs: config.shutdownDrainMs }, 'shutting down: not ready, closing sockets after the drain delay');
      // /ready answers 503 from now on, while everything else is still served: the load balancer
      // has SHUTDOWN_DRAIN_MS to stop routing here before the listener closes.
      if (config.shutdownDrainMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
      const drain = (async () => {
        await store.close(true);
        // Keep-alive connections busy when the server stopped listening would hold close() until the deadline.
        const idle = setInterval(() => httpServer.closeIdleConnections(), 50);
        // A batch per turn (shutdownPacing.ts): io.close() would close every connection in one turn.
        if (config.lifecycleTurnMs > 0) {
          // engine.io's own close() walks this map too; it is `protected` in its types only.
          const { clients } = io.engine as unknown as { clients: Record<string, ClosableConnection> };
          await closeInTurns(Object.values(clients), config.lifecycleTurnMs, (error) => logger.error({ err: error }, 'error closing a connection at shutdown'));
        }
        // io.close() disconnects every socket left and closes the HTTP server (stops accepting).
        await new Promise<void>((resolve) => {
          void io.close(() => resolve());
        });
        clearInterval(idle);
        httpServer.closeAllConnections();
      })();
      await Promise.race([drain, deadline]);
      subscriptions.close();
      httpServer.closeAllConnections();
      // Last: /metrics stays scrapeable while the hub drains.
      if (opsServer) {
        opsServer.closeAllConnections();
        await new Promise<void>((resolve) => opsServer.close(() => resolve()));
      }
      lifecycle = 'stopped';
      loopStalls?.stop();
      trace?.stop();
      base.refusals.close();
      logger.info('hub stopped');
    })();
    return stopping;
  };

  return { ctx, io, httpServer, url, opsUrl, shutdown };
}

/** HUB_DEBUG_LOOP_STALL_MS: each long stall logged with the work of the hub's queues and requests in it. */
function loopStallTrace(thresholdMs: number, httpServer: HttpServer, pacing: LifecyclePacing | undefined, restTurns: TurnBudgetQueue | undefined, logger: Logger): LoopStallTrace {
  let requests = 0;
  let connections = 0;
  httpServer.on('request', () => {
    requests++;
  });
  httpServer.on('connection', () => {
    connections++;
  });
  const counters = [
    { name: 'connectionsAccepted', read: () => connections },
    { name: 'upgradesRead', read: () => pacing?.upgradesRead ?? 0 },
    { name: 'socketReads', read: () => pacing?.socketReads ?? 0 },
    { name: 'socketsEnded', read: () => pacing?.socketsEnded ?? 0 },
    { name: 'leavesRead', read: () => pacing?.leavesRead ?? 0 },
    { name: 'lifecycleTurns', read: () => pacing?.stats.turns ?? 0 },
    { name: 'lifecycleJobs', read: () => pacing?.stats.jobs ?? 0 },
    { name: 'lifecycleBusyMs', read: () => Math.round(pacing?.stats.busyMs ?? 0) },
    { name: 'restJobs', read: () => restTurns?.stats.jobs ?? 0 },
    { name: 'restBusyMs', read: () => Math.round(restTurns?.stats.busyMs ?? 0) },
    { name: 'httpRequests', read: () => requests },
  ];
  logger.warn({ thresholdMs }, 'tracing event-loop stalls (HUB_DEBUG_LOOP_STALL_MS)');
  return new LoopStallTrace(thresholdMs, counters, (report) => logger.warn({ loopStall: report }, 'event-loop stall'));
}

/** `http://host:port` of a listening server (the loopback address when it listens on every interface). */
function urlOf(server: HttpServer): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
}
