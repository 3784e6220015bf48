/**
 * REST clients: closed-loop callers of the public session API, each with a keep-alive
 * connection, as an agent dashboard or an API integration would poll it.
 *
 * Latency is measured from issuing a request to the last byte of its body. Bodies are checked
 * (status always, content on a sample) outside the timed section.
 */
import http from 'node:http';
import { errorCodeOf, httpRequest, isRecord } from './http';
import { LeanHttpConnection, buildRequest, decodeBody } from './leanHttp';
import { sessionCountForTabs, sessionIdentity, tabIdentity } from './population';
import type { HubConnection } from './sockets';
import { ErrorCounts, LatencyHistogram, describeError, type HistogramJson } from './stats';
import type { Generator } from './trackers';

/**
 * `search` sends the 2-filter search with a page of `--search-limit` (50); `search10` sends the same
 * filters with a page of {@link SAME_PAGE_SEARCH_LIMIT}, full at every step, so that its rates
 * compare the same answer at 1,000 and at 19,000 sessions.
 */
export type RestOperation = 'list' | 'search' | 'search10' | 'one';
export const REST_OPERATIONS: readonly RestOperation[] = ['list', 'search', 'search10', 'one'];

/**
 * A page every project fills at every step: at 1,000 tabs a project has ~45 sessions and ~14 of
 * them match the two filters, so a page of 50 is smaller there (8.6 KB) than from 5,000 on (30 KB).
 */
export const SAME_PAGE_SEARCH_LIMIT = 10;

export function isSearchOperation(operation: string): boolean {
  return operation === 'search' || operation === 'search10';
}

export interface RestRunArgs {
  operation: RestOperation;
  /** Clients calling in parallel, each waiting for its answer before the next call. */
  concurrency: number;
  durationMs: number;
  /** Tabs currently connected (indices 0..liveTabs-1): `one` asks for their sessions. */
  liveTabs: number;
  requestTimeoutMs: number;
  /** Ask for gzip-compressed answers (`--rest-gzip`). */
  gzip: boolean;
  /** Page size of the search (`--search-limit`). */
  searchLimit: number;
}

export interface RestRunResult {
  operation: RestOperation;
  concurrency: number;
  requests: number;
  ok: number;
  failed: number;
  elapsedMs: number;
  latency: HistogramJson;
  responseBytes: number;
}

/** The filtered search every `search` call sends: two filters, a page of 50 (`--search-limit`). */
export const SEARCH_BODY = {
  filters: [
    { type: 'METADATA', source: 'plan', operator: 'is', value: ['trial', 'free'] },
    { type: 'USERBROWSER', operator: 'contains', value: ['chrome'] },
  ],
  sort: 'timestamp',
  order: 'DESC',
  limit: 50,
  page: 1,
};
const SEARCH_PLANS = new Set(['trial', 'free']);

/** Hard cap on calls per run, whatever the duration: keeps every loop bounded in count too. */
const MAX_REQUESTS_PER_RUN = 2_000_000;
/** Full validation of list/search bodies on one call in N: parsing 200 sessions is not free. */
const VALIDATE_EVERY = 20;

interface PlannedCall {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** For `one`: the session id the answer must carry. */
  expectedSessionId?: string;
}

/** One answer, as the closed loop needs it: the body is decoded only when asked for. */
interface RestAnswer {
  status: number;
  wireBytes: number;
  latencyMs: number;
  body(): string;
}

/** One client of the closed loop: its own connection, one call at a time. */
interface RestClient {
  send(call: PlannedCall): Promise<RestAnswer>;
  close(): void;
}

export class RestLoad {
  constructor(
    private readonly hub: HubConnection,
    private readonly errors: ErrorCounts,
    private readonly generator: Generator = 'lean',
  ) {}

  async run(args: RestRunArgs): Promise<RestRunResult> {
    return this.generator === 'lean' ? this.runLean(args) : this.runNodeHttp(args);
  }

