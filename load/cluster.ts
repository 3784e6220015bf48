/**
 * Two-node cluster scenario: `npx tsx load/cluster.ts [options]`.
 *
 * Starts a throw-away redis-server and two hub nodes (hub-a, hub-b) joined through it, fills them
 * with a background population of tracker tabs that keep sending UPDATE_SESSION (so replication
 * is busy), then measures:
 * - cross-node freshness: a tracker on hub-a sends UPDATE_SESSION; the time until hub-b shows the
 *   change (1) in REST (GET one session, polled back to back on a keep-alive connection: each
 *   sample includes up to one REST round trip of polling granularity) and (2) in a `/dashboard`
 *   `sessions:diff` on hub-b (including the hub's diff coalescing window, DASHBOARD_DIFF_WINDOW_MS);
 * - creation freshness: a new tab connecting to hub-a -> its session in hub-b's REST;
 * - REST latency on each node (closed loop, POST search with a filter, and GET list);
 * - hub-b's own replication lag histogram (hub_cluster_replication_lag_seconds);
 * - Redis stalls: Redis frozen (SIGSTOP) for --stall-ms while tabs move from hub-a to hub-b; the
 *   time until each node's REST answers carry X-Hub-Partial (stall detected), and from the thaw
 *   until both nodes list exactly the sessions really connected, unmarked (converged).
 * Only ever talks to 127.0.0.1. Results: printed, and JSON in load/results/cluster-<time>.json.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { sleep, withTimeout } from './lib/async';
import { httpRequest, isRecord } from './lib/http';
import { chooseDefaultHubCommand, findFreePort, ManagedHub, parsePrometheusText, waitReady } from './lib/hub';
import { RedisProcess } from './lib/redis';
import { LatencyHistogram, type LatencySummary } from './lib/stats';

const REPO_ROOT = path.resolve(__dirname, '..');
const WS_PATH = '/ws-assist/socket';
const PROJECT = 'clusterbenchproject0'; // 20 characters, the default project key length

interface Options {
  samples: number;
  createSamples: number;
  background: number;
  restSeconds: number;
  restConcurrency: number;
  updateRate: number;
  heartbeatMs: number;
  stalls: number;
  stallMs: number;
  stallMoves: number;
  build: boolean;
}

const USAGE = `Usage: npx tsx load/cluster.ts [options]
  --samples N            UPDATE_SESSION freshness samples (default 300)
  --create-samples N     new-session freshness samples (default 100)
  --background N         background tabs spread over both nodes (default 2000)
  --rest-seconds S       REST latency run per node and operation (default 5)
  --rest-concurrency N   REST callers in parallel (default 8)
  --update-rate N        background UPDATE_SESSION per second, both nodes, during the measurements (default 500)
  --heartbeat-ms N       CLUSTER_HEARTBEAT_MS of the nodes (default 1000)
  --stalls N             Redis stalls to measure (default 3; 0 = none)
  --stall-ms N           how long each stall lasts (default 2000)
  --stall-moves N        tabs closed on hub-a and opened on hub-b during each stall (default 20)
  --no-build             run dist/ as is (or src/ through tsx when there is no dist/)
  --quick                a smoke run: 40 samples, 200 tabs, 1 s of REST`;

function parseOptions(argv: string[]): Options {
  const o: Options = { samples: 300, createSamples: 100, background: 2000, restSeconds: 5, restConcurrency: 8, updateRate: 500, heartbeatMs: 1000, stalls: 3, stallMs: 2000, stallMoves: 20, build: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${arg} expects a non-negative integer`);
      return v;
    };
    if (arg === '--samples') o.samples = num();
    else if (arg === '--create-samples') o.createSamples = num();
    else if (arg === '--background') o.background = num();
    else if (arg === '--rest-seconds') o.restSeconds = num();
    else if (arg === '--rest-concurrency') o.restConcurrency = Math.max(1, num());
    else if (arg === '--update-rate') o.updateRate = num();
    else if (arg === '--heartbeat-ms') o.heartbeatMs = Math.max(20, num());
    else if (arg === '--stalls') o.stalls = num();
    else if (arg === '--stall-ms') o.stallMs = Math.max(100, num());
    else if (arg === '--stall-moves') o.stallMoves = num();
    else if (arg === '--no-build') o.build = false;
    else if (arg === '--quick') Object.assign(o, { samples: 40, createSamples: 20, background: 200, restSeconds: 1, updateRate: 100, stalls: 1 });
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  return o;
}

const log = (message: string) => process.stdout.write(`${message}\n`);

// ---- clients ----

function tracker(url: string, sessionId: string, tabId: string, metadata: Record<string, string> = {}): Promise<Socket> {
  const socket = io(url, {
    path: WS_PATH,
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 10_000,
    query: {
      peerId: `${PROJECT}-${sessionId}-${tabId}`,
      identity: 'session',
      tabId,
      sessionInfo: JSON.stringify({ sessionID: sessionId, userID: `user-${sessionId}`, metadata: { plan: Number(sessionId) % 2 ? 'trial' : 'free', ...metadata }, timestamp: Date.now(), pageTitle: 'bench' }),
    },
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error) => {
      socket.close();
      reject(err);
    });
  });
}

interface HubNode {
  name: string;
  url: string;
  hub: ManagedHub;
}

function sessionUrl(node: HubNode, sessionId: string): string {
  return `${node.url}/api/v1/${PROJECT}/assist/sessions/${sessionId}`;
}

/** Polls one session on a node until `check` holds; resolves with the time it held (performance.now()). */
async function pollUntil(node: HubNode, sessionId: string, apiKey: string, agent: http.Agent, check: (session: Record<string, unknown>) => boolean, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const res = await httpRequest({ method: 'GET', url: sessionUrl(node, sessionId), headers: { authorization: apiKey }, agent, timeoutMs: 5_000 });
    if (res.status === 200) {
      const body: unknown = JSON.parse(res.body);
      if (isRecord(body) && isRecord(body.data) && check(body.data)) return performance.now();
    }
  }
  throw new Error(`session ${sessionId} not as expected on ${node.name} within ${timeoutMs} ms`);
}

