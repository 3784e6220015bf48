/**
 * Socket.IO handlers of the `/dashboard` namespace: authentication, `subscribe` / `unsubscribe`
 * with acks, and delivery of `sessions:diff` with a bounded per-socket buffer. The live query
 * logic is in subscriptions/; the search grammar is the REST one (sessions/query.ts).
 */
import { createHash } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import type { DefaultEventsMap } from 'socket.io/dist/typed-events';
import { verifyToken, withoutBearer } from '../auth';
import type { HubContext } from '../context';
import { ErrorCode } from '../errors';
import { DASHBOARD_NAMESPACE, DashboardEvent, PROJECT_KEY_PATTERN, type SessionsDiff, type SubscribeAck } from '../protocol';
import { isPlainObject } from '../sessions/sessionData';
import { parseSearchQuery } from '../sessions/query';
import type { DiffSink, SubscriptionRegistry } from '../subscriptions/registry';
import { notReady, pendingBytes, refusalError } from './backpressure';
import { releaseHandshake } from './socketMemory';
import { TurnBudgetQueue } from '../turnBudget';

/** Re-exported: it lived here before the relay used it too. */
export { pendingBytes } from './backpressure';

/**
 * Event-loop time subscribe and resume requests may take per turn: each builds a snapshot, and many
 * dashboards subscribing at once held the loop for long (figures: docs/performance.md).
 */
const SUBSCRIBE_BUDGET_MS = 5;

/**
 * Who a dashboard is: an API key (its grants apply per project) or a JWT for one project. `credential`
 * names it for quotas and resume rights without holding the secret (a hash of the key; the JWT's
 * project and subject); `expiresAt` is a JWT's `exp` in ms.
 */
type Principal = ({ kind: 'key'; key: string } | { kind: 'jwt'; projectKey: string; expiresAt: number | undefined }) & { credential: string };

/** Longest timer Node accepts (ms); a JWT expiring later is re-checked then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The credential of a JWT: its project and its subject (`sub`, else `userId`), when it has one. */
export function jwtCredential(projectKey: string, claims: Record<string, unknown>): string {
  const subject = typeof claims.sub === 'string' ? claims.sub : typeof claims.userId === 'string' || typeof claims.userId === 'number' ? String(claims.userId) : '';
  return `jwt:${projectKey}:${subject}`;
}

/** A `resume` field: absent, well-formed, or a refusal message. */
export function readResume(resume: unknown): { subscriptionId: string; seq: number } | undefined | string {
  if (resume === undefined) return undefined;
  if (!isPlainObject(resume)) return 'resume: expected {subscriptionId, seq}';
  const { subscriptionId, seq } = resume;
  if (typeof subscriptionId !== 'string' || subscriptionId.length === 0 || subscriptionId.length > 64) return 'resume.subscriptionId: expected the id of a subscription';
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return 'resume.seq: expected the seq of the last diff applied (an integer, 0 or more)';
  return { subscriptionId, seq };
}

interface DashboardSocketData {
  principal: Principal;
}
type DashboardSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, DashboardSocketData>;

function looksLikeJwt(token: string): boolean {
  return token.split('.').length === 3;
}

function refuse(code: ErrorCode, message: string): SubscribeAck {
  return { ok: false, error: { code, message } };
}

