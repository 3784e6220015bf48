/**
 * Everything the hub keeps in Redis, in one place: the key layout and the Lua scripts that change
 * it. Each script is one atomic step, so that a node's saved state and the replicated stream of
 * index changes can never disagree (see docs/cluster.md).
 *
 *   <p>ops          stream: replicated index changes; fields s (sequence), n (node), k (kind), p (payload)
 *   <p>ops:seq      counter: the sequence number of the last entry, so readers can see a gap
 *   <p>ops:ledger   list: "<entry id> <bytes>" of every entry the byte bound counts, oldest first
 *   <p>ops:bytes    counter: the bytes the ledger lists (what the stream holds, as the bound counts it)
 *   <p>nodes        set: ids of the nodes that joined and were not removed since
 *   <p>node:<id>    hash: that node's share of the view, one field per session room (nodeState.ts)
 *   <p>alive:<id>   string with a TTL: the node's heartbeat; its value is the running instance's token
 *   <p>relay        stream: the Socket.IO adapter's room traffic (its channels share the prefix)
 *   <p>relay:ledger list: "<entry id> <bytes>", as ops:ledger, for the relay stream's byte bound
 *   <p>relay:bytes  counter: the bytes relay:ledger lists
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

export interface ClusterKeys {
  readonly stream: string;
  readonly seq: string;
  readonly ledger: string;
  readonly bytes: string;
  readonly nodes: string;
  node(nodeId: string): string;
  alive(nodeId: string): string;
  /** Name (and channel prefix) of the Socket.IO adapter's stream. */
  readonly relay: string;
  readonly relayLedger: string;
  readonly relayBytes: string;
}

export function clusterKeys(prefix: string): ClusterKeys {
  return {
    stream: `${prefix}ops`,
    seq: `${prefix}ops:seq`,
    ledger: `${prefix}ops:ledger`,
    bytes: `${prefix}ops:bytes`,
    nodes: `${prefix}nodes`,
    node: (nodeId) => `${prefix}node:${nodeId}`,
    alive: (nodeId) => `${prefix}alive:${nodeId}`,
    relay: `${prefix}relay`,
    relayLedger: `${prefix}relay:ledger`,
    relayBytes: `${prefix}relay:bytes`,
  };
}

/** Stream entry kinds (field `k`). */
export const EntryKind = {
  /** A batch of index ops made by node `n` (payload: JSON array of IndexOp). */
  ops: 'o',
  /** Node `n`'s whole share of the view, replacing what others hold for it (payload: JSON [[field, share], ...]). */
  state: 's',
  /** The node named in the payload left or was found dead; published by node `n`. */
  down: 'x',
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/**
 * How much of the ops stream Redis keeps: at most `maxLen` entries (approximately) and at most
 * `maxBytes`, counted per entry as 5/4 of its payload and node id (Redis's allocator rounds each
 * block of the stream up to a size class) plus ENTRY_OVERHEAD_BYTES; the newest entry is always
 * kept, so one entry larger than the budget is the stream's whole content. A reader further
 * behind than what is kept sees a gap and reloads the view.
 */
export interface StreamBound {
  maxLen: number;
  maxBytes: number;
}

/**
 * What an entry costs Redis beyond its payload and node id, as the byte bound counts it: the
 * entry's id, sequence number and kind in the stream, and its line in the ledger (measured with
 * MEMORY USAGE in test/cluster.store.test.ts, "the ops stream is bounded in bytes").
 */
export const ENTRY_OVERHEAD_BYTES = 64;

/** The default byte budget of the ops stream (CLUSTER_STREAM_MAX_BYTES). */
export const DEFAULT_STREAM_MAX_BYTES = 64 * 1024 * 1024;

/** The ARGV pair of a script that appends to the stream. */
export const boundArgs = (bound: StreamBound): number[] => [bound.maxLen, bound.maxBytes];

/** The keys every script that appends to the stream takes, in this order, after its own. */
export const streamKeys = (keys: ClusterKeys): string[] => [keys.seq, keys.stream, keys.ledger, keys.bytes];

/**
 * Lua: `bound(stream, ledger, bytes, id, size, maxlen, maxbytes)` records the entry `id` just added
 * to `stream` as `size` bytes and trims the oldest entries until both bounds hold. The ledger is
 * trimmed to the same count, so it is bounded too; MINID trimming also drops any older entry the
 * ledger never listed. The newest entry always stays.
 */
const BOUND_LUA = `
local function bound(stream, ledger, bytes, id, size, maxlen, maxbytes)
  local count = redis.call('RPUSH', ledger, id .. ' ' .. size)
  local total = redis.call('INCRBY', bytes, size)
  local cut = false
  while count > 1 and (total > maxbytes or count > maxlen) do
    local head = redis.call('LPOP', ledger)
    total = redis.call('DECRBY', bytes, tonumber(string.match(head, ' (%d+)$')) or 0)
    count = count - 1
    cut = true
  end
  if cut then
    local oldest = redis.call('LINDEX', ledger, 0)
    redis.call('XTRIM', stream, 'MINID', string.match(oldest, '^(%S+)'))
  end
end
`;

/** The size the byte bound counts for an entry whose field values total `raw` bytes (Lua). */
const entrySizeLua = (raw: string): string => `math.floor((${raw}) * 5 / 4) + ${ENTRY_OVERHEAD_BYTES}`;

/**
 * Lua: `append(k, bound, node, kind, payload)` adds an entry (KEYS[k] to KEYS[k + 3] are
 * streamKeys, ARGV[bound] and ARGV[bound + 1] maxLen and maxBytes) and bounds the stream;
 * returns the entry's sequence number.
 */
const APPEND_LUA = `${BOUND_LUA}
local function append(k, bound_at, node, kind, payload)
  local maxlen = tonumber(ARGV[bound_at])
  local maxbytes = tonumber(ARGV[bound_at + 1])
  local seq = redis.call('INCR', KEYS[k])
  local id = redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', maxlen, '*', 's', seq, 'n', node, 'k', kind, 'p', payload)
  bound(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], id, ${entrySizeLua('#payload + #node')}, maxlen, maxbytes)
  return seq
end
`;

/** A Lua script run with EVALSHA, loaded with EVAL the first time a server does not know it. */
export class RedisScript {
  private readonly sha: string;

  constructor(
    readonly name: string,
    private readonly numberOfKeys: number,
    private readonly lua: string,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /**
   * `loadIfMissing` false: a NOSCRIPT is an error. For pipelined writes: running the script in full
   * after the error would put it behind writes sent meanwhile, out of order.
   */
  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[], loadIfMissing = true): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) throw new Error(`${this.name}: expected ${this.numberOfKeys} keys`);
    try {
      return await client.evalsha(this.sha, this.numberOfKeys, ...keys, ...args);
    } catch (err) {
      // A restarted Redis has an empty script cache: load the script by running it once in full.
      if (loadIfMissing && err instanceof Error && err.message.startsWith('NOSCRIPT')) return client.eval(this.lua, this.numberOfKeys, ...keys, ...args);
      throw err;
    }
  }

  /** Puts the script in the server's cache (a restarted Redis has none). */
  async load(client: Redis): Promise<void> {
    await client.script('LOAD', this.lua);
  }
}

