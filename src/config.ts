/**
 * Typed configuration from the environment, validated once at start. A bad value stops the start
 * with a message naming the variable. Where the OpenReplay assist server has an equivalent setting,
 * its name is accepted too (listed as aliases below).
 */
import { z } from 'zod';
import { readableIssues } from './validation';

export interface ApiKeyGrant {
  key: string;
  /** Project keys the key may read; `'*'` = all. */
  projects: ReadonlySet<string> | '*';
}

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])], { error: 'must be one of true, false (or 1, 0, yes, no)' }).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
/** A decimal integer: blank, hex (`0x..`) and exponent (`8e3`) spellings are refused, not coerced. */
const int = (min: number, max: number) =>
  z.string().trim().regex(/^-?\d+$/, 'must be an integer').transform(Number).pipe(z.number().int().min(min).max(max));

/** Each setting: its schema, its default, and the environment names it is read from (first wins). */
const settings = {
  host: { env: ['LISTEN_HOST', 'HOST'], schema: z.string().min(1), default: '0.0.0.0' },
  port: { env: ['LISTEN_PORT', 'PORT'], schema: int(0, 65535), default: 9001 },
  wsPathAliases: {
    env: ['WS_PATH_ALIASES'],
    schema: z
      .string()
      .regex(/^(none|\/[\w\-/.]*(,\/[\w\-/.]*)*)$/, 'must be paths starting with /, comma-separated, or none')
      .transform((v) => (v === 'none' ? [] : v.split(','))),
    default: ['/socket'],
  },
  /**
   * Pending connections the kernel queues before accept. Node's default, 511, overflows in a
   * reconnect storm; the kernel caps whatever is asked at net.core.somaxconn, so asking for the most
   * leaves that one sysctl as the operator's only lever.
   */
  listenBacklog: { env: ['LISTEN_BACKLOG'], schema: int(1, 65535), default: 65535 },
  /** Longest run of queued WebSocket upgrades and teardowns before other I/O gets a turn (src/live/lifecyclePacing.ts); 0 = inline, unpaced. */
  lifecycleTurnMs: { env: ['LIFECYCLE_TURN_MS'], schema: int(0, 1_000), default: 5 },
  /** Upgrades waiting for their turn at once; 0 = MAX_CONNECTIONS in force. */
  maxQueuedUpgrades: { env: ['MAX_QUEUED_UPGRADES'], schema: int(0, 10_000_000), default: 0 },
  /** New connections read from at once before their first request (src/live/firstReads.ts); 0 = every one as it is accepted. */
  maxUnreadConnections: { env: ['MAX_UNREAD_CONNECTIONS'], schema: int(0, 1_000_000), default: 64 },
  /**
   * How long such a connection may hold its place without sending a request while others wait (ms):
   * longer than a loaded client takes to write one, short enough that idle ones delay new ones little.
   */
  firstReadExpireMs: { env: ['FIRST_READ_EXPIRE_MS'], schema: int(1, 60_000), default: 100 },
  wsPath: { env: ['WS_PATH'], schema: z.string().regex(/^\/[\w\-/.]*$/, 'must be a path starting with /'), default: '/ws-assist/socket' },
  corsOrigin: { env: ['CORS_ORIGIN'], schema: z.string().min(1), default: '*' },
  jwtSecret: { env: ['ASSIST_JWT_SECRET', 'HUB_JWT_SECRET'], schema: z.string().min(8, 'must be at least 8 characters').optional(), default: undefined },
  apiKeys: { env: ['HUB_API_KEYS'], schema: z.string().optional(), default: undefined },
  apiKeysFile: { env: ['HUB_API_KEYS_FILE'], schema: z.string().optional(), default: undefined },
  devKeyFile: { env: ['HUB_DEV_KEY_FILE'], schema: z.string().min(1), default: '.hub-dev-key' },
  projectKeyLength: { env: ['PROJECT_KEY_LENGTH'], schema: int(0, 256), default: 20 },
  maxHttpBufferSize: { env: ['MAX_HTTP_BUFFER_SIZE'], schema: int(1024, 100 * 1024 * 1024), default: 5 * 1024 * 1024 },
  /** OpenReplay's `maxHttpBufferSize` is in megabytes (it multiplies by 1e6): applied in loadConfig. */
  maxHttpBufferSizeMb: {
    env: ['maxHttpBufferSize'],
    schema: z.string().trim().regex(/^\d+(\.\d+)?$/, 'must be a number of megabytes').transform(Number).pipe(z.number().min(0.001).max(100)).optional(),
    default: undefined,
  },
  maxHeaderSize: { env: ['MAX_HEADER_SIZE'], schema: int(8 * 1024, 1024 * 1024), default: 64 * 1024 },
  compression: { env: ['COMPRESSION'], schema: bool, default: false },
  restBodyLimit: { env: ['REST_BODY_LIMIT'], schema: int(1024, 10 * 1024 * 1024), default: 64 * 1024 },
  restRateLimit: { env: ['REST_RATE_LIMIT'], schema: int(0, 1_000_000), default: 10_000 },
  /** Longest run of REST searches, lists and autocompletes before other I/O gets a turn; 0 = inline. */
  restTurnMs: { env: ['REST_TURN_MS'], schema: int(0, 1_000), default: 5 },
  restGzipMinBytes: { env: ['REST_GZIP_MIN_BYTES'], schema: int(0, 100 * 1024 * 1024), default: 1024 },
  geoCountryHeader: { env: ['GEO_COUNTRY_HEADER'], schema: z.string().min(1).optional(), default: undefined },
  geoStateHeader: { env: ['GEO_STATE_HEADER'], schema: z.string().min(1).optional(), default: undefined },
  geoCityHeader: { env: ['GEO_CITY_HEADER'], schema: z.string().min(1).optional(), default: undefined },
  sessionDataMaxBytes: { env: ['SESSION_DATA_MAX_BYTES'], schema: int(1024, 1024 * 1024), default: 16 * 1024 },
  sessionDataMaxDepth: { env: ['SESSION_DATA_MAX_DEPTH'], schema: int(2, 64), default: 8 },
  uaCacheSize: { env: ['UA_CACHE_SIZE'], schema: int(1, 1_000_000), default: 5_000 },
  searchCacheSize: { env: ['SEARCH_CACHE_SIZE'], schema: int(0, 1_000_000), default: 1_000 },
  sessionJsonCacheSize: { env: ['SESSION_JSON_CACHE_SIZE'], schema: int(0, 1_000_000), default: 2_000 },
  shutdownTimeoutMs: { env: ['SHUTDOWN_TIMEOUT_MS'], schema: int(0, 600_000), default: 10_000 },
  logLevel: { env: ['LOG_LEVEL'], schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), default: 'info' },
  /** OpenReplay's `debug=1`: debug logs unless LOG_LEVEL says otherwise (applied in loadConfig). */
  debug: { env: ['debug'], schema: bool, default: false },
  // ---- OpenReplay's internal API and geo (src/http/openreplay.ts, src/live/geo.ts) ----
  assistKey: {
    env: ['ASSIST_KEY'],
    schema: z.string().regex(/^[A-Za-z0-9._~-]{8,256}$/, 'must be 8 to 256 letters, digits or . _ ~ - (it is a URL path segment)').optional(),
    default: undefined,
  },
  prefix: { env: ['PREFIX', 'prefix'], schema: z.string().regex(/^(\/[A-Za-z0-9._~-]+)+$/, 'must be a path such as /assist'), default: '/assist' },
  maxmindDbFile: { env: ['MAXMINDDB_FILE'], schema: z.string().min(1).optional(), default: undefined },
  clientIpHeader: {
    env: ['CLIENT_IP_HEADER'],
    schema: z.string().regex(/^(none|[A-Za-z0-9-]{1,64})$/, 'must be a header name, or none').transform((v) => (v.toLowerCase() === 'none' ? undefined : v.toLowerCase())),
    default: 'x-forwarded-for',
  },
  debugGc: { env: ['HUB_DEBUG_GC'], schema: bool, default: false },
  /** prom-client's nodejs_active_handles/_resources (and _total): each lists every handle on the event loop at each scrape. */
  handleMetrics: { env: ['METRICS_ACTIVE_HANDLES'], schema: bool, default: false },
  /** Logs every event-loop stall of at least this many ms with what it held (GC, CPU, queues); 0 = off. A debugging aid (src/ops/loopStalls.ts). */
  debugLoopStallMs: { env: ['HUB_DEBUG_LOOP_STALL_MS'], schema: int(0, 600_000), default: 0 },
  consoleEnabled: { env: ['CONSOLE'], schema: bool, default: true },
  opsPort: { env: ['OPS_PORT'], schema: int(0, 65535).optional(), default: undefined },
  logSummaryMs: { env: ['LOG_SUMMARY_INTERVAL_MS'], schema: int(0, 3_600_000), default: 60_000 },
  // Live subscriptions (/dashboard namespace)
  diffWindowMs: { env: ['DASHBOARD_DIFF_WINDOW_MS'], schema: int(0, 10_000), default: 50 },
  maxSubscriptionsPerSocket: { env: ['DASHBOARD_MAX_SUBSCRIPTIONS_PER_SOCKET'], schema: int(1, 10_000), default: 20 },
  maxSubscriptionsPerProject: { env: ['DASHBOARD_MAX_SUBSCRIPTIONS_PER_PROJECT'], schema: int(1, 1_000_000), default: 2_000 },
  dashboardBufferBytes: { env: ['DASHBOARD_BUFFER_BYTES'], schema: int(1024, 1024 * 1024 * 1024), default: 1024 * 1024 },
  diffHistorySize: { env: ['DASHBOARD_HISTORY_SIZE'], schema: int(0, 100_000), default: 256 },
  diffHistoryAgeMs: { env: ['DASHBOARD_HISTORY_AGE_MS'], schema: int(0, 3_600_000), default: 60_000 },
  // Hardening against hostile or unlucky clients (issue 12)
  maxTabsPerSession: { env: ['MAX_TABS_PER_SESSION'], schema: int(1, 100_000), default: 100 },
  relayBufferBytes: { env: ['RELAY_BUFFER_BYTES'], schema: int(1024, 1024 * 1024 * 1024), default: 16 * 1024 * 1024 },
  maxSubscriptionsPerCredential: { env: ['DASHBOARD_MAX_SUBSCRIPTIONS_PER_CREDENTIAL'], schema: int(1, 1_000_000), default: 500 },
  duplicateTabPingMs: { env: ['DUPLICATE_TAB_PING_MS'], schema: int(0, 60_000), default: 1_500 },
  maxConnections: { env: ['MAX_CONNECTIONS'], schema: int(0, 10_000_000), default: 0 },
  shutdownDrainMs: { env: ['SHUTDOWN_DRAIN_MS'], schema: int(0, 600_000), default: 0 },
  nodeId: { env: ['NODE_ID'], schema: z.string().regex(/^[\w.-]{1,64}$/, 'letters, digits, _ . - only').optional(), default: undefined },
  // ---- Cluster mode (src/cluster/, docs/cluster.md): unset REDIS_URL = single node ----
  redisUrl: { env: ['REDIS_URL'], schema: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL').optional(), default: undefined },
  redisSentinels: { env: ['REDIS_SENTINELS'], schema: z.string().trim().regex(/^[^\s,]+:\d{1,5}(\s*,\s*[^\s,]+:\d{1,5})*$/, 'must be host:port[,host:port...]').optional(), default: undefined },
  redisSentinelName: { env: ['REDIS_SENTINEL_NAME'], schema: z.string().regex(/^[\w.-]{1,128}$/, 'letters, digits, _ . - only'), default: 'mymaster' },
  redisSentinelPassword: { env: ['REDIS_SENTINEL_PASSWORD'], schema: z.string().min(1).optional(), default: undefined },
  redisUsername: { env: ['REDIS_USERNAME'], schema: z.string().min(1).optional(), default: undefined },
  redisPassword: { env: ['REDIS_PASSWORD'], schema: z.string().min(1).optional(), default: undefined },
  redisPasswordFile: { env: ['REDIS_PASSWORD_FILE'], schema: z.string().min(1).optional(), default: undefined },
  redisTls: { env: ['REDIS_TLS'], schema: bool, default: false },
  redisTlsCaFile: { env: ['REDIS_TLS_CA_FILE'], schema: z.string().min(1).optional(), default: undefined },
  redisTlsCertFile: { env: ['REDIS_TLS_CERT_FILE'], schema: z.string().min(1).optional(), default: undefined },
  redisTlsKeyFile: { env: ['REDIS_TLS_KEY_FILE'], schema: z.string().min(1).optional(), default: undefined },
  redisTlsServerName: { env: ['REDIS_TLS_SERVERNAME'], schema: z.string().min(1).optional(), default: undefined },
  redisPrefix: { env: ['REDIS_PREFIX'], schema: z.string().regex(/^[\w:{}.-]{1,64}$/, 'letters, digits and _ : { } . - only'), default: 'hub:' },
  clusterHeartbeatMs: { env: ['CLUSTER_HEARTBEAT_MS'], schema: int(20, 60_000), default: 1_000 },
  clusterNodeTtlMs: { env: ['CLUSTER_NODE_TTL_MS'], schema: int(100, 600_000), default: 5_000 },
  clusterStreamMaxLen: { env: ['CLUSTER_STREAM_MAXLEN'], schema: int(1_000, 100_000_000), default: 100_000 },
  clusterStreamMaxBytes: { env: ['CLUSTER_STREAM_MAX_BYTES'], schema: int(65_536, 1_000_000_000_000), default: 64 * 1024 * 1024 },
  clusterRelayMaxLen: { env: ['CLUSTER_RELAY_MAXLEN'], schema: int(100, 100_000_000), default: 10_000 },
  clusterRelayMaxBytes: { env: ['CLUSTER_RELAY_MAX_BYTES'], schema: int(65_536, 1_000_000_000_000), default: 64 * 1024 * 1024 },
  clusterJoinTimeoutMs: { env: ['CLUSTER_JOIN_TIMEOUT_MS'], schema: int(0, 600_000), default: 10_000 },
  clusterStallMs: { env: ['CLUSTER_STALL_MS'], schema: int(20, 60_000), default: 500 },
  // ---- end of cluster mode ----
} as const;

