/**
 * Hostile-client scenarios (issue 12), each against a fresh hub it starts from `--root` (default:
 * this checkout; point it at a worktree of an older commit to compare):
 * - `tabs`: one session with N tabs (default 3,000): the tabs join, then all close at once;
 *   `tabs-agent`: the same with an agent in the room (each join is announced to the room);
 * - `relay`: a tab sends 30 x 4 MB to a receiver (another tab, or an agent) that does not read;
 * - `resumes`: a dashboard that does not read sends 300 `subscribe` with `resume` (seq -1, and
 *   seq 999: a seq ahead of the hub's) for a 200-session view.
 * For each: the hub's longest event-loop stall (nodejs_eventloop_lag_max_seconds over 200 ms
 * scrapes) and its RSS growth (peak RSS during the scenario minus RSS before it), from /metrics;
 * then heap and RSS after a forced GC (POST /debug/gc), with the scenario's sockets still open
 * (what the hub keeps, not what it passed through).
 *
 *   npx tsx load/hardening.ts [--root DIR] [--scenario tabs,relay,resumes] [--tabs 3000] [--env K=V,K=V]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { ManagedHub, findFreePort, measureHeap, scrapeMetrics, waitReady } from './lib/hub';
import { httpRequest } from './lib/http';

const WS_PATH = '/ws-assist/socket';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const PROJECT = 'hardenLoad0000000000';

interface Args {
  root: string;
  scenarios: string[];
  tabs: number;
  env: Record<string, string>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { root: path.resolve(__dirname, '..'), scenarios: ['tabs', 'relay', 'resumes'], tabs: 3000, env: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1] ?? '';
    if (flag === '--root') args.root = path.resolve(value);
    else if (flag === '--scenario') args.scenarios = value.split(',');
    else if (flag === '--tabs') args.tabs = Number(value);
    else if (flag === '--env') for (const kv of value.split(',').filter(Boolean)) args.env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    else throw new Error(`unknown option ${flag}`);
    i++;
  }
  return args;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Scrapes the hub every 200 ms: the longest stall and the peak RSS since `start`. */
class Watch {
  maxStallMs = 0;
  /** The slowest /health answer: a stall longer than a scrape's 10 s timeout still shows here. */
  maxHealthMs = 0;
  peakRss = 0;
  baseRss = 0;
  private running = true;
  private loop: Promise<void> | undefined;
  constructor(private readonly url: string, private readonly key: string) {}
  async start(): Promise<void> {
    await scrapeMetrics(this.url, this.key); // resets the lag histogram
    const m = await scrapeMetrics(this.url, this.key);
    this.baseRss = this.peakRss = m?.residentMemoryBytes ?? 0;
    this.maxStallMs = 0;
    this.maxHealthMs = 0;
    const health = (async () => {
      while (this.running) {
        const t0 = performance.now();
        await httpRequest({ method: 'GET', url: `${this.url}/health`, timeoutMs: 600_000 }).catch(() => undefined);
        this.maxHealthMs = Math.max(this.maxHealthMs, performance.now() - t0);
        await sleep(100);
      }
    })();
    this.loop = (async () => {
      await sleep(200);
      while (this.running) {
        const m = await scrapeMetrics(this.url, this.key);
        if (m) {
          this.maxStallMs = Math.max(this.maxStallMs, (m.eventLoopMaxSeconds ?? 0) * 1000);
          this.peakRss = Math.max(this.peakRss, m.residentMemoryBytes ?? 0);
        }
        await sleep(200);
      }
      await health;
    })();
  }
  async stop(): Promise<string> {
    await sleep(400);
    this.running = false;
    await this.loop;
    const gc = await measureHeap(this.url, this.key);
    const kept = gc ? `; after a forced GC: heap ${mb(gc.heapUsedBytes)} MB, RSS ${mb(gc.rssBytes)} MB (${gc.source})` : '';
    return `longest stall ${Math.round(this.maxStallMs)} ms (slowest /health ${Math.round(this.maxHealthMs)} ms), RSS ${mb(this.baseRss)} -> peak ${mb(this.peakRss)} MB (+${mb(this.peakRss - this.baseRss)} MB)${kept}`;
  }
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

function open(url: string, namespace: string, query: Record<string, string>, auth: Record<string, string> = {}): Promise<Socket | string> {
  const socket = io(`${url}${namespace}`, { path: WS_PATH, transports: ['websocket'], forceNew: true, reconnection: false, timeout: 60_000, query, auth, extraHeaders: { 'user-agent': UA } });
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: { code?: string } }) => {
      socket.close();
      resolve(err.data?.code ?? err.message);
    });
  });
}

