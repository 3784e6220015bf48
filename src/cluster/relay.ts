/**
 * Room traffic across nodes: the Socket.IO Redis Streams adapter. With it, `io.to(socketId)` and
 * `io.to(roomId)` reach sockets on every node, so the handlers in live/rooms.ts need no change and
 * never call `fetchSockets`: they already know each tab's and agent's socket id from the index.
 *
 * Why the Streams adapter rather than the pub/sub one (`@socket.io/redis-adapter`): it is already a
 * dependency; a node whose reading connection drops briefly resumes from its last stream offset
 * instead of losing what was published meanwhile; it supports Socket.IO's connection state
 * recovery should the hub enable it; and it runs on the same Redis feature (Streams) as the index
 * replication, so there is one thing to size and watch. What it costs, and how it is bounded, is
 * in docs/cluster.md (relayed payloads stay in Redis until trimmed: CLUSTER_RELAY_MAXLEN and
 * CLUSTER_RELAY_MAX_BYTES).
 */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import Redis, { type RedisOptions } from 'ioredis';
import { Adapter, type BroadcastOptions, MessageType } from 'socket.io-adapter';
import type { Namespace, Server } from 'socket.io';
import type { Logger } from '../ops/logger';
import type { RedisTarget } from './connection';
import type { ClusterMetrics } from './metrics';
import { type ClusterKeys, type StreamBound, relayAppendScript } from './redisSchema';

/**
 * The adapter publishes with this client and reads with duplicates of it. The two need opposite
 * behaviours while Redis is away:
 * - publishing must fail at once: the adapter delivers to local sockets only after its XADD
 *   settles, so a queued XADD would stall this node's own room traffic for the whole outage;
 * - reading must wait: the adapter re-issues its XREAD as soon as one fails, so a read that fails
 *   at once would spin; queued, it simply resumes when Redis is back.
 */
class RelayClient extends Redis {
  /** The adapter's reading connections, closed with the adapter rather than after their next BLOCK. */
  readonly readers: Redis[] = [];

  override duplicate(override?: Partial<RedisOptions>): Redis {
    // A short disconnectTimeout: the adapter disconnects its readers again after we did, and
    // ioredis then keeps a timer (default 2 s) for a stream that already closed, delaying exit.
    const reader = new Redis({ ...this.options, enableOfflineQueue: true, maxRetriesPerRequest: null, disconnectTimeout: 100, ...override });
    this.readers.push(reader);
    keepSubscribing(reader);
    return reader;
  }
}

/**
 * The adapter SUBSCRIBEs on a duplicate and never handles the promise: with Redis unreachable the
 * command times out and the rejection would end the process (a node started during an outage
 * crash-looped). Here a failed SUBSCRIBE is caught and issued again each time the connection is
 * ready, until it succeeds (ioredis itself re-subscribes after later reconnections). The channels
 * carry only the adapter's ephemeral messages (fetchSockets, serverSideEmit), which the hub does
 * not use; room traffic goes through the stream.
 */
function keepSubscribing(client: Redis): void {
  const subscribe = client.subscribe.bind(client) as (...channels: string[]) => Promise<unknown>;
  const wanted = new Set<string>();
  let subscribed = false;
  const attempt = (): Promise<unknown> => {
    const pending = subscribe(...wanted).then(
      (count) => {
        subscribed = true;
        return count;
      },
      () => 0,
    );
    return pending;
  };
  client.on('ready', () => {
    if (!subscribed && wanted.size > 0) void attempt();
  });
  (client as unknown as { subscribe: (...args: unknown[]) => Promise<unknown> }).subscribe = (...args: unknown[]) => {
    for (const arg of args.flat()) if (typeof arg === 'string') wanted.add(arg);
    return attempt();
  };
}

export interface RelayOptions {
  redis: RedisTarget;
  nodeId: string;
  /** `relay` is the stream's name and channel prefix; the ledger and counter keep its byte bound. */
  keys: Pick<ClusterKeys, 'relay' | 'relayLedger' | 'relayBytes'>;
  bound: StreamBound;
  logger: Logger;
  metrics: ClusterMetrics;
}

/**
 * The cluster adapter delivers a broadcast to this node's own sockets only once its XADD has
 * settled: while Redis is frozen, an agent and a tab on the same node would wait for it (up to the
 * command timeout). Here this node's sockets get the packet at once, as with the in-memory adapter,
 * and the publication for the other nodes goes out after, in the same order. What is lost is only
 * the stream offset that Socket.IO's connection state recovery would attach to each packet, which
 * the hub does not enable.
 */