/**
 * A node's writes: its changed room fields ('' deletes the field) and, when there are ops, one
 * stream entry carrying them. Atomic, so any entry a reader sees is already reflected in the hash
 * a joining node loads.
 * KEYS: node hash, then streamKeys. ARGV: maxLen, maxBytes, nodeId, ops JSON or '', then field,
 * value pairs. Returns the entry's sequence number, or 0 without ops.
 */
export const publishScript = new RedisScript(
  'publish',
  5,
  `${APPEND_LUA}
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if ARGV[4] == '' then return 0 end
return append(2, 1, ARGV[3], '${EntryKind.ops}', ARGV[4])
`,
);

/**
 * A node (re)joins: its hash is replaced by its whole current share, it is registered and alive,
 * and a state entry tells the others to replace what they hold for it.
 * KEYS: node hash, nodes set, alive key, then streamKeys. ARGV: maxLen, maxBytes, nodeId, ttl ms,
 * token, state payload, then field, value pairs. Returns the entry's sequence number.
 */
export const restateScript = new RedisScript(
  'restate',
  7,
  `${APPEND_LUA}
redis.call('DEL', KEYS[1])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
return append(4, 1, ARGV[3], '${EntryKind.state}', ARGV[6])
`,
);

/**
 * Heartbeat: refreshes the alive key and returns its previous value (nil when it had expired,
 * another token when a second process runs with the same node id).
 * KEYS: alive key, nodes set. ARGV: token, ttl ms, nodeId.
 */
export const heartbeatScript = new RedisScript(
  'heartbeat',
  2,
  `
local previous = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
redis.call('SADD', KEYS[2], ARGV[3])
return previous
`,
);

/**
 * Removes a node from the cluster: its hash, alive key and membership, and a down entry so every
 * node drops its tabs and agents at the same point of the stream. With ARGV[4] = '1' (eviction)
 * it does nothing if the node is alive after all (the check and the removal are one step, so a
 * node that comes back at that moment is never half-removed).
 * KEYS: node hash, alive key, nodes set, then streamKeys. ARGV: maxLen, maxBytes, the node's id,
 * the publisher's id, '1' to check the heartbeat first. Returns 1 when removed (a leaving node
 * always is), 0 when alive, 2 when Redis knew nothing of the node.
 */
export const downScript = new RedisScript(
  'down',
  7,
  `${APPEND_LUA}
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local known = redis.call('SREM', KEYS[3], ARGV[3]) + redis.call('DEL', KEYS[1], KEYS[2])
if known == 0 and ARGV[5] == '1' then return 2 end
append(4, 1, ARGV[4], '${EntryKind.down}', ARGV[3])
return 1
`,
);

/**
 * One entry of the Socket.IO adapter's room traffic, appended like its own XADD (relay.ts) and
 * bounded in bytes as the ops stream is: a relayed event can be as large as a Socket.IO packet
 * may be, so an entry count alone bounds nothing.
 * KEYS: relay stream, relay ledger, relay bytes. ARGV: maxLen, maxBytes, then the entry's field,
 * value pairs. Returns the entry's id.
 */
export const relayAppendScript = new RedisScript(
  'relay-append',
  3,
  `${BOUND_LUA}
local raw = 0
for i = 3, #ARGV do raw = raw + #ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
bound(KEYS[1], KEYS[2], KEYS[3], id, ${entrySizeLua('raw')}, tonumber(ARGV[1]), tonumber(ARGV[2]))
return id
`,
);