function tab(url: string, sessionId: string, tabId: string, info: Record<string, unknown> = {}) {
  return open(url, '', { peerId: `${PROJECT}-${sessionId}-${tabId}`, identity: 'session', tabId, sessionInfo: JSON.stringify({ sessionID: sessionId, pageTitle: tabId, timestamp: Date.now(), ...info }) });
}

function agent(url: string, sessionId: string, token: string) {
  return open(url, '', { peerId: `${PROJECT}-${sessionId}`, identity: 'agent', agentInfo: JSON.stringify({ name: 'load' }), config: '{}' }, { token });
}

function pause(socket: Socket): void {
  (socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void } } }).ws._socket.pause();
}

/** HS256 JWT without a dependency on the hub's code (the root may be another checkout). */
async function jwtFor(secret: string, claims: Record<string, unknown>): Promise<string> {
  const { default: jwt } = await import('jsonwebtoken');
  return jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: 3600 });
}

async function inBatches<T>(count: number, concurrency: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await make(i);
    }
  }));
  return out;
}

async function scenarioTabs(url: string, key: string, secret: string, tabs: number, withAgent: boolean): Promise<string> {
  const sid = withAgent ? '7000000000000011' : '7000000000000001';
  const joinWatch = new Watch(url, key);
  await joinWatch.start();
  const a = withAgent ? await agent(url, sid, await jwtFor(secret, { projectKey: PROJECT, sessionId: sid })) : undefined;
  const started = Date.now();
  const results = await inBatches(tabs, 100, (i) => tab(url, sid, `tab${i}`));
  const sockets = results.filter((r): r is Socket => typeof r !== 'string');
  const refusals = new Map<string, number>();
  for (const r of results) if (typeof r === 'string') refusals.set(r, (refusals.get(r) ?? 0) + 1);
  const joinedMs = Date.now() - started;
  const joinFigures = await joinWatch.stop();
  const closeWatch = new Watch(url, key);
  await closeWatch.start();
  for (const s of sockets) s.close();
  await sleep(1500);
  const closeFigures = await closeWatch.stop();
  if (a && typeof a !== 'string') a.close();
  return `${withAgent ? 'with an agent' : 'no agent'}: ${sockets.length} joined, refused ${JSON.stringify(Object.fromEntries(refusals))} in ${joinedMs} ms: ${joinFigures}\n  then all closed at once: ${closeFigures}`;
}

async function scenarioRelay(url: string, key: string, secret: string, receiver: 'tab' | 'agent'): Promise<string> {
  const sid = receiver === 'tab' ? '7000000000000002' : '7000000000000003';
  const sender = await tab(url, sid, 'sender');
  if (typeof sender === 'string') throw new Error(`sender refused: ${sender}`);
  const slow = receiver === 'tab' ? await tab(url, sid, 'slow') : await agent(url, sid, await jwtFor(secret, { projectKey: PROJECT, sessionId: sid }));
  if (typeof slow === 'string') throw new Error(`receiver refused: ${slow}`);
  let dropped = false;
  slow.on('disconnect', () => (dropped = true));
  const watch = new Watch(url, key);
  await watch.start();
  pause(slow);
  const chunk = 'x'.repeat(4 * 1024 * 1024 - 100);
  for (let i = 0; i < 30; i++) {
    sender.emit('dom_chunk', { meta: { tabId: 'sender' }, data: chunk });
    await sleep(50);
  }
  await sleep(2000);
  const figures = await watch.stop();
  const clientSaw = dropped;
  // The client's TCP reads are paused: it may not see a disconnect; ask the hub's counter instead.
  const m = await scrapeMetrics(url, key);
  const slowDrops = Object.entries(m?.hub ?? {}).filter(([k]) => k.startsWith('hub_slow_peers_disconnected_total')).reduce((n, [, v]) => n + v, 0);
  sender.close();
  slow.close();
  return `relay to a paused ${receiver} (30 x 4 MB): ${figures}; slow peers disconnected by the hub: ${slowDrops}${clientSaw ? ' (client saw it)' : ''}`;
}