export function attachDashboards(io: Server, ctx: HubContext, registry: SubscriptionRegistry): void {
  const nsp = (io as unknown as Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, DashboardSocketData>).of(DASHBOARD_NAMESPACE);
  const { config, metrics, apiKeys, logger } = ctx;
  const subscribes = new TurnBudgetQueue(SUBSCRIBE_BUDGET_MS, (error) => {
    logger.error({ err: error instanceof Error ? error.message : String(error) }, 'dashboard subscribe failed');
  });

  nsp.use((socket, next) => {
    if (ctx.lifecycle() !== 'ready') return next(notReady(ctx, 'the hub is not accepting connections (starting or shutting down)'));
    const raw = socket.handshake.auth?.token;
    const token = typeof raw === 'string' ? withoutBearer(raw) : '';
    if (token && looksLikeJwt(token)) {
      const verified = verifyToken(token, ctx.jwtSecret);
      const projectKey = verified.ok ? verified.claims.projectKey : undefined;
      if (verified.ok && typeof projectKey === 'string' && projectKey !== '') {
        const exp = verified.claims.exp;
        socket.data.principal = { kind: 'jwt', projectKey, expiresAt: typeof exp === 'number' ? exp * 1000 : undefined, credential: jwtCredential(projectKey, verified.claims) };
        return next();
      }
    } else if (token && apiKeys.check(token, '') !== 'invalid') {
      socket.data.principal = { kind: 'key', key: token, credential: `key:${createHash('sha256').update(token).digest('base64url')}` };
      return next();
    }
    metrics.connectsRefused.inc({ reason: 'dashboard_auth' });
    ctx.refusals?.handshake('dashboard_auth');
    logger.debug({ reason: 'dashboard_auth', namespace: DASHBOARD_NAMESPACE, address: socket.handshake.address }, 'handshake refused');
    next(refusalError(ErrorCode.UNAUTHORIZED, 'Authentication error: auth.token must be an API key or a JWT with a projectKey claim'));
  });

  nsp.on('connection', (socket: DashboardSocket) => {
    releaseHandshake(socket);
    metrics.connections.inc({ role: 'dashboard' });
    const held = new Set<string>();
    const { principal } = socket.data;
    /** Subscribe and resume requests of this socket waiting for their turn. */
    let queued = 0;
    /**
     * The refusal of one request more than a socket may have: it may hold at most the per-socket
     * number of subscriptions (those waiting count), and have at most that many requests waiting,
     * resumes of a subscription it holds included.
     */
    const overSocketLimit = (holdsIt: boolean): SubscribeAck | undefined =>
      queued >= config.maxSubscriptionsPerSocket || (!holdsIt && held.size + queued >= config.maxSubscriptionsPerSocket)
        ? refuse(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `a socket may hold at most ${config.maxSubscriptionsPerSocket} subscriptions`)
        : undefined;
    /** An ack carries a snapshot: past the buffer bound it is refused (the dashboard is not reading). */
    const overBuffer = (): SubscribeAck | undefined =>
      pendingBytes(socket) > config.dashboardBufferBytes ? refuse(ErrorCode.SLOW_CONSUMER, 'this connection has not read what was sent to it; retry later') : undefined;
    let expiry: NodeJS.Timeout | undefined;
    const armExpiry = (): void => {
      if (principal.kind !== 'jwt' || principal.expiresAt === undefined) return;
      const left = principal.expiresAt - Date.now();
      if (left > MAX_TIMER_MS) {
        expiry = setTimeout(armExpiry, MAX_TIMER_MS);
        return;
      }
      expiry = setTimeout(() => {
        socket.emit('error', { code: ErrorCode.TOKEN_EXPIRED, message: 'the token expired: connect again with a fresh one' });
        socket.disconnect(true);
      }, Math.max(0, left));
    };
    armExpiry();
    const sink: DiffSink = {
      deliver(diff: SessionsDiff): boolean {
        if (pendingBytes(socket) > config.dashboardBufferBytes) return false;
        socket.emit(DashboardEvent.diff, diff);
        return true;
      },
      resync(subscriptionId: string, reason: string): void {
        // Queued even past the bound: it is small, and at most one per subscription until the
        // dashboard subscribes again, so the buffer stays bounded; without it the view would go stale.
        socket.emit(DashboardEvent.resync, { subscriptionId, reason });
      },
      revoked(subscriptionId: string, reason: string): void {
        held.delete(subscriptionId);
        socket.emit(DashboardEvent.revoked, { subscriptionId, code: ErrorCode.SUBSCRIPTION_TAKEN_OVER, message: reason });
      },
    };

    const allowed = (projectKey: string): boolean => {
      const p = socket.data.principal;
      return p.kind === 'jwt' ? p.projectKey === projectKey : apiKeys.check(p.key, projectKey) === 'ok';
    };

    socket.on(DashboardEvent.subscribe, (request: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const reply = ack as (answer: SubscribeAck) => void;
      if (!isPlainObject(request)) return reply(refuse(ErrorCode.BAD_REQUEST, 'subscribe expects an object {projectKey, filters, sort, order, limit}'));
      const projectKey = request.projectKey;
      if (typeof projectKey !== 'string' || !PROJECT_KEY_PATTERN.test(projectKey)) return reply(refuse(ErrorCode.BAD_REQUEST, 'projectKey: expected a project key'));
      if (!allowed(projectKey)) return reply(refuse(ErrorCode.FORBIDDEN, `this token may not read project ${projectKey}`));
      if (request.page !== undefined && request.page !== 1) return reply(refuse(ErrorCode.BAD_REQUEST, 'page: subscriptions follow the first page; use limit'));
      const { resume, projectKey: _p, ...query } = request;
      const parsed = parseSearchQuery(query);
      if (!parsed.ok) return reply(refuse(parsed.filterError ? ErrorCode.INVALID_FILTER : ErrorCode.BAD_REQUEST, parsed.message));

      const resuming = readResume(resume);
      if (typeof resuming === 'string') return reply(refuse(ErrorCode.BAD_REQUEST, resuming));
      const refusal = overSocketLimit(resuming !== undefined && held.has(resuming.subscriptionId));
      if (refusal) return reply(refusal);
      // Snapshots are built in budgeted turns; a socket gone by then gets nothing and holds nothing.
      queued++;
      subscribes.push(() => {
        queued--;
        if (!socket.connected) return;
        const full = overBuffer();
        if (full) return reply(full);
        if (resuming) {
          const result = registry.resume(resuming.subscriptionId, resuming.seq, projectKey, sink, principal.credential);
          if (result) {
            held.add(resuming.subscriptionId);
            if (result.kind === 'resync') return reply({ ok: true, ...result.snapshot, resync: true });
            reply({ ok: true, subscriptionId: result.subscriptionId, seq: resuming.seq, total: result.total, sessions: [], resumed: true });
            for (const diff of result.missed) socket.emit(DashboardEvent.diff, diff);
            return;
          }
          metrics.resyncs.inc({ reason: 'unknown_subscription' });
          const refusal = overSocketLimit(false);
          if (refusal) return reply(refusal);
        }
        const snapshot = registry.subscribe(projectKey, parsed.value, sink, principal.credential);
        if (snapshot === 'project-full') {
          return reply(refuse(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `project ${projectKey} has reached ${config.maxSubscriptionsPerProject} subscriptions`));
        }
        if (snapshot === 'credential-full') {
          return reply(refuse(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `this credential holds ${config.maxSubscriptionsPerCredential} subscriptions of project ${projectKey} (DASHBOARD_MAX_SUBSCRIPTIONS_PER_CREDENTIAL)`));
        }
        held.add(snapshot.subscriptionId);
        reply({ ok: true, ...snapshot, ...(resuming ? { resync: true } : {}) });
      });
    });

    socket.on(DashboardEvent.unsubscribe, (request: unknown, ack: unknown) => {
      const id = isPlainObject(request) ? request.subscriptionId : undefined;
      const ok = typeof id === 'string' && held.delete(id) && registry.unsubscribe(id);
      if (typeof ack === 'function') {
        (ack as (a: unknown) => void)(ok ? { ok: true } : refuse(ErrorCode.UNKNOWN_SUBSCRIPTION, 'no such subscription on this connection'));
      }
    });

    socket.on('disconnect', () => {
      metrics.connections.dec({ role: 'dashboard' });
      if (expiry) clearTimeout(expiry);
      for (const id of held) registry.detach(id, sink);
    });
  });
}