type Settings = typeof settings;
export type Config = { [K in keyof Settings]: z.output<Settings[K]['schema']> };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const readable = readableIssues();

/** Reads and validates every setting; throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, setting] of Object.entries(settings)) {
    const varName = setting.env.find((e) => env[e] !== undefined && env[e] !== '');
    if (varName === undefined) {
      out[name] = setting.default;
      continue;
    }
    const parsed = (setting.schema as z.ZodType).safeParse(env[varName], { error: readable });
    if (parsed.success) out[name] = parsed.data;
    else problems.push(`${varName}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join(' | ')}`);
  if (out.debug === true && !env.LOG_LEVEL) out.logLevel = 'debug';
  if (typeof out.maxHttpBufferSizeMb === 'number' && !env.MAX_HTTP_BUFFER_SIZE) out.maxHttpBufferSize = Math.max(1024, Math.round(out.maxHttpBufferSizeMb * 1e6));
  return out as Config;
}

/**
 * Parses API keys: `key1:projectA,projectB;key2:*` (HUB_API_KEYS), or a JSON file
 * `{"key1": ["projectA", "projectB"], "key2": "*"}` (HUB_API_KEYS_FILE).
 */
export function parseApiKeys(spec: string): ApiKeyGrant[] {
  const grants: ApiKeyGrant[] = [];
  for (const entry of spec.split(/[;\n]/).map((e) => e.trim()).filter(Boolean)) {
    const colon = entry.lastIndexOf(':');
    if (colon <= 0) throw new ConfigError('HUB_API_KEYS: each entry must be key:project1,project2 or key:*');
    const key = entry.slice(0, colon).trim();
    const projects = entry.slice(colon + 1).split(',').map((p) => p.trim()).filter(Boolean);
    if (key.length < 8) throw new ConfigError('HUB_API_KEYS: keys must be at least 8 characters');
    if (projects.length === 0) throw new ConfigError('HUB_API_KEYS: an entry names no project (use * for all)');
    grants.push({ key, projects: projects.includes('*') ? '*' : new Set(projects) });
  }
  return grants;
}

export function parseApiKeysJson(text: string, source: string): ApiKeyGrant[] {
  const schema = z.record(z.string().min(8, 'keys must be at least 8 characters'), z.union([z.literal('*'), z.array(z.string().min(1)).min(1)]));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError(`HUB_API_KEYS_FILE: ${source} is not valid JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    // Name entries by position, never by key: the keys are secrets and this message goes to logs.
    const keys = typeof json === 'object' && json !== null ? Object.keys(json) : [];
    const where = (path: PropertyKey[]) =>
      path.length === 0 ? 'the file' : [`entry ${keys.indexOf(String(path[0])) + 1}`, ...path.slice(1).map(String)].join('.');
    const why = (i: z.core.$ZodIssue) => (i.code === 'invalid_key' ? 'keys must be at least 8 characters' : i.message);
    throw new ConfigError(`HUB_API_KEYS_FILE: ${source}: ${parsed.error.issues.map((i) => `${where(i.path)}: ${why(i)}`).join('; ')}`);
  }
  return Object.entries(parsed.data).map(([key, projects]) => ({ key, projects: projects === '*' ? '*' : new Set(projects) }));
}