  /** node:http clients (`--generator socketio`): the REST load before Nov 30, kept for A/B. */
  private async runNodeHttp(args: RestRunArgs): Promise<RestRunResult> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: args.concurrency });
    try {
      return await this.closedLoop(args, () => ({
        send: async (call) => {
          const response = await httpRequest({
            method: call.method,
            url: `${this.hub.url}${call.path}`,
            headers: { authorization: this.hub.apiKey },
            agent,
            timeoutMs: args.requestTimeoutMs,
            acceptGzip: args.gzip,
            ...(call.body !== undefined ? { body: call.body } : {}),
          });
          return { status: response.status, wireBytes: response.wireBytes, latencyMs: response.latencyMs, body: () => response.body };
        },
        close: () => undefined,
      }));
    } finally {
      agent.destroy();
    }
  }

  /**
   * Lean connections (leanHttp.ts): request bytes built once per distinct call, bodies decoded
   * (gunzip, UTF-8) only when checked.
   */
  private runLean(args: RestRunArgs): Promise<RestRunResult> {
    const headers: Record<string, string> = { authorization: this.hub.apiKey };
    if (args.gzip) headers['accept-encoding'] = 'gzip';
    // One entry per project for list/search, one per session for `one`: bounded by the population.
    const prebuilt = new Map<string, Buffer>();
    const bytesOf = (call: PlannedCall): Buffer => {
      let bytes = prebuilt.get(call.path);
      if (bytes === undefined) {
        bytes = buildRequest(this.hub.url, call.method, call.path, headers, call.body);
        prebuilt.set(call.path, bytes);
      }
      return bytes;
    };
    return this.closedLoop(args, () => {
      const connection = new LeanHttpConnection(this.hub.url, args.requestTimeoutMs);
      return {
        send: async (call) => {
          const response = await connection.request(bytesOf(call));
          return { status: response.status, wireBytes: response.raw.byteLength, latencyMs: response.latencyMs, body: () => decodeBody(response) };
        },
        close: () => connection.close(),
      };
    });
  }

  /**
   * `args.concurrency` clients, each calling again as soon as its answer is in, until the duration
   * is over. The status of every answer is checked, the content of one in VALIDATE_EVERY (and of
   * every `one`), outside the timed part.
   */
  private async closedLoop(args: RestRunArgs, openClient: () => RestClient): Promise<RestRunResult> {
    const latency = new LatencyHistogram();
    const startedAt = performance.now();
    const endAt = startedAt + args.durationMs;
    let requests = 0;
    let ok = 0;
    let responseBytes = 0;
    const sessionCount = Math.max(1, sessionCountForTabs(args.liveTabs));
    const searchBody = JSON.stringify({ ...SEARCH_BODY, limit: pageLimitOf(args) });
    const clients: RestClient[] = [];

    const loop = async (clientIndex: number): Promise<void> => {
      const client = openClient();
      clients.push(client);
      let callIndex = 0;
      while (performance.now() < endAt && requests < MAX_REQUESTS_PER_RUN) {
        requests += 1;
        callIndex += 1;
        const call = this.plan(args, sessionCount, searchBody);
        try {
          const answer = await client.send(call);
          responseBytes += answer.wireBytes;
          if (answer.status !== 200) {
            const code = errorCodeOf(answer.body());
            this.errors.add(`rest.${args.operation}: HTTP ${answer.status}${code ? ` ${code}` : ''}`);
            continue;
          }
          const shouldValidate = args.operation === 'one' || (callIndex + clientIndex) % VALIDATE_EVERY === 1;
          const problem = shouldValidate ? validateBody(args, answer.body(), call) : undefined;
          if (problem !== undefined) {
            this.errors.add(`rest.${args.operation}: ${problem}`);
            continue;
          }
          latency.record(answer.latencyMs);
          ok += 1;
        } catch (error) {
          this.errors.add(`rest.${args.operation}: ${describeError(error)}`);
        }
      }
    };

    await Promise.all(Array.from({ length: args.concurrency }, (_, index) => loop(index)));
    const elapsedMs = performance.now() - startedAt;
    for (const client of clients) client.close();
    return {
      operation: args.operation,
      concurrency: args.concurrency,
      requests,
      ok,
      failed: requests - ok,
      elapsedMs,
      latency: latency.toJson(),
      responseBytes,
    };
  }

  private plan(args: RestRunArgs, sessionCount: number, searchBody: string): PlannedCall {
    const population = this.hub.population;
    if (args.operation === 'one') {
      // A random connected tab's session (tab indices map onto sessions, see population.ts).
      const tab = tabIdentity(Math.floor(Math.random() * Math.max(1, args.liveTabs)), population);
      return {
        method: 'GET',
        path: `/api/v1/${tab.projectKey}/assist/sessions/${tab.sessionId}`,
        expectedSessionId: tab.sessionId,
      };
    }
    // Project of a random session: projects are equally sized, so this is uniform over projects.
    const { projectKey } = sessionIdentity(Math.floor(Math.random() * sessionCount), population);
    const path = `/api/v1/${projectKey}/assist/sessions`;
    return args.operation === 'list' ? { method: 'GET', path } : { method: 'POST', path, body: searchBody };
  }
}

function pageLimitOf(args: RestRunArgs): number {
  return args.operation === 'search10' ? SAME_PAGE_SEARCH_LIMIT : args.searchLimit;
}

/** Why a 200 answer is wrong, or undefined when it has the documented shape. */
function validateBody(args: RestRunArgs, body: string, call: PlannedCall): string | undefined {
  const { operation } = args;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'body is not JSON';
  }
  if (!isRecord(parsed) || !isRecord(parsed.data)) return 'body has no "data" object';
  const data = parsed.data;
  if (operation === 'one') {
    return data.sessionID === call.expectedSessionId ? undefined : 'answered with another session';
  }
  if (typeof data.total !== 'number' || !Array.isArray(data.sessions)) return 'data lacks total/sessions';
  if (isSearchOperation(operation)) {
    if (data.sessions.length > pageLimitOf(args)) return 'more sessions than the limit';
    for (const session of data.sessions) {
      if (!isRecord(session) || !isRecord(session.metadata)) return 'session without metadata';
      const plan = session.metadata.plan;
      const browser = session.userBrowser;
      if (typeof plan !== 'string' || !SEARCH_PLANS.has(plan.toLowerCase())) return 'result violates the plan filter';
      if (typeof browser !== 'string' || !browser.toLowerCase().includes('chrome')) {
        return 'result violates the browser filter';
      }
    }
  }
  return undefined;
}
