/**
 * A small measurement of OpenReplay's internal API beside the public API on the same sessions:
 * `tsx load/openreplay.ts [--tabs 2000] [--projects 10] [--seconds 3] [--concurrency 8]`.
 *
 * Starts a hub (`tsx src/index.ts`, its own process) with ASSIST_KEY set, connects `--tabs`
 * tracker tabs from this process (the bench's population: real User-Agents, plans, user ids),
 * then for each operation runs `--concurrency` keep-alive clients for `--seconds` and reports
 * req/s and latency. The 2-filter search is the bench's (`plan` is trial|free, browser contains
 * chrome, page of 50), in the public grammar and in the backend's. Small on purpose: the
 * standard bench (load/bench.ts) is the reference for capacity.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { io, type Socket } from 'socket.io-client';
import { httpRequest } from './lib/http';
import { type PopulationConfig, newRunTag, sessionInfoOf, tabIdentity, userAgentOf } from './lib/population';
import { SEARCH_BODY } from './lib/rest';
import { LatencyHistogram } from './lib/stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const TABS = arg('tabs', 2000);
const PROJECTS = arg('projects', 10);
const SECONDS = arg('seconds', 3);
const CONCURRENCY = arg('concurrency', 8);
const PORT = 19_000 + Math.floor(Math.random() * 1000);
const API_KEY = `bench-${Math.random().toString(36).slice(2)}`;
const ASSIST_KEY = `assist-${Math.random().toString(36).slice(2)}`;
const URL_BASE = `http://127.0.0.1:${PORT}`;

async function main(): Promise<void> {
  const hub = spawn('npx', ['tsx', 'src/index.ts'], {
    env: { ...process.env, LISTEN_HOST: '127.0.0.1', LISTEN_PORT: String(PORT), HUB_API_KEYS: `${API_KEY}:*`, ASSIST_KEY, LOG_LEVEL: 'warn', REST_RATE_LIMIT: '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  const stop = (): void => {
    if (hub.pid) process.kill(-hub.pid, 'SIGTERM');
  };
  process.on('exit', stop);
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await httpRequest({ method: 'GET', url: `${URL_BASE}/ready`, timeoutMs: 1000 })).status === 200) break;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error('hub not ready within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const population: PopulationConfig = { projectCount: PROJECTS, runTag: newRunTag(Date.now()), startedAtMs: Date.now() };
    const sockets: Socket[] = [];
    const connectStart = performance.now();
    for (let start = 0; start < TABS; start += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, TABS - start) }, (_, k) => {
          const tab = tabIdentity(start + k, population);
          const socket = io(URL_BASE, {
            path: '/ws-assist/socket',
            transports: ['websocket'],
            forceNew: true,
            reconnection: false,
            query: { peerId: tab.peerId, identity: 'session', tabId: tab.tabId, sessionInfo: JSON.stringify(sessionInfoOf(tab, tab.tabNumber, population)) },
            extraHeaders: { 'user-agent': userAgentOf(tab.sessionIndex) },
          });
          sockets.push(socket);
          return new Promise<void>((resolve, reject) => {
            socket.once('connect', () => resolve());
            socket.once('connect_error', reject);
          });
        }),
      );
    }
    console.log(`${TABS} tabs over ${PROJECTS} projects connected in ${Math.round(performance.now() - connectStart)} ms`);
    const first = tabIdentity(0, population);
    const pk = first.projectKey;
    // The bench's own 2-filter search, and below the same search as OpenReplay's backend sends it.
    const publicSearch = JSON.stringify(SEARCH_BODY);
    const backendSearch = JSON.stringify({
      filter: { plan: { values: ['trial', 'free'], operator: 'is' }, userBrowser: { values: ['chrome'], operator: 'contains' } },
      pagination: { limit: 50, page: 1 },
      sort: { key: 'timestamp', order: 'DESC' },
    });
    const or = `/assist/${ASSIST_KEY}`;
    const operations: [string, 'GET' | 'POST', string, string | undefined, Record<string, string>][] = [
      ['public search (POST /api/v1/…/assist/sessions)', 'POST', `/api/v1/${pk}/assist/sessions`, publicSearch, { authorization: API_KEY }],
      ['backend search (POST sockets-live)', 'POST', `${or}/sockets-live/${pk}`, backendSearch, {}],
      ['backend list (GET sockets-live, 200/page)', 'GET', `${or}/sockets-live/${pk}`, undefined, {}],
      ['public one session', 'GET', `/api/v1/${pk}/assist/sessions/${first.sessionId}`, undefined, { authorization: API_KEY }],
      ['backend one session (sockets-live/:id)', 'GET', `${or}/sockets-live/${pk}/${first.sessionId}`, undefined, {}],
      ['backend is_live (sockets-list/:id)', 'GET', `${or}/sockets-list/${pk}/${first.sessionId}`, undefined, {}],
      ['backend autocomplete q=ac, no key', 'GET', `${or}/sockets-list/${pk}/autocomplete?q=ac`, undefined, {}],
      ['backend autocomplete q=ac&key=userId', 'GET', `${or}/sockets-list/${pk}/autocomplete?q=ac&key=userId`, undefined, {}],
    ];
    console.log(`| operation | req/s | p50 ms | p99 ms | bytes |`);
    console.log(`|---|---|---|---|---|`);
    for (const [name, method, path, body, headers] of operations) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const latency = new LatencyHistogram();
      let bytes = 0;
      let failures = 0;
      // One unmeasured second first (JIT warm-up), then the measured run.
      for (const measured of [false, true]) {
        const end = performance.now() + (measured ? SECONDS : 1) * 1000;
        const began = performance.now();
        let ok = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (performance.now() < end) {
              const r = await httpRequest({ method, url: `${URL_BASE}${path}`, headers, agent, timeoutMs: 5000, ...(body ? { body } : {}) });
              if (r.status !== 200) failures++;
              if (!measured) continue;
              latency.record(r.latencyMs);
              bytes = r.wireBytes;
              ok++;
            }
          }),
        );
        if (measured) {
          const s = latency.summary();
          console.log(`| ${name} | ${Math.round((ok * 1000) / (performance.now() - began))} | ${s.p50Ms?.toFixed(2)} | ${s.p99Ms?.toFixed(2)} | ${bytes} |${failures ? ` ${failures} failed` : ''}`);
        }
      }
      agent.destroy();
    }
    for (const s of sockets) s.close();
  } finally {
    stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
