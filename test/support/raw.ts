/**
 * Clients below Socket.IO, for tests of what the hub does with bytes as they arrive: raw TCP
 * connections that write an upgrade request themselves, and tabs that write Socket.IO packets
 * over a bare WebSocket. Also a way to hold this process's event loop (the test hub runs in it)
 * so that what the clients send meanwhile reaches the hub in one poll phase.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import WebSocket from 'ws';
import type { Hub } from '../../src/server';

export const WS_PATH = '/ws-assist/socket/';

/** An engine.io WebSocket upgrade request, as a client writes it. */
export const UPGRADE_REQUEST = `GET ${WS_PATH}?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** Busy-waits: the hub cannot run, and what its sockets receive waits in the kernel. */
export function holdLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // nothing: the point is not to return to the event loop
  }
}

/** A raw TCP connection to the hub, connected, nothing sent yet. */
export function openRaw(hub: Hub): Promise<TcpSocket> {
  const { hostname, port } = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with what the hub answered, once its head is complete (or what came before the close). */
export function answerOf(socket: TcpSocket): Promise<string> {
  let received = '';
  return new Promise<string>((done) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) done(received);
    });
    socket.on('close', () => done(received));
    socket.on('error', () => undefined);
  });
}

/** A tab's WebSocket straight to engine.io (no Socket.IO client): the test writes the Socket.IO packets itself. */
export function rawTab(url: string, project: string, sessionId: string): WebSocket {
  const { host } = new URL(url);
  const query = new URLSearchParams({
    peerId: `${project}-${sessionId}-t1`,
    identity: 'session',
    tabId: 't1',
    sessionInfo: JSON.stringify({ sessionID: sessionId, timestamp: Date.now() }),
    EIO: '4',
    transport: 'websocket',
  });
  return new WebSocket(`ws://${host}${WS_PATH}?${query}`);
}
