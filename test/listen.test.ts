/**
 * LISTEN_BACKLOG reaches the kernel: the listener's accept-queue limit, as `ss` reports it
 * (the Send-Q column of a LISTEN socket), is the configured value capped at net.core.somaxconn.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Hub } from '../src/server';
import { startTestHub } from './support/hub';

function somaxconn(): number {
  return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
}

/** The accept-queue limit of the socket listening on this port, from `ss -ltn`. */
function listenQueueLimit(hub: Hub): number {
  const port = new URL(hub.url).port;
  const ss = spawnSync('ss', ['-H', '-l', '-t', '-n', `sport = :${port}`], { encoding: 'utf8' });
  if (ss.status !== 0) throw new Error(`ss failed (install iproute2): ${ss.stderr}`);
  const fields = ss.stdout.trim().split(/\s+/);
  // State Recv-Q Send-Q Local Peer: for a listener, Send-Q is the backlog.
  return Number(fields[2]);
}

describe('LISTEN_BACKLOG', () => {
  test('the listener gets the configured backlog', async () => {
    const hub = await startTestHub({ LISTEN_BACKLOG: '37' });
    try {
      expect(listenQueueLimit(hub)).toBe(Math.min(37, somaxconn()));
    } finally {
      await hub.shutdown();
    }
  });

  test('by default the most the kernel allows (65535 capped at somaxconn), not Node’s 511', async () => {
    const hub = await startTestHub();
    try {
      expect(listenQueueLimit(hub)).toBe(Math.min(65535, somaxconn()));
      if (somaxconn() > 511) expect(listenQueueLimit(hub)).toBeGreaterThan(511);
    } finally {
      await hub.shutdown();
    }
  });
});