const metadataOf = (s: Record<string, unknown>): Record<string, unknown> => (isRecord(s.metadata) ? s.metadata : {});

// ---- measurements ----

async function measureUpdateFreshness(a: HubNode, b: HubNode, apiKey: string, samples: number): Promise<{ rest: LatencySummary; dashboard: LatencySummary | string }> {
  const sessionId = String(800_000_000 + Math.floor(Math.random() * 1e6));
  const probe = await tracker(a.url, sessionId, 'probe');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const rest = new LatencyHistogram();
  const dashboard = new LatencyHistogram();
  await pollUntil(b, sessionId, apiKey, agent, () => true, 10_000);

  // A dashboard on hub-b following just the probe session.
  const dash = io(`${b.url}/dashboard`, { path: WS_PATH, transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: apiKey } });
  const pending = new Map<string, number>();
  let dashboardProblem: string | undefined;
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      dash.once('connect', () => resolve());
      dash.once('connect_error', (err: Error) => reject(err));
    }), 5_000, 'dashboard connect');
    const ack: unknown = await dash.timeout(5_000).emitWithAck('subscribe', { projectKey: PROJECT, filters: [{ type: 'SESSIONID', operator: 'is', value: [sessionId] }] });
    if (!isRecord(ack) || ack.ok !== true) throw new Error(`subscribe refused: ${JSON.stringify(ack)}`);
    dash.on('sessions:diff', (diff: unknown) => {
      if (!isRecord(diff)) return;
      const changed = [...(Array.isArray(diff.added) ? diff.added : []), ...(Array.isArray(diff.updated) ? diff.updated : [])];
      for (const s of changed) {
        const value = isRecord(s) ? metadataOf(s).probe : undefined;
        const sentAt = typeof value === 'string' ? pending.get(value) : undefined;
        if (sentAt === undefined) continue;
        dashboard.record(performance.now() - sentAt);
        pending.delete(value as string);
      }
    });
  } catch (err) {
    dashboardProblem = `no /dashboard measurement: ${err instanceof Error ? err.message : String(err)}`;
  }

  for (let i = 0; i < samples; i++) {
    const value = `p${i}`;
    const sentAt = performance.now();
    pending.set(value, sentAt);
    probe.emit('UPDATE_SESSION', { meta: { tabId: 'probe', version: 1 }, data: { metadata: { probe: value } } });
    const seenAt = await pollUntil(b, sessionId, apiKey, agent, (s) => metadataOf(s).probe === value, 5_000);
    rest.record(seenAt - sentAt);
    // One change per diff: the hub coalesces changes within its diff window, so the next change
    // waits for this one's diff (otherwise a diff would only show the later value).
    if (dashboardProblem === undefined) {
      const deadline = performance.now() + 2_000;
      while (pending.has(value) && performance.now() < deadline) await sleep(1);
      pending.delete(value);
    }
    // Spread the samples over time (and over the diff window's phases).
    await sleep(Math.random() * 20);
  }
  await sleep(300);
  probe.close();
  dash.close();
  agent.destroy();
  return { rest: rest.summary(), dashboard: dashboardProblem ?? dashboard.summary() };
}

