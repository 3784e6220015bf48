/**
 * A real, throw-away redis-server for the cluster tests: its own free port on 127.0.0.1, its own
 * temporary directory, no persistence. It can be stopped and started again on the same port (a
 * Redis outage). A machine without redis-server fails the test with the command to install it:
 * the cluster tests never pass by skipping.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from './wait';

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? 'redis-server';

export function requireRedisServer(): void {
  const probe = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `redis-server is not installed (or not on PATH): the cluster tests start a real one. Install it: ` +
        `sudo apt-get install redis-server (Debian/Ubuntu), brew install redis (macOS); or set REDIS_SERVER_BIN.`,
    );
  }
}

/** A port free at the time of the call (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port and answers PING. */
async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const ping = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(500);
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        // A server with a password answers NOAUTH: it is up all the same.
        resolve(data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH'));
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
  await eventually(ping, () => `redis-server on port ${port} does not answer PING`, timeoutMs, 50);
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** What redis-server printed (warnings and errors), for failure messages. */
  logs(): string {
    return this.output;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** `extraArgs`: more redis-server options, e.g. `['--requirepass', secret]`. */
  static async start(extraArgs: readonly string[] = []): Promise<RedisServer> {
    requireRedisServer();
    const server = new RedisServer(await freePort(), mkdtempSync(path.join(tmpdir(), 'hub-redis-')), extraArgs);
    await server.resume();
    return server;
  }

  /** Starts the server (again) on its port: an empty Redis, as after a restart without persistence. */
  async resume(): Promise<void> {
    if (this.child) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no', '--loglevel', 'warning', ...this.extraArgs];
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child = child;
    try {
      await waitForPing(this.port, 5_000);
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${this.output}`);
    }
  }

  /** Stops the server (SIGKILL: an outage, not a clean shutdown) and waits for the exit. */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    });
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered, as in a long stall. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a frozen server go on (SIGCONT): it answers everything it was sent meanwhile. */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.thaw();
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A real Redis Sentinel (`redis-server <conf> --sentinel`) watching one RedisServer under `name`.
 * Its configuration file lives in its own temporary directory (Sentinel rewrites it).
 */
export class RedisSentinel {
  private output = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  logs(): string {
    return this.output;
  }

  static async start(primary: RedisServer, name: string, primaryPassword?: string): Promise<RedisSentinel> {
    requireRedisServer();
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'hub-sentinel-'));
    const conf = path.join(dir, 'sentinel.conf');
    const lines = [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode no',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primary.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      ...(primaryPassword ? [`sentinel auth-pass ${name} ${primaryPassword}`] : []),
    ];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const child = spawn(REDIS_SERVER, [conf, '--sentinel', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sentinel = new RedisSentinel(port, dir, child);
    try {
      await waitForPing(port, 5_000);
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${sentinel.output}`);
    }
    return sentinel;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
