/** Runs a command for a test: output captured, a bounded time, the whole process group ended after. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Ended by the test because `until` was satisfied. */
  stoppedEarly: boolean;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
  /** Ends the command (SIGTERM) as soon as its stdout satisfies this: for programs that keep running. */
  until?: (stdout: string) => boolean;
}

/** Ends a detached child's whole process group (npm → sh → node), then the child itself. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let stoppedEarly = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!stoppedEarly && options.until?.(stdout)) {
        stoppedEarly = true;
        killGroup(child, 'SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, stoppedEarly });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** `run` that throws, with the output, unless the command exits 0. */
export async function runOk(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0 && !result.stoppedEarly) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code ?? result.signal}${result.timedOut ? ' (timed out)' : ''}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`);
  }
  return result;
}
