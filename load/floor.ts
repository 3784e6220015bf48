/**
 * The memory floor under the hub: heap and RSS per connection of a bare Socket.IO server, of the
 * same server with the hub's socket trims (`releaseHandshake`, `compactSocket`), and of the hub,
 * each with N tracker connections (the bench's sessionInfo and User-Agents) opened from this
 * process, after a forced GC.
 *
 *   npm run bench:floor [-- --connections 5000] [--no-build]
 *
 * Each server runs as its own process (`node --expose-gc`), started fresh for its measurement.
 * See docs/performance.md ("The floor under the memory targets").
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { runBounded, sleep } from './lib/async';
import { chooseDefaultHubCommand, findFreePort, ManagedHub, measureHeap, waitReady } from './lib/hub';
import { newRunTag, sessionCountForTabs, sessionInfoOf, tabIdentity, userAgentOf } from './lib/population';
import { renderTable } from './lib/report';
import { openSocket, type HubConnection } from './lib/sockets';

const REPO_ROOT = path.resolve(__dirname, '..');
const SOCKET_PATH = '/ws-assist/socket';
const CONNECT_CONCURRENCY = 100;
const CONNECT_TIMEOUT_MS = 20_000;

interface FloorOptions {
  connections: number;
  build: boolean;
}

function parseArgs(argv: string[]): FloorOptions {
  const options: FloorOptions = { connections: 5000, build: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-build') options.build = false;
    else if (arg === '--connections') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 15_000) throw new Error('--connections: expected an integer from 1 to 15000');
      options.connections = n;
    } else throw new Error(`unexpected argument ${arg}; usage: floor.ts [--connections N] [--no-build]`);
  }
  return options;
}

interface Server {
  name: string;
  command: string;
  env: Record<string, string>;
}

interface FloorRow {
  server: string;
  connected: number;
  heapPerConnection: number;
  rssPerConnection: number;
}

async function measure(server: Server, options: FloorOptions, apiKey: string, jwtSecret: string): Promise<FloorRow> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const hub = ManagedHub.start({
    command: server.command,
    cwd: REPO_ROOT,
    port,
    apiKey,
    jwtSecret,
    openFileLimit: options.connections + 1000,
    logFile: path.join(REPO_ROOT, 'load', 'results', `floor-${server.name.replace(/\W+/g, '-')}.log`),
    env: server.env,
  });
  const sockets: Socket[] = [];
  try {
    await waitReady(url, 60_000, () => hub.exit === undefined);
    const before = await measureHeap(url, apiKey);
    const connection: HubConnection = {
      url,
      socketPath: SOCKET_PATH,
      apiKey,
      jwtSecret,
      population: { projectCount: 20, runTag: newRunTag(Date.now()), startedAtMs: Date.now() },
    };
    const tabs = Array.from({ length: options.connections }, (_, i) => i);
    await runBounded(tabs, CONNECT_CONCURRENCY, Number.POSITIVE_INFINITY, async (index) => {
      const tab = tabIdentity(index, connection.population);
      try {
        sockets.push(
          await openSocket(connection, {
            namespace: '',
            query: { peerId: tab.peerId, identity: 'session', tabId: tab.tabId, sessionInfo: JSON.stringify(sessionInfoOf(tab, tab.tabNumber, connection.population)) },
            headers: { 'user-agent': userAgentOf(tab.sessionIndex) },
            timeoutMs: CONNECT_TIMEOUT_MS,
          }),
        );
      } catch {
        // Counted below: connected < requested.
      }
    });
    await sleep(1000);
    const after = await measureHeap(url, apiKey);
    if (!before || !after || before.source !== 'debug/gc' || after.source !== 'debug/gc') throw new Error(`${server.name}: no heap figures after a forced GC`);
    const n = Math.max(1, sockets.length);
    return {
      server: server.name,
      connected: sockets.length,
      heapPerConnection: (after.heapUsedBytes - before.heapUsedBytes) / n,
      rssPerConnection: (after.rssBytes - before.rssBytes) / n,
    };
  } finally {
    for (const socket of sockets) socket.disconnect();
    await hub.stop();
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const hubCommand = chooseDefaultHubCommand(REPO_ROOT, options.build).command;
  const bare = 'node --expose-gc --import tsx load/floorServer.ts';
  const servers: Server[] = [
    { name: 'bare Socket.IO', command: bare, env: {} },
    { name: 'bare Socket.IO + hub socket trims', command: bare, env: { FLOOR_RELEASE: '1' } },
    { name: 'the hub', command: hubCommand, env: {} },
  ];
  fs.mkdirSync(path.join(REPO_ROOT, 'load', 'results'), { recursive: true });
  const apiKey = randomBytes(16).toString('hex');
  const jwtSecret = randomBytes(24).toString('hex');
  const rows: FloorRow[] = [];
  for (const server of servers) rows.push(await measure(server, options, apiKey, jwtSecret));
  const tabsPerSession = options.connections / Math.max(1, sessionCountForTabs(options.connections));
  const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
  process.stdout.write(
    `${renderTable(
      ['server', 'connections', 'heap KiB/conn', 'RSS KiB/conn', 'heap KiB/session', 'RSS KiB/session'],
      rows.map((r) => [r.server, String(r.connected), kib(r.heapPerConnection), kib(r.rssPerConnection), kib(r.heapPerConnection * tabsPerSession), kib(r.rssPerConnection * tabsPerSession)]),
    )}\n(after a forced GC; ${tabsPerSession.toFixed(2)} tabs per session as in the bench; RSS is noisy run to run)\n`,
  );
  const short = rows.find((r) => r.connected < options.connections);
  if (short) throw new Error(`${short.server}: only ${short.connected} of ${options.connections} connections opened`);
}

main().catch((error: unknown) => {
  process.stderr.write(`floor: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