function deliverLocallyFirst(adapter: Adapter): void {
  const cluster = adapter as unknown as { publish(message: { type: number; data: unknown }): void };
  adapter.broadcast = (packet: unknown, opts: BroadcastOptions): void => {
    Adapter.prototype.broadcast.call(adapter, packet, opts);
    if (opts.flags?.local) return;
    cluster.publish({ type: MessageType.BROADCAST, data: { packet, opts: { rooms: [...opts.rooms], except: [...(opts.except ?? [])], flags: opts.flags } } });
  };
}

/**
 * The adapter appends each broadcast with its own `XADD ... MAXLEN ~ n`, a bound in entries only:
 * with relayed events up to MAX_HTTP_BUFFER_SIZE each, that bounds nothing in bytes. Its appends
 * to the relay stream go through relayAppendScript instead, which adds the same entry and trims
 * the stream to the byte budget as well. Any other XADD shape is passed through untouched.
 */
function boundRelayAppends(client: Redis, keys: RelayOptions['keys'], bound: StreamBound): void {
  const commands = client as unknown as { xadd: (...args: unknown[]) => Promise<unknown> };
  const xadd = commands.xadd.bind(client);
  commands.xadd = (...args: unknown[]) => {
    const flat = args.flat();
    // The adapter's call: stream, 'MAXLEN', '~', count, '*', then field, value pairs.
    const fields = flat.slice(5);
    const adapterShape = flat[0] === keys.relay && flat[1] === 'MAXLEN' && flat[4] === '*' && fields.length % 2 === 0 && fields.every((f) => typeof f === 'string');
    if (!adapterShape) return xadd(...args);
    return relayAppendScript.run(client, [keys.relay, keys.relayLedger, keys.relayBytes], [bound.maxLen, bound.maxBytes, ...(fields as string[])]);
  };
  // A restarted Redis has no scripts: load it before the adapter's first append rather than on a NOSCRIPT.
  client.on('ready', () => void relayAppendScript.load(client).catch(() => undefined));
}

/** Sets the Redis adapter on every namespace of `io`; its Redis connections close with `io.close()`. */
export function attachRelay(io: Server, o: RelayOptions): void {
  const settings: RedisOptions = {
    ...o.redis.options,
    connectionName: `hub:${o.nodeId}:relay`,
    enableOfflineQueue: false,
    // An XADD in flight when the connection breaks must settle (the adapter delivers locally only
    // after it does): re-sent after a quick reconnection, failed after a retry otherwise, and
    // timed out as a last resort.
    autoResendUnfulfilledCommands: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    connectTimeout: 2_000,
  };
  const client = o.redis.url !== undefined ? new RelayClient(o.redis.url, settings) : new RelayClient(settings);
  let failing = false;
  client.on('error', (err: Error) => {
    o.metrics.redisErrors.inc({ client: 'relay' });
    if (!failing) o.logger.warn({ err: err.message }, 'relay: redis error (cross-node room traffic is interrupted until Redis is back)');
    failing = true;
  });
  client.on('ready', () => {
    failing = false;
  });

  boundRelayAppends(client, o.keys, o.bound);
  const factory = createAdapter(client, {
    streamName: o.keys.relay,
    channelPrefix: o.keys.relay,
    sessionKeyPrefix: `${o.keys.relay}:session:`,
    maxLen: o.bound.maxLen,
  });
  let open = 0;
  // A function expression, not an arrow: Socket.IO calls the adapter factory with `new`.
  io.adapter(function relayAdapter(nsp: Namespace) {
    const adapter = factory(nsp);
    deliverLocallyFirst(adapter);
    open++;
    const close = adapter.close.bind(adapter);
    adapter.close = () => {
      const closing = close();
      // The last namespace closed (io.close()): the publishing connection goes too, after the
      // XADDs of the sockets' last events (QUIT is answered after every pending command).
      if (--open === 0) {
        // The adapter has stopped polling (it checks that after each read): end its blocked reads now.
        for (const reader of client.readers) reader.disconnect();
        client.quit().catch(() => client.disconnect());
      }
      return closing;
    };
    return adapter;
  });
}
