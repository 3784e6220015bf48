/**
 * The bench's run-queue figures: how long each process's main thread waited for a CPU during a
 * phase. On a 2-core box shared by the hub and six load processes this wait, on the hub's side
 * and on the relay worker's, is what the mixed scenario's relay tail is made of
 * (docs/performance.md, "Fifth pass", relay), so the mixed table prints it.
 */
import os from 'node:os';
import path from 'node:path';
import { ManagedHub, parseAutogroupNice, parseProcStatCpu, parseSchedstat, readAutogroupNice, readBoxCpu, readMainThreadSched } from '../load/lib/hub';
import { PhaseRecorder, boxIdleShare, threadTimeSplit } from '../load/lib/phases';
import { delayBeyondInterval } from '../load/lib/relay';
import { cpuWaitLine, renderPhases, threadSplitCell } from '../load/lib/report';
import { LoadWorker, relayAutogroupNice, workerInit } from '../load/lib/workers';
import { parseOptions } from '../load/lib/options';
import { API_KEY, sharedTestHub } from './support/hub';

describe("the bench's wait-for-a-CPU figures", () => {
  it('reads run and wait time (ns) from a schedstat line, and refuses anything else', () => {
    expect(parseSchedstat('1500000000 250000000 4242\n')).toEqual({ runMs: 1500, waitMs: 250 });
    expect(parseSchedstat('')).toBeUndefined();
    expect(parseSchedstat('12')).toBeUndefined();
    expect(parseSchedstat('abc def 1')).toBeUndefined();
  });

  it("puts the hub first, then the longest waits, and leaves out those under 1% of the phase", () => {
    const phase = { durationMs: 10_000, mainThreadWaitMsByProcess: { orchestrator: 12, relay: 3628.4, hub: 3657.2, 'rest-1': 2951, dashboards: 99.9 } };
    expect(cpuWaitLine(phase as never)).toBe('hub 3657, relay 3628, rest-1 2951');
    expect(cpuWaitLine({ durationMs: 10_000, mainThreadWaitMsByProcess: {} } as never)).toBe('-');
    expect(cpuWaitLine(undefined)).toBe('-');
  });

  it("reads the machine's total and idle ticks from /proc/stat's first line, and refuses anything else", () => {
    // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in user.
    expect(parseProcStatCpu('cpu  100 5 40 800 20 1 4 0 7 0\ncpu0 50 2 20 400 10 0 2 0 0 0\n')).toEqual({ totalTicks: 970, idleTicks: 820 });
    expect(parseProcStatCpu('cpu0 50 2 20 400 10 0 2 0 0 0\n')).toBeUndefined();
    expect(parseProcStatCpu('cpu  1 2 x 4 5\n')).toBeUndefined();
    expect(parseProcStatCpu('')).toBeUndefined();
    const box = readBoxCpu();
    expect(box?.totalTicks).toBeGreaterThan(box?.idleTicks ?? Number.POSITIVE_INFINITY);
  });

  it('gives the idle share between two readings, null when one is missing or no time passed', () => {
    expect(boxIdleShare({ totalTicks: 1000, idleTicks: 300 }, { totalTicks: 1200, idleTicks: 350 })).toBe(0.25);
    expect(boxIdleShare(undefined, { totalTicks: 1200, idleTicks: 350 })).toBeNull();
    expect(boxIdleShare({ totalTicks: 1000, idleTicks: 300 }, { totalTicks: 1000, idleTicks: 300 })).toBeNull();
  });

  it('splits a window into on a CPU, waiting for one and sleeping (the rest, never below 0)', () => {
    expect(threadTimeSplit(10_000, 6_200, 2_600)).toEqual({ onCpu: 0.62, waiting: 0.26, sleeping: expect.closeTo(0.12, 10) });
    // Sampling edges can make run + wait a little longer than the window.
    expect(threadTimeSplit(1_000, 800, 230)?.sleeping).toBe(0);
    expect(threadTimeSplit(0, 1, 1)).toBeNull();
    expect(threadSplitCell({ onCpu: 0.62, waiting: 0.26, sleeping: 0.12 })).toBe('62/26/12%');
    expect(threadSplitCell(null)).toBe('-');
    expect(threadSplitCell(undefined)).toBe('-');
  });

  it('gives a loop delay as the time beyond the monitor interval, never below 0', () => {
    expect(delayBeyondInterval(35_000_000, 10)).toBe(25);
    expect(delayBeyondInterval(9_000_000, 10)).toBe(0);
  });

  it("reads this process's main thread from /proc", () => {
    const sched = readMainThreadSched(process.pid);
    expect(sched).toBeDefined();
    expect(sched?.runMs).toBeGreaterThan(0);
    expect(sched?.waitMs).toBeGreaterThanOrEqual(0);
    expect(readMainThreadSched(2 ** 30)).toBeUndefined();
  });

  it('reads the nice of an autogroup', () => {
    expect(parseAutogroupNice('/autogroup-1882 nice 0\n')).toBe(0);
    expect(parseAutogroupNice('/autogroup-7 nice -10\n')).toBe(-10);
    expect(parseAutogroupNice('')).toBeUndefined();
  });

  it("gives the managed hub's autogroup (its own session) the nice it is asked for", async () => {
    // Detached, the hub leads a session and an autogroup of its own: without this its group ran at
    // nice 0 whatever the bench's nice, sharing a loaded box evenly with every other session.
    const hub = ManagedHub.start({
      command: 'sleep 30',
      cwd: os.tmpdir(),
      port: 0,
      apiKey: 'k',
      jwtSecret: 's',
      openFileLimit: 1024,
      logFile: path.join(os.tmpdir(), `autogroup-${process.pid}.log`),
      autogroupNice: 7,
    });
    try {
      expect(hub.pid).toBeDefined();
      expect(readAutogroupNice(hub.pid as number)).toBe(7);
    } finally {
      hub.killNow();
    }
  });

  it("puts the relay worker in a group at the hub's nice, or in the caller's with --hub-autogroup-nice 0", () => {
    expect(relayAutogroupNice(undefined, -10)).toBe(-10);
    expect(relayAutogroupNice(5, -10)).toBe(5);
    expect(relayAutogroupNice(0, -10)).toBeUndefined();
    expect(parseOptions(['--hub-autogroup-nice', '-5']).hubAutogroupNice).toBe(-5);
    expect(parseOptions([]).hubAutogroupNice).toBeUndefined();
  });

  it('starts a load worker in an autogroup of its own at the nice it is given', async () => {
    const options = parseOptions(['--quick']);
    const worker = await LoadWorker.start('relay', workerInit(options, 'http://127.0.0.1:9', 60_000), () => undefined, 6);
    try {
      expect(readAutogroupNice(worker.pid as number)).toBe(6);
      expect(readAutogroupNice(process.pid)).not.toBe(6);
    } finally {
      await worker.stop(2000);
    }
  });

  describe('against a real hub', () => {
    const hub = sharedTestHub();

    it("records the hub's and the orchestrator's main-thread wait over an observed phase", async () => {
      // The test hub runs in this process, so its pid is ours.
      const recorder = new PhaseRecorder({ url: hub().url, apiKey: API_KEY, pid: process.pid }, () => []);
      await recorder.observe('busy', async () => {
        const until = Date.now() + 20;
        while (Date.now() < until) {
          // Keeps the main thread on a CPU, so its run time grows whatever the box does.
        }
      });
      const [phase] = recorder.observations;
      expect(Object.keys(phase?.mainThreadWaitMsByProcess ?? {}).sort()).toEqual(['hub', 'orchestrator']);
      expect(phase?.mainThreadWaitMsByProcess.hub).toBeGreaterThanOrEqual(0);
      expect(cpuWaitLine(phase)).toMatch(/^hub \d+/);
      // Busy for 20 ms of the phase: the main thread was on a CPU for some of it, and the box has a reading.
      expect(phase?.hubMainThread?.onCpu).toBeGreaterThan(0);
      expect(phase?.boxIdleShare).not.toBeNull();
      const table = renderPhases({ phases: recorder.observations } as never);
      expect(table).toContain('hub main: CPU/wait/sleep');
      expect(table).toMatch(/busy .* \d+\/\d+\/\d+% +\d+%/);
    });
  });
});
