/**
 * Every code block in README.md runs as written, in order, as a newcomer would run them:
 * - sh blocks run in bash (`set -euo pipefail`) in a scratch directory inside the repository, against
 *   the hub that the README's own `npm start` starts (on a free port: `127.0.0.1:9001` in a block is
 *   rewritten to it; its development key goes to the scratch directory's `.hub-dev-key`). A block
 *   that exits must exit 0 with no `"error"` in its output; one still running after a moment (the
 *   tracker) is kept running for the blocks after it, and ended at the end.
 * - `npm start` starts that hub (once); `npm test` is not run: it is the command running this test.
 * - ts/js blocks are type-checked by tsc (node16 resolution) and run with tsx both as CommonJS and as
 *   an ES module; they import `live-session-hub/client` by its package name (resolved by the
 *   package's own `exports`, as from another project).
 * - `text` and `json` blocks are not code. A block of another language fails the test (tag it), and
 *   a block preceded by `<!-- readme-test: skip (reason) -->` is skipped (say why).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT, withBuildLock } from './support/buildLock';
import { killGroup, run, runOk } from './support/run';
import { eventually } from './support/wait';

jest.setTimeout(300_000);

interface Block {
  lang: string;
  code: string;
  line: number;
  skip: boolean;
}

/** Fenced blocks of a markdown text, with their language tag and starting line. */
function codeBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  let open: { lang: string; start: number; body: string[] } | undefined;
  const close = ({ lang, start, body }: { lang: string; start: number; body: string[] }): void => {
    const before = lines.slice(Math.max(0, start - 2), start).join('\n');
    blocks.push({ lang, code: body.join('\n'), line: start + 1, skip: /<!--\s*readme-test:\s*skip\b/.test(before) });
  };
  for (const [i, line] of lines.entries()) {
    if (open) {
      if (/^```\s*$/.test(line)) {
        close(open);
        open = undefined;
      } else open.body.push(line);
      continue;
    }
    const fence = /^```(\S*)\s*$/.exec(line);
    if (fence) open = { lang: fence[1] ?? '', start: i, body: [] };
  }
  // A block left open runs to the end of the text.
  if (open) close(open);
  return blocks;
}

const SHELL = new Set(['sh', 'bash', 'shell']);
const SCRIPT = new Set(['ts', 'typescript', 'js', 'javascript']);
const NOT_CODE = new Set(['text', 'json']);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const blocks = codeBlocks(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
mkdirSync(join(REPO_ROOT, '.scratch'), { recursive: true });
const scratch = mkdtempSync(join(REPO_ROOT, '.scratch', 'readme-'));
const background: ChildProcess[] = [];
let hub: ChildProcess | undefined;
let hubLog = '';
let port = 0;
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  port = await freePort();
  env = { ...process.env, LISTEN_HOST: '127.0.0.1', LISTEN_PORT: String(port), HUB_DEV_KEY_FILE: join(scratch, '.hub-dev-key'), LOG_LEVEL: 'warn' };
  // The README's hub configures nothing: no key from the test's environment may leak into it.
  for (const name of ['HUB_API_KEYS', 'HUB_API_KEYS_FILE', 'REDIS_URL', 'PORT', 'HOST', 'CONSOLE']) delete env[name];
});

afterAll(async () => {
  for (const child of background) killGroup(child, 'SIGKILL');
  if (hub && hub.exitCode === null) {
    const exited = new Promise((r) => hub?.once('exit', r));
    killGroup(hub, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    killGroup(hub, 'SIGKILL');
  }
  rmSync(scratch, { recursive: true, force: true });
});

const rewrite = (code: string) => code.replaceAll('127.0.0.1:9001', `127.0.0.1:${port}`);

async function hubAnswers(): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
  } catch {
    return false;
  }
}

