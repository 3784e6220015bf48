/**
 * Cluster test support: hub nodes joined through a test Redis, either in this process
 * (`startHub`: their index can be inspected) or as real processes (`spawnNode`: they can be
 * killed with SIGKILL), a TCP round-robin balancer in front of them, and clients that take a URL.
 *
 * Heartbeats are short (200 ms, TTL 1 s) so failure detection fits a test's time budget.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { type Hub, startHub } from '../../src/server';
import type { Session } from '../../src/sessions/model';
import { API_KEY, JWT_SECRET, Peer, type TrackerOptions, agentInfo, agentPeer, trackerPeer } from './live';
import { freePort } from './redis';
import { assertMatchesOpenApi } from './openapi';
import { eventually } from './wait';

export const HEARTBEAT_MS = 200;
export const NODE_TTL_MS = 1_000;
/** How long a dead node's sessions may stay: TTL, one sweep, and slack for a loaded machine. */
export const REMOVAL_BOUND_MS = NODE_TTL_MS + HEARTBEAT_MS + 800;

const ROOT = path.resolve(__dirname, '..', '..');

export function clusterEnv(redisUrl: string, nodeId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    LISTEN_HOST: '127.0.0.1',
    HUB_API_KEYS: `${API_KEY}:*`,
    ASSIST_JWT_SECRET: JWT_SECRET,
    LOG_LEVEL: 'silent',
    REDIS_URL: redisUrl,
    NODE_ID: nodeId,
    CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS),
    CLUSTER_NODE_TTL_MS: String(NODE_TTL_MS),
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...extra,
  };
}

/** A hub node in this process. */
export function startClusterHub(redisUrl: string, nodeId: string, extra: Record<string, string> = {}): Promise<Hub> {
  return startHub(loadConfig({ ...clusterEnv(redisUrl, nodeId, extra), LISTEN_PORT: '0' }));
}

/** A hub node in its own process (`node --import tsx src/index.ts`: one process, so SIGKILL kills the hub itself). */
export class NodeProcess {
  private output = '';
  readonly exited: Promise<void>;

