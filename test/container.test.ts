/**
 * The container files, checked without a container engine (none on the CI machine): the Dockerfile
 * lints clean (dockerfile-utils, the linter of VS Code's Docker support) and has what
 * docs/reverse-proxy.md promises; its HEALTHCHECK command is run against a real hub; the build
 * context holds what the build copies; compose and nginx files have the parts the guide explains.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { startTestHub } from './support/hub';

const ROOT = resolve(__dirname, '..');
const read = (file: string): string => readFileSync(resolve(ROOT, file), 'utf8');
const dockerfileText = read('Dockerfile');
const dockerfile = DockerfileParser.parse(dockerfileText);

/** The instructions of each stage, by stage name. */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      current = [];
      out.set(instruction.getArguments()[2]?.getValue() ?? `stage${out.size}`, current);
    }
    current.push(instruction);
  }
  return out;
}

const args = (i: Instruction | undefined): string => i?.getArgumentsContent() ?? '';
const find = (list: Instruction[], keyword: string): Instruction[] => list.filter((i) => i.getKeyword() === keyword);

describe('Dockerfile', () => {
  it('lints clean', () => {
    expect(validate(dockerfileText).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('is multi-stage on node:20-slim: a build stage and a runtime stage', () => {
    const byName = stages();
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['build', 'runtime']));
    expect(args(byName.get('build')?.[0])).toMatch(/^node:20-slim AS build$/);
    const last = [...byName.keys()].pop();
    expect(last).toBe('runtime');
    expect(args(byName.get('runtime')?.[0])).toMatch(/^node:20-slim AS runtime$/);
  });

  it('installs from the lock file only, without install scripts', () => {
    const build = stages().get('build') ?? [];
    expect(find(build, 'COPY').map(args)).toContain('package.json package-lock.json ./');
    const runs = find(build, 'RUN').map(args).join('\n');
    expect(runs).toMatch(/npm ci --prefer-offline --ignore-scripts/);
    expect(runs).not.toMatch(/npm install/);
    expect(runs).toMatch(/npm prune --omit=dev/);
  });

  it('runs as a non-root user, stops on SIGTERM, checks /health, starts node directly', () => {
    const runtime = stages().get('runtime') ?? [];
    const user = find(runtime, 'USER').map(args);
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(find(runtime, 'STOPSIGNAL').map(args)).toEqual(['SIGTERM']);
    expect(args(find(runtime, 'HEALTHCHECK')[0])).toMatch(/\/health/);
    expect(find(runtime, 'CMD').map(args)).toEqual(['["node", "dist/index.js"]']);
    // Everything the runtime stage copies comes from the build stage.
    expect(find(runtime, 'COPY').every((c) => c.getTextContent().includes('--from=build'))).toBe(true);
  });

  it('its HEALTHCHECK command passes against a running hub and fails against none', async () => {
    const healthcheck = args(find(stages().get('runtime') ?? [], 'HEALTHCHECK')[0]);
    const exec = JSON.parse(healthcheck.replace(/^.*?CMD\s+/, '')) as string[];
    expect(exec[0]).toBe('node');
    // Not spawnSync: the hub answering the check runs in this process.
    const run = (port: string): Promise<number | null> =>
      new Promise((done) => {
        execFile(process.execPath, exec.slice(1), { env: { LISTEN_PORT: port }, timeout: 15_000 }, (error) => {
          done(error ? (typeof error.code === 'number' ? error.code : null) : 0);
        });
      });
    const hub = await startTestHub();
    const port = new URL(hub.url).port;
    try {
      expect(await run(port)).toBe(0);
    } finally {
      await hub.shutdown();
    }
    expect(await run(port)).toBe(1);
  });

  it('has a build context (.dockerignore) that holds every file the build copies', () => {
    const allowed = read('.dockerignore')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    const copied = find(stages().get('build') ?? [], 'COPY')
      .filter((c) => !c.getTextContent().includes('--from'))
      .flatMap((c) => c.getArguments().slice(0, -1).map((a) => a.getValue()));
    expect(copied.length).toBeGreaterThan(0);
    for (const source of copied) expect([source, allowed.includes(source)]).toEqual([source, true]);
  });
});

describe('compose.yaml and deploy/nginx.conf', () => {
  const compose = read('compose.yaml');
  const nginx = read('deploy/nginx.conf');

  it('runs Redis and two hub nodes behind nginx, which mounts deploy/nginx.conf', () => {
    for (const service of ['redis', 'hub1', 'hub2', 'proxy']) expect(compose).toMatch(new RegExp(`^  ${service}:$`, 'm'));
    expect(compose).toContain('REDIS_URL: redis://redis:6379');
    expect(compose).toContain('./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro');
    expect(compose).toMatch(/NODE_ID: hub1[\s\S]*NODE_ID: hub2/);
  });

  it('proxies /ws-assist/ with the upgrade headers, long timeouts and sticky routing', () => {
    const ws = /location \/ws-assist\/ \{([\s\S]*?)\n {4}\}/.exec(nginx)?.[1] ?? '';
    expect(ws).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(ws).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(ws).toContain('proxy_http_version 1.1;');
    expect(Number(/proxy_read_timeout (\d+)s;/.exec(ws)?.[1])).toBeGreaterThan(45);
    expect(nginx).toMatch(/upstream hub_socketio \{\s*ip_hash;/);
    expect(nginx).toContain('large_client_header_buffers 4 64k;');
  });
});
