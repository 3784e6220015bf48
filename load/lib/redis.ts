/** A throw-away redis-server for the cluster scenarios (load/cluster.ts, --scenario cluster3). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './async';
import { findFreePort } from './hub';


export class RedisProcess {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisProcess> {
    if (spawnSync('redis-server', ['--version']).status !== 0) {
      throw new Error('redis-server is not installed: the cluster scenario needs one (Debian/Ubuntu: sudo apt-get install redis-server)');
    }
    const port = await findFreePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-bench-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: 'ignore' });
    const redis = new RedisProcess(port, child, dir);
    const deadline = Date.now() + 5_000;
    while (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() !== 'PONG') {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
      await sleep(50);
    }
    return redis;
  }

  /** A stall: the process stops answering, its connections stay open. */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.child.kill('SIGCONT');
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** One command through redis-cli; its raw output ('' when it failed). */
  cli(...args: string[]): string {
    return spawnSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }).stdout ?? '';
  }

  /** A stream's entries added since it was created (XINFO STREAM entries-added) and its length, or undefined. */
  streamCounts(key: string): { added: number; length: number } | undefined {
    const lines = this.cli('xinfo', 'stream', key).split('\n').map((line) => line.trim());
    const after = (name: string): number => Number(lines[lines.indexOf(name) + 1]);
    const added = after('entries-added');
    const length = after('length');
    return Number.isFinite(added) && Number.isFinite(length) ? { added, length } : undefined;
  }

  /**
   * The SLOWLOG since the last call (commands over slowlog-log-slower-than, 10 ms by default), then
   * resets it: each entry's duration in µs and its command with the first argument (an EVALSHA's
   * script, a key) — sizes, not the data.
   */
  slowCommands(): Array<{ us: number; command: string }> {
    // Plain output: per entry, id, timestamp, µs, then the arguments (one per line), client address and name.
    const out = this.cli('slowlog', 'get', '128').split('\n');
    this.cli('slowlog', 'reset');
    const entries: Array<{ us: number; command: string }> = [];
    for (let i = 0; i + 3 < out.length; i++) {
      // An entry starts with id, unix time, µs: three integers, the time ~now.
      const [id, time, us, command, first] = out.slice(i, i + 5);
      if (!/^\d+$/.test(id ?? '') || !/^\d{10}$/.test(time ?? '') || !/^\d+$/.test(us ?? '') || !/^[a-zA-Z]+$/.test(command ?? '')) continue;
      entries.push({ us: Number(us), command: `${command} ${(first ?? '').slice(0, 48)}` });
      i += 3;
    }
    return entries.sort((x, y) => y.us - x.us).slice(0, 10);
  }

  /** `INFO memory` used_memory in bytes, or undefined. */
  usedMemoryBytes(): number | undefined {
    const out = spawnSync('redis-cli', ['-p', String(this.port), 'info', 'memory'], { encoding: 'utf8' }).stdout ?? '';
    const match = /^used_memory:(\d+)/m.exec(out);
    return match ? Number(match[1]) : undefined;
  }

  stop(): void {
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