  private constructor(
    readonly nodeId: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  logs(): string {
    return this.output;
  }

  static async spawn(redisUrl: string, nodeId: string, extra: Record<string, string> = {}): Promise<NodeProcess> {
    // The port is free when picked, not necessarily when the child listens seconds later (tsx
    // compiles first): on a shared machine any outgoing connection may take it meanwhile. Such a
    // start is tried again on another port; any other failure is the test's.
    for (let attempt = 1; ; attempt++) {
      const node = await NodeProcess.launch(redisUrl, nodeId, extra);
      try {
        await node.waitReady();
        return node;
      } catch (err) {
        // Not left running behind the failed test.
        await node.kill9();
        if (attempt >= 3 || !node.output.includes('EADDRINUSE')) throw err;
      }
    }
  }

  /** Starts the process without waiting for it to be ready. */
  static async launch(redisUrl: string, nodeId: string, extra: Record<string, string> = {}): Promise<NodeProcess> {
    const port = await freePort();
    const env = { PATH: process.env.PATH ?? '', ...clusterEnv(redisUrl, nodeId, { LOG_LEVEL: 'warn', ...extra }), LISTEN_PORT: String(port) };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new NodeProcess(nodeId, port, child);
  }

  /** GET /ready: the status, or 0 while nothing listens. */
  async readyStatus(): Promise<number> {
    try {
      return (await fetch(`${this.url}/ready`)).status;
    } catch {
      return 0;
    }
  }

  /** Resolves once GET /ready answers 200; fails with the node's output if it exits or times out (generous: tsx compiles at start, slow on a loaded machine). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    let last = 'not listening';
    await eventually(
      async () => {
        if (!this.alive) throw new Error(`node ${this.nodeId} exited before it was ready:\n${this.output}`);
        try {
          const res = await fetch(`${this.url}/ready`);
          if (res.status === 200) return true;
          last = `${res.status} ${await res.text()}`;
        } catch {
          // not listening yet
        }
        return false;
      },
      () => `node ${this.nodeId}'s /ready: ${last}\n${this.output}`,
      timeoutMs,
      50,
    );
  }

  /** Dies without warning. */
  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful stop (SIGTERM), as an orchestrator does it. */
  async terminate(): Promise<void> {
    if (this.alive) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/**
 * A TCP load balancer: each new connection goes to the next backend, round robin. Removing a
 * backend sends new connections elsewhere (what a real balancer does once a node fails its check).
 */
export class Balancer {
  private readonly server = net.createServer((client) => this.route(client));
  private readonly sockets = new Set<net.Socket>();
  private next = 0;
  port = 0;

  constructor(private backends: number[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  remove(port: number): void {
    this.backends = this.backends.filter((p) => p !== port);
  }

  add(port: number): void {
    this.backends.push(port);
  }

  private route(client: net.Socket): void {
    const port = this.backends[this.next++ % Math.max(1, this.backends.length)];
    if (port === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** An agent attached to a session through `url` (not awaited), its config naming a STUN server after the agent. */
export function agentAt(url: string, o: { projectKey: string; sessionId: string; name?: string; config?: unknown }): Peer {
  const name = o.name ?? 'alice';
  const config = typeof o.config === 'string' ? o.config : JSON.stringify(o.config ?? { iceServers: [{ urls: `stun:${name}.test` }] });
  return agentPeer(url, { projectKey: o.projectKey, sessionId: o.sessionId, info: agentInfo(name), config });
}

export interface RestReply {
  status: number;
  partial: boolean;
  sessions: Session[];
  total: number;
}

/** GET the project's live sessions on one node. */
export async function listAt(url: string, projectKey: string): Promise<RestReply> {
  const path = `/api/v1/${projectKey}/assist/sessions`;
  const res = await fetch(`${url}${path}`, { headers: { authorization: API_KEY } });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: { total: number; sessions: Session[] } };
  assertMatchesOpenApi({ method: 'GET', url: path, status: res.status, contentType: res.headers.get('content-type'), json: body, text });
  return { status: res.status, partial: res.headers.get('x-hub-partial') === 'true', sessions: body.data?.sessions ?? [], total: body.data?.total ?? 0 };
}

/** The session ids a node's REST lists for the project. */
export async function idsAt(url: string, projectKey: string): Promise<string[]> {
  return (await listAt(url, projectKey)).sessions.map((s) => s.sessionID).sort();
}

/** The OpenReplay tracker's reconnection delays after a refusal or a lost connection (then 10 s on). */
export const TRACKER_RETRY_MS = [1_000, 2_000, 4_000, 8_000, 10_000];

/**
 * A tracker tab that keeps coming back as the OpenReplay tracker does: same peerId, a new socket
 * after each refusal (`connect_error`, `SESSION_ALREADY_CONNECTED`) or lost connection, waiting
 * TRACKER_RETRY_MS between attempts. `route` picks the URL of each attempt (a balancer's choice).
 */
export class RetryingTab {
  peer: Peer | undefined;
  /** Every attempt: when it was made (ms since start) and how it ended. */
  readonly attempts: { at: number; outcome: 'connected' | 'refused' | 'pending' }[] = [];
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly route: (attempt: number) => string,
    private readonly o: TrackerOptions,
  ) {}

  get connected(): boolean {
    return this.peer?.socket.connected === true;
  }

  /** Refusals since the last successful connection. */
  get failures(): number {
    let n = 0;
    for (let i = this.attempts.length - 1; i >= 0 && this.attempts[i]?.outcome !== 'connected'; i--) n++;
    return n;
  }

  start(): this {
    this.attempt();
    return this;
  }

  private attempt(): void {
    if (this.stopped) return;
    const record: { at: number; outcome: 'connected' | 'refused' | 'pending' } = { at: Date.now() - this.startedAt, outcome: 'pending' };
    this.attempts.push(record);
    const peer = trackerPeer(this.route(this.attempts.length - 1), this.o);
    this.peer = peer;
    const retry = () => {
      if (this.stopped || this.peer !== peer || this.timer) return;
      peer.socket.close();
      const delay = TRACKER_RETRY_MS[Math.min(Math.max(0, this.failures - 1), TRACKER_RETRY_MS.length - 1)] ?? 10_000;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.attempt();
      }, Math.max(0, delay));
    };
    peer.socket.on('connect', () => {
      record.outcome = 'connected';
    });
    peer.socket.on('connect_error', () => {
      record.outcome = 'refused';
      retry();
    });
    peer.socket.on('SESSION_ALREADY_CONNECTED', () => {
      record.outcome = 'refused';
    });
    peer.socket.on('disconnect', () => retry());
  }

  /** Stops retrying and closes the current socket. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.peer?.close();
  }
}