async function scenarioResumes(url: string, key: string, seq: number): Promise<string> {
  const blob = 'y'.repeat(2000);
  const trackers = (await inBatches(200, 50, (i) => tab(url, String(8000000000000000 + i + seq * 1000), 'tab1', { userID: `user${i}`, metadata: { blob } }))).filter((s): s is Socket => typeof s !== 'string');
  const dash = await open(url, '/dashboard', {}, { token: key });
  if (typeof dash === 'string') throw new Error(`dashboard refused: ${dash}`);
  const first = (await dash.timeout(30_000).emitWithAck('subscribe', { projectKey: PROJECT, limit: 200 })) as { ok: boolean; subscriptionId: string; sessions?: unknown[] };
  const watch = new Watch(url, key);
  await watch.start();
  pause(dash);
  for (let i = 0; i < 300; i++) dash.emit('subscribe', { projectKey: PROJECT, limit: 200, resume: { subscriptionId: first.subscriptionId, seq } }, () => undefined);
  await sleep(3000);
  const figures = await watch.stop();
  dash.close();
  for (const t of trackers) t.close();
  await sleep(500);
  return `300 resumes (seq ${seq}) from a paused dashboard, snapshot of ${first.sessions?.length ?? 0} sessions (${(JSON.stringify(first).length / 1024).toFixed(0)} KiB): ${figures}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const key = `load-${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(16).toString('hex');
  const lines: string[] = [];
  const runs: [string, (url: string) => Promise<string>][] = [];
  for (const s of args.scenarios) {
    if (s === 'tabs') runs.push(['tabs', (url) => scenarioTabs(url, key, secret, args.tabs, false)]);
    else if (s === 'tabs-agent') runs.push(['tabs-agent', (url) => scenarioTabs(url, key, secret, args.tabs, true)]);
    else if (s === 'relay') runs.push(['relay', (url) => scenarioRelay(url, key, secret, 'tab')], ['relay-agent', (url) => scenarioRelay(url, key, secret, 'agent')]);
    else if (s === 'resumes') runs.push(['resumes', (url) => scenarioResumes(url, key, -1)], ['resumes-ahead', (url) => scenarioResumes(url, key, 999)]);
    else throw new Error(`unknown scenario ${s}`);
  }
  for (const [name, run] of runs) {
    const port = await findFreePort();
    const logFile = path.join(os.tmpdir(), `hardening-${name}-${port}.log`);
    const hub = ManagedHub.start({ command: 'node --expose-gc --import tsx src/index.ts', cwd: args.root, port, apiKey: key, jwtSecret: secret, openFileLimit: 10_000, logFile, env: args.env });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(url, 60_000, () => hub.exit === undefined);
      const line = `${name}: ${await run(url)}`;
      console.log(line);
      lines.push(line);
    } catch (err) {
      console.log(`${name}: failed: ${err instanceof Error ? err.message : String(err)}\n${hub.logTail(10)}`);
    } finally {
      await hub.stop();
      fs.rmSync(logFile, { force: true });
    }
  }
  console.log(`\nroot ${args.root}, env ${JSON.stringify(args.env)}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
