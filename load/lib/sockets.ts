/**
 * Opening Socket.IO client sockets the way the bench needs them: one engine.io connection per
 * socket (`forceNew`, otherwise socket.io-client multiplexes every `io()` to the same host onto
 * ONE connection and the hub would see a single client), WebSocket only, no automatic
 * reconnection (a dropped socket is an error to count, not something to hide).
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { PopulationConfig } from './population';

/** Where and how the workers reach the hub; sent to every worker at start. */
export interface HubConnection {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  socketPath: string;
  apiKey: string;
  jwtSecret: string;
  population: PopulationConfig;
}

export interface OpenSocketOptions {
  /** Namespace, e.g. '/dashboard'; '' for the main namespace. */
  namespace: string;
  query?: Record<string, string>;
  auth?: Record<string, string>;
  headers?: Record<string, string>;
  timeoutMs: number;
}

export class SocketOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SocketOpenError';
  }
}

/** Resolves once the socket is connected; rejects (and closes it) on connect_error or timeout. */
export function openSocket(hub: HubConnection, options: OpenSocketOptions): Promise<Socket> {
  const socketOptions: Partial<ManagerOptions & SocketOptions> = {
    path: hub.socketPath,
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: options.timeoutMs,
  };
  if (options.query !== undefined) socketOptions.query = options.query;
  if (options.auth !== undefined) socketOptions.auth = options.auth;
  // In Node, engine.io-client's WebSocket transport sends extraHeaders with the upgrade request.
  if (options.headers !== undefined) socketOptions.extraHeaders = options.headers;
  const socket = io(`${hub.url}${options.namespace}`, socketOptions);

  return new Promise((resolve, reject) => {
    const fail = (message: string): void => {
      cleanup();
      socket.disconnect();
      reject(new SocketOpenError(message));
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onConnectError = (error: Error): void => fail(error.message || 'connect_error');
    // The manager's own `timeout` normally fires first; this is the backstop.
    const backstop = setTimeout(() => fail('connect timeout'), options.timeoutMs + 2000);
    const cleanup = (): void => {
      clearTimeout(backstop);
      socket.off('connect', onConnect);
      socket.off('connect_error', onConnectError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onConnectError);
  });
}