/** `npm start`, as the README says, in the scratch directory (npm finds the package above it). */
async function npmStart(): Promise<void> {
  if (hub) return;
  const lock = join(REPO_ROOT, 'package-lock.json');
  const installed = join(REPO_ROOT, 'node_modules', '.package-lock.json');
  if (statSync(lock).mtimeMs > statSync(installed).mtimeMs) {
    throw new Error('node_modules is older than package-lock.json: npm start would run npm ci under the other suites; run npm ci first');
  }
  await withBuildLock(async () => {
    hub = spawn('npm', ['start'], { cwd: scratch, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    hub.stdout?.on('data', (d: Buffer) => (hubLog += d.toString()));
    hub.stderr?.on('data', (d: Buffer) => (hubLog += d.toString()));
    await eventually(async () => (hub?.exitCode ?? null) !== null || (await hubAnswers()), () => 'hub did not answer', 240_000, 250);
    if (hub.exitCode !== null) throw new Error(`npm start exited ${hub.exitCode}:\n${hubLog.slice(-4000)}`);
  });
}

/** Runs a shell block; one that is still running after a moment is left running (a tracker). */
async function runShell(code: string): Promise<string> {
  const child = spawn('bash', ['-euo', 'pipefail', '-c', rewrite(code)], { cwd: scratch, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code_ = await new Promise<number | null | 'running'>((resolve) => {
    child.once('exit', (c) => resolve(c));
    setTimeout(() => resolve('running'), 3_000).unref();
  });
  if (code_ === 'running') {
    background.push(child);
    return out;
  }
  if (code_ !== 0) throw new Error(`exited ${code_}:\n${out}`);
  return out;
}

test('README has code blocks, each tagged with a language this test knows', () => {
  expect(blocks.filter((b) => SHELL.has(b.lang)).length).toBeGreaterThan(0);
  expect(blocks.filter((b) => SCRIPT.has(b.lang)).length).toBeGreaterThan(0);
  const unknown = blocks.filter((b) => !b.skip && !SHELL.has(b.lang) && !SCRIPT.has(b.lang) && !NOT_CODE.has(b.lang));
  expect(unknown.map((b) => `line ${b.line}: \`\`\`${b.lang}`)).toEqual([]);
});

describe.each(blocks.filter((b) => !b.skip && (SHELL.has(b.lang) || SCRIPT.has(b.lang))).map((b) => [`README.md:${b.line} (${b.lang})`, b] as const))('%s', (_name, block) => {
  test('runs as written', async () => {
    if (SHELL.has(block.lang)) {
      const kept: string[] = [];
      for (const line of block.code.split('\n')) {
        const command = line.replace(/\s+#.*$/, '').trim();
        if (command === 'npm start') await npmStart();
        else if (command === 'npm test') continue; // this suite is part of it
        else kept.push(line);
      }
      const script = kept.join('\n').trim();
      if (script === '') return;
      if (!hub) await npmStart(); // a block before any `npm start` still needs the hub it talks to
      const out = await runShell(script);
      expect(out).not.toMatch(/"error"/);
      return;
    }

    // ts/js: type-check, then run as CommonJS and as an ES module.
    if (!hub) await npmStart();
    const name = `block-${block.line}`;
    const ts = block.lang.startsWith('t');
    writeFileSync(join(scratch, `${name}.${ts ? 'ts' : 'js'}`), rewrite(block.code));
    writeFileSync(join(scratch, `${name}.${ts ? 'mts' : 'mjs'}`), rewrite(block.code));
    if (ts) {
      writeFileSync(
        join(scratch, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
          files: [`${name}.ts`, `${name}.mts`],
        }),
      );
      await runOk('node', [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: scratch, env, timeoutMs: 90_000 });
    }
    for (const file of [`${name}.${ts ? 'ts' : 'js'}`, `${name}.${ts ? 'mts' : 'mjs'}`]) {
      // A dashboard keeps running: it is ended once it has drawn (or after 8 s, then judged on what it printed).
      const result = await run(join(REPO_ROOT, 'node_modules/.bin/tsx'), [file], { cwd: scratch, env, timeoutMs: 8_000, until: (out) => out.includes('dev@openreplay.com') });
      expect({ file, stderr: result.stderr }).toEqual({ file, stderr: '' });
      if (!result.stoppedEarly) expect({ file, code: result.code }).toEqual({ file, code: 0 });
      // The tracker block above announced this user: only the first snapshot can have shown it.
      expect(result.stdout).toContain('dev@openreplay.com');
    }
  });
});
