/**
 * The published package, as an integrator gets it: `npm pack` (which builds through `prepack`),
 * the tarball unpacked into a scratch project whose node_modules holds nothing but the package and
 * socket.io-client, then `live-session-hub/client` used from Node (CJS and ESM), type-checked by a
 * consumer's tsc (node16 resolution, both module kinds), and bundled for the browser with esbuild
 * and run in a real Chromium. Every use reads a live hub's snapshot with a tracker's session in it.
 */
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'socket.io-client';
import type { Hub } from '../src/server';
import { defined } from './support/assert';
import { launchChromium } from './support/browser';
import { REPO_ROOT, withBuildLock } from './support/buildLock';
import { API_KEY, projectKey, startTestHub } from './support/hub';
import { runOk } from './support/run';
import { connectTracker } from './support/live';

jest.setTimeout(240_000);

const PROJECT = projectKey('packed');
const scratch = mkdtempSync(join(tmpdir(), 'hub-pack-'));
const modules = join(scratch, 'node_modules');
let hub: Hub;
let tracker: Socket;
let packedFiles: string[] = [];

const expected = { total: 1, users: ['packed@example.com'] };

beforeAll(async () => {
  hub = await startTestHub();
  tracker = (await connectTracker(hub, { minimalInfo: true, projectKey: PROJECT, sessionId: '1001', tabId: 't1', info: { userID: 'packed@example.com' } })).socket;
  const packed = await withBuildLock(() =>
    runOk('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: REPO_ROOT, timeoutMs: 200_000 }),
  );
  const [packResult] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  const info = defined(packResult, "npm pack's report");
  packedFiles = info.files.map((f) => f.path);
  mkdirSync(modules);
  await runOk('tar', ['-xzf', join(scratch, info.filename), '-C', modules], { cwd: scratch });
  renameSync(join(modules, 'package'), join(modules, 'live-session-hub'));
  // The client's one runtime dependency; its own dependencies resolve from the symlink's real path.
  symlinkSync(join(REPO_ROOT, 'node_modules', 'socket.io-client'), join(modules, 'socket.io-client'), 'dir');
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch-consumer', private: true }));
});

afterAll(async () => {
  tracker?.close();
  await hub?.shutdown();
  rmSync(scratch, { recursive: true, force: true });
});

const consumerBody = `
const [url, token, projectKey] = process.argv.slice(2);
const client = new DashboardClient({ url, token });
client.subscribe({ projectKey, sort: 'userID', order: 'ASC' }).then(
  (sub) => {
    console.log(JSON.stringify({ total: sub.view.total, users: sub.view.list().map((s) => s.userID), resolved: RESOLVED }));
    client.close();
  },
  (err) => {
    console.error(err.message);
    process.exit(1);
  },
);
`;

test('the tarball holds the builds, the types and the console, and no sources or tests', () => {
  for (const file of ['dist/lib.js', 'dist/lib.d.ts', 'dist/index.js', 'dist/client/index.cjs', 'dist/client/index.mjs', 'dist/client/index.d.ts', 'dist/client/index.d.mts', 'dist/console/index.html', 'dist/console/app.js']) {
    expect(packedFiles).toContain(file);
  }
  expect(packedFiles.filter((f) => /^(src|test|load|console)\//.test(f))).toEqual([]);
});

test('the client bundles need socket.io-client and nothing else: no Node built-in, no zod, no server module', () => {
  for (const file of ['index.cjs', 'index.mjs']) {
    const code = readFileSync(join(modules, 'live-session-hub/dist/client', file), 'utf8');
    const imported = [...code.matchAll(/(?:require\(|from\s*|import\()\s*["']([^"']+)["']/g)].map((m) => m[1]);
    expect(imported).toEqual(['socket.io-client']);
  }
});

test('require("live-session-hub/client") works from a CommonJS project', async () => {
  writeFileSync(join(scratch, 'consumer.cjs'), `const { DashboardClient } = require('live-session-hub/client');\nconst RESOLVED = require.resolve('live-session-hub/client');\n${consumerBody}`);
  const { stdout } = await runOk('node', ['consumer.cjs', hub.url, API_KEY, PROJECT], { cwd: scratch, timeoutMs: 30_000 });
  const out = JSON.parse(stdout) as { total: number; users: string[]; resolved: string };
  expect({ total: out.total, users: out.users }).toEqual(expected);
  expect(out.resolved).toMatch(/dist[/\\]client[/\\]index\.cjs$/);
});

test('import "live-session-hub/client" works from an ES module', async () => {
  writeFileSync(join(scratch, 'consumer.mjs'), `import { DashboardClient } from 'live-session-hub/client';\nconst RESOLVED = import.meta.resolve('live-session-hub/client');\n${consumerBody}`);
  const { stdout } = await runOk('node', ['consumer.mjs', hub.url, API_KEY, PROJECT], { cwd: scratch, timeoutMs: 30_000 });
  const out = JSON.parse(stdout) as { total: number; users: string[]; resolved: string };
  expect({ total: out.total, users: out.users }).toEqual(expected);
  expect(out.resolved).toMatch(/dist\/client\/index\.mjs$/);
});

test("a consumer's tsc finds the types from CommonJS and ES modules (node16 resolution)", async () => {
  const use = (importLine: string) => `${importLine}
const client = new DashboardClient({ url: 'http://127.0.0.1:9001', token: 'key' });
export const state: ConnectionState = client.state;
export async function users(): Promise<string[]> {
  const sub = await client.subscribe({ projectKey: 'p', filters: [{ type: 'USERID', operator: 'is', value: ['a'] }] });
  sub.on('change', (diff?: SessionsDiff) => diff?.removed.length);
  // @ts-expect-error total is a number: fails if the types resolved to \`any\`
  const wrong: string = sub.view.total;
  void wrong;
  return sub.view.list().map((s: Session) => s.userID);
}
`;
  const importLine = "import { DashboardClient, type ConnectionState, type Session, type SessionsDiff } from 'live-session-hub/client';";
  writeFileSync(join(scratch, 'types.cts'), use(importLine));
  writeFileSync(join(scratch, 'types.mts'), use(importLine));
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['types.cts', 'types.mts'],
    }),
  );
  await runOk('node', [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--traceResolution'], { cwd: scratch, timeoutMs: 60_000 }).then(({ stdout }) => {
    expect(stdout).toMatch(/'live-session-hub\/client' was successfully resolved to '.*dist\/client\/index\.d\.mts'/);
    expect(stdout).toMatch(/'live-session-hub\/client' was successfully resolved to '.*dist\/client\/index\.d\.ts'/);
  });
});

test('require("live-session-hub") is the library: it exports startHub and starts nothing', async () => {
  writeFileSync(join(scratch, 'main.cjs'), "const hub = require('live-session-hub');\nconsole.log(JSON.stringify({ startHub: typeof hub.startHub, loadConfig: typeof hub.loadConfig, client: typeof hub.DashboardClient }));\n");
  // The server's dependencies come from the repository's node_modules (the scratch project holds only the client's).
  const { stdout } = await runOk('node', ['main.cjs'], { cwd: scratch, env: { ...process.env, NODE_PATH: join(REPO_ROOT, 'node_modules') }, timeoutMs: 30_000 });
  // The process exited by itself: nothing listens.
  expect(JSON.parse(stdout)).toEqual({ startHub: 'function', loadConfig: 'function', client: 'function' });
});

test('an esbuild browser bundle of the client runs in Chromium against the hub', async () => {
  writeFileSync(
    join(scratch, 'browser.mjs'),
    `import { DashboardClient } from 'live-session-hub/client';
window.readHub = async (url, token, projectKey) => {
  const client = new DashboardClient({ url, token });
  const sub = await client.subscribe({ projectKey, sort: 'userID', order: 'ASC' });
  const out = { total: sub.view.total, users: sub.view.list().map((s) => s.userID) };
  client.close();
  return out;
};
`,
  );
  const result = await build({ absWorkingDir: scratch, entryPoints: ['browser.mjs'], bundle: true, platform: 'browser', format: 'iife', write: false, metafile: true, logLevel: 'silent' });
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.some((i) => i.includes('live-session-hub/dist/client/index.mjs'))).toBe(true);
  expect(inputs.filter((i) => /zod|node:|\/src\//.test(i))).toEqual([]);
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.setContent('<!doctype html><title>bundle</title>');
    await page.addScriptTag({ content: defined(result.outputFiles[0], "esbuild's bundle").text });
    const out = await page.evaluate(([url, token, project]) => (globalThis as unknown as { readHub(u: string, t: string, p: string): Promise<unknown> }).readHub(url, token, project), [hub.url, API_KEY, PROJECT] as const);
    expect(out).toEqual(expected);
  } finally {
    await browser.close();
  }
});