async function measureCreateFreshness(a: HubNode, b: HubNode, apiKey: string, samples: number): Promise<LatencySummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const histogram = new LatencyHistogram();
  const sockets: Socket[] = [];
  for (let i = 0; i < samples; i++) {
    const sessionId = String(700_000_000 + i);
    // From the moment the hub accepted the tab (the connect event) to hub-b's REST showing it.
    const socket = await tracker(a.url, sessionId, 'tab1');
    const connectedAt = performance.now();
    sockets.push(socket);
    histogram.record((await pollUntil(b, sessionId, apiKey, agent, () => true, 5_000)) - connectedAt);
  }
  for (const s of sockets) s.close();
  agent.destroy();
  return histogram.summary();
}

async function measureRest(node: HubNode, apiKey: string, seconds: number, concurrency: number, operation: 'search' | 'list'): Promise<LatencySummary & { requests: number; failed: number }> {
  const histogram = new LatencyHistogram();
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({ filters: [{ type: 'METADATA', source: 'plan', operator: 'is', value: ['trial'] }], limit: 50 });
  const url = `${node.url}/api/v1/${PROJECT}/assist/sessions${operation === 'list' ? '?limit=50' : ''}`;
  const until = performance.now() + seconds * 1000;
  let failed = 0;
  const lane = async () => {
    while (performance.now() < until) {
      const res = await httpRequest(
        operation === 'search' ? { method: 'POST', url, body, headers: { authorization: apiKey }, agent, timeoutMs: 5_000 } : { method: 'GET', url, headers: { authorization: apiKey }, agent, timeoutMs: 5_000 },
      );
      if (res.status === 200) histogram.record(res.latencyMs);
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  agent.destroy();
  const summary = histogram.summary();
  return { ...summary, requests: summary.count + failed, failed };
}

/** Mean and bucket-estimated p99 of hub-b's replication lag histogram, from /metrics. */
async function replicationLag(node: HubNode): Promise<{ count: number; meanMs: number | null; p99UpperBoundMs: number | null }> {
  const res = await httpRequest({ method: 'GET', url: `${node.url}/metrics`, timeoutMs: 5_000 });
  const samples = parsePrometheusText(res.body);
  const count = samples.get('hub_cluster_replication_lag_seconds_count') ?? 0;
  const sum = samples.get('hub_cluster_replication_lag_seconds_sum') ?? 0;
  const buckets = [...samples.entries()]
    .filter(([k]) => k.startsWith('hub_cluster_replication_lag_seconds_bucket'))
    .map(([k, v]) => ({ le: Number(/le="([^"]+)"/.exec(k)?.[1]), v }))
    .filter((b) => Number.isFinite(b.le))
    .sort((x, y) => x.le - y.le);
  const p99 = buckets.find((b) => b.v >= 0.99 * count);
  return { count, meanMs: count > 0 ? (sum / count) * 1000 : null, p99UpperBoundMs: p99 && count > 0 ? p99.le * 1000 : null };
}

/**
 * One node's list: its total and whether the answer is marked partial. Anything but a 200 throws:
 * a refused request carries no partial marker, and counting it as "not partial" once hid a bad
 * query (unknown `sortBy`/`sortOrder`, answered 400) behind a stall measure that printed "-".
 */
async function listState(node: HubNode, apiKey: string): Promise<{ total: number; partial: boolean; ids: string[] }> {
  const res = await fetch(`${node.url}/api/v1/${PROJECT}/assist/sessions?limit=200&sort=timestamp&order=desc`, { headers: { authorization: apiKey }, signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200) throw new Error(`${node.name}: list answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const body: unknown = await res.json();
  const data = isRecord(body) && isRecord(body.data) ? body.data : {};
  const sessions = Array.isArray(data.sessions) ? data.sessions : [];
  return { total: typeof data.total === 'number' ? data.total : -1, partial: res.headers.get('x-hub-partial') === 'true', ids: sessions.map((x) => (isRecord(x) ? String(x.sessionID) : '')).sort() };
}

interface StallSample {
  detectMs: Record<string, number | null>;
  convergeMs: number | null;
}

/**
 * Freezes Redis for `stallMs` while `moves` tabs close on hub-a and their sessions open on hub-b
 * (new sockets, same ids: a navigation behind a balancer). Detect: from the freeze to each node's
 * first REST answer marked partial. Converge: from the thaw until both nodes answer unmarked with
 * the true total and the same newest page.
 */
async function measureStall(redis: RedisProcess, nodes: HubNode[], apiKey: string, movers: Socket[], truthTotal: () => number, stallMs: number, round: number): Promise<{ sample: StallSample; moved: Socket[] }> {
  const [a, b] = nodes as [HubNode, HubNode];
  const detectMs: Record<string, number | null> = {};
  const frozenAt = performance.now();
  redis.freeze();
  const moved: Socket[] = [];
  try {
    const detect = nodes.map(async (node) => {
      while (performance.now() - frozenAt < stallMs) {
        if ((await listState(node, apiKey)).partial) {
          detectMs[node.name] = performance.now() - frozenAt;
          return;
        }
        await sleep(10);
      }
      detectMs[node.name] = null;
    });
    // The moves: close on hub-a, reconnect to hub-b with the same session (refused while hub-b still sees hub-a's tab: retried after the thaw).
    for (const socket of movers) socket.close();
    await Promise.all(detect);
    const left = stallMs - (performance.now() - frozenAt);
    if (left > 0) await sleep(left);
  } finally {
    redis.thaw();
  }
  const thawedAt = performance.now();
  // The tracker retries a refused connection; here every 200 ms until accepted, all movers at once.
  await Promise.all(movers.map(async (socket) => {
    const sessionId = String((socket as Socket & { sessionId?: string }).sessionId);
    for (;;) {
      try {
        const s = await tracker(b.url, sessionId, `tab1`);
        await sleep(50);
        if (s.connected) {
          (s as Socket & { sessionId?: string }).sessionId = sessionId;
          moved.push(s);
          break;
        }
      } catch {
        // refused: retry
      }
      if (performance.now() - thawedAt > 30_000) throw new Error(`stall ${round}: session ${sessionId} not accepted on ${b.name}`);
      await sleep(200);
    }
  }));
  let convergeMs: number | null = null;
  const deadline = thawedAt + 30_000;
  while (performance.now() < deadline) {
    const [sa, sb] = await Promise.all([listState(a, apiKey), listState(b, apiKey)]);
    if (!sa.partial && !sb.partial && sa.total === truthTotal() && sb.total === truthTotal() && sa.ids.join() === sb.ids.join()) {
      convergeMs = performance.now() - thawedAt;
      break;
    }
    await sleep(10);
  }
  return { sample: { detectMs, convergeMs }, moved };
}

// ---- main ----

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(2));
const line = (name: string, s: LatencySummary) => `${name.padEnd(44)} n=${String(s.count).padStart(5)}  p50 ${fmt(s.p50Ms).padStart(7)} ms  p90 ${fmt(s.p90Ms).padStart(7)} ms  p99 ${fmt(s.p99Ms).padStart(7)} ms  max ${fmt(s.maxMs).padStart(7)} ms`;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const apiKey = `bench-${randomBytes(12).toString('hex')}`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(REPO_ROOT, 'load', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const choice = chooseDefaultHubCommand(REPO_ROOT, options.build);
  log(`hub command: ${choice.command} (${choice.note})`);

  const redis = await RedisProcess.start();
  const nodes: HubNode[] = [];
  const cleanup = () => {
    for (const n of nodes) n.hub.killNow();
    redis.stop();
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    for (const name of ['hub-a', 'hub-b']) {
      const port = await findFreePort();
      const hub = ManagedHub.start({
        command: choice.command,
        cwd: REPO_ROOT,
        port,
        apiKey,
        jwtSecret: randomBytes(16).toString('hex'),
        openFileLimit: 20_000,
        logFile: path.join(resultsDir, `cluster-${stamp}.${name}.log`),
        env: { REDIS_URL: redis.url, NODE_ID: name, CLUSTER_HEARTBEAT_MS: String(options.heartbeatMs), CLUSTER_NODE_TTL_MS: String(options.heartbeatMs * 5) },
      });
      const node = { name, url: `http://127.0.0.1:${port}`, hub };
      nodes.push(node);
      await waitReady(node.url, 60_000, () => hub.exit === undefined);
    }
    const [a, b] = nodes as [HubNode, HubNode];
    log(`redis ${redis.url}; ${a.name} ${a.url}; ${b.name} ${b.url}`);

    // Background population, half on each node, connected a few hundred at a time.
    const background: Socket[] = [];
    for (let i = 0; i < options.background; i += 200) {
      const batch = Array.from({ length: Math.min(200, options.background - i) }, (_, j) => tracker(nodes[(i + j) % 2]!.url, String(100_000 + i + j), 'tab1'));
      background.push(...(await Promise.all(batch)));
    }
    const agent = new http.Agent({ keepAlive: true });
    for (const node of nodes) {
      const deadline = performance.now() + 30_000;
      for (;;) {
        const res = await httpRequest({ method: 'GET', url: `${node.url}/api/v1/${PROJECT}/assist/sessions?limit=1`, headers: { authorization: apiKey }, agent, timeoutMs: 5_000 });
        const body: unknown = JSON.parse(res.body);
        if (isRecord(body) && isRecord(body.data) && body.data.total === options.background) break;
        if (performance.now() > deadline) throw new Error(`${node.name} does not show the ${options.background} background sessions`);
        await sleep(100);
      }
    }
    agent.destroy();
    log(`background: ${options.background} sessions, visible on both nodes; ${options.updateRate} UPDATE_SESSION/s among them`);

    // Background changes, every 10 ms a share of the rate, on random background tabs of both nodes.
    let tick = 0;
    const churn = setInterval(() => {
      const count = Math.floor(((tick + 1) * options.updateRate) / 100) - Math.floor((tick * options.updateRate) / 100);
      tick++;
      for (let i = 0; i < count && background.length > 0; i++) {
        const socket = background[Math.floor(Math.random() * background.length)] as Socket;
        socket.emit('UPDATE_SESSION', { meta: { tabId: 'tab1', version: 1 }, data: { metadata: { churn: String(tick) }, active: tick % 2 === 0 } });
      }
    }, 10);

    const update = await measureUpdateFreshness(a, b, apiKey, options.samples);
    const create = await measureCreateFreshness(a, b, apiKey, options.createSamples);
    const rest: Record<string, Awaited<ReturnType<typeof measureRest>>> = {};
    for (const node of nodes) {
      for (const op of ['search', 'list'] as const) rest[`${node.name} ${op}`] = await measureRest(node, apiKey, options.restSeconds, options.restConcurrency, op);
    }
    const lag = await replicationLag(b);

    // Redis stalls while tabs move: the background tabs on hub-a with even indexes are the movers.
    const stalls: StallSample[] = [];
    for (const [i, s] of background.entries()) (s as Socket & { sessionId?: string }).sessionId = String(100_000 + i);
    let onA = background.filter((_, i) => i % 2 === 0);
    for (let round = 0; round < options.stalls; round++) {
      const movers = onA.slice(0, options.stallMoves);
      onA = onA.slice(options.stallMoves);
      const { sample, moved } = await measureStall(redis, nodes, apiKey, movers, () => options.background, options.stallMs, round);
      background.push(...moved);
      stalls.push(sample);
    }
    clearInterval(churn);
    for (const s of background) s.close();

    log('');
    log(`cross-node freshness (change on ${a.name}, seen on ${b.name}), ${options.background} background sessions, ${options.updateRate} background updates/s:`);
    log(line('UPDATE_SESSION -> REST GET on hub-b', update.rest));
    log(typeof update.dashboard === 'string' ? `UPDATE_SESSION -> /dashboard diff on hub-b: ${update.dashboard}` : line('UPDATE_SESSION -> /dashboard diff on hub-b', update.dashboard));
    log(line('new tab connected -> REST GET on hub-b', create));
    log(`hub-b replication lag (its own metric): n=${lag.count} mean ${fmt(lag.meanMs)} ms, p99 <= ${fmt(lag.p99UpperBoundMs)} ms (bucket bound)`);
    if (stalls.length > 0) {
      log('');
      log(`Redis frozen (SIGSTOP) ${options.stallMs} ms, ${options.stallMoves} tabs moving hub-a -> hub-b meanwhile, ${stalls.length} time(s):`);
      for (const [i, st] of stalls.entries()) {
        log(`  stall ${i + 1}: detected (X-Hub-Partial) on ${Object.entries(st.detectMs).map(([n, ms]) => `${n} ${fmt(ms)} ms`).join(', ')}; converged ${fmt(st.convergeMs)} ms after the thaw`);
      }
    }
    log('');
    log(`REST latency, ${options.restConcurrency} callers in a closed loop, ${options.restSeconds} s each:`);
    for (const [name, r] of Object.entries(rest)) log(`${line(name, r)}  (${(r.requests / options.restSeconds).toFixed(0)} req/s, ${r.failed} failed)`);

    const file = path.join(resultsDir, `cluster-${stamp}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ options, freshness: { update, create, replicationLag: lag }, stalls, rest, hubCommand: choice.command }, null, 2)}\n`);
    log(`\nresults: ${path.relative(REPO_ROOT, file)}`);
  } finally {
    await Promise.all(nodes.map((n) => n.hub.stop(5_000)));
    redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`cluster scenario failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
