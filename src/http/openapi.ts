/**
 * The OpenAPI 3.1 document of the public REST API, served at /openapi.json. Request parts are
 * generated from the zod schemas the routes validate with (schemas.ts), so the document cannot
 * drift from what the hub accepts; answers are described by the zod schemas below, which the test
 * suite checks every REST answer against (test/support/openapi.ts).
 */
import { z } from 'zod';
import { ErrorCode } from '../errors';
import { MAX_METRIC_NAMES } from '../ops/metrics';
import { AUTOCOMPLETE_LIMITS, autocompleteQuerySchema, listQuerySchema, projectKeyParam, searchBodySchema, sessionIdParam } from './schemas';
import { ROUTES } from './sessions';

// ---- Answers ----

const sessionSchema = z
  .looseObject({
    sessionID: z.string(),
    projectKey: z.string(),
    projectId: z.union([z.number(), z.string(), z.null()]),
    pageTitle: z.string().meta({ description: 'page title of the most recently active tab' }),
    active: z.boolean().meta({ description: 'true while any tab is active' }),
    live: z.literal(true),
    userID: z.string(),
    userUUID: z.string(),
    userAnonymousId: z.string(),
    metadata: z.record(z.string(), z.string()),
    revID: z.string(),
    timestamp: z.number().meta({ description: 'session start, milliseconds since the epoch' }),
    trackerVersion: z.string(),
    isSnippet: z.boolean(),
    assistOnly: z.boolean(),
    userOs: z.string().nullable().meta({ description: 'OS name as OpenReplay reports it (ua-parser-js 2.x names, e.g. macOS); null without a User-Agent' }),
    userBrowser: z.string().nullable().meta({ description: 'browser name as OpenReplay reports it (e.g. Mobile Chrome); null without a User-Agent' }),
    userBrowserVersion: z.string().nullable(),
    userDevice: z.string().nullable().meta({ description: 'device model only (e.g. iPhone), null when there is none' }),
    userDeviceType: z.string(),
    userCountry: z.string().nullable(),
    userState: z.string().nullable(),
    userCity: z.string().nullable(),
    tabIds: z.array(z.string()).meta({ description: 'connected tabs, oldest first' }),
    tabId: z.string().nullable().meta({ description: 'the tab that stands for the session (whose pageTitle it shows), as OpenReplay\'s tabId' }),
  })
  .meta({ description: 'A live session. Other fields the tracker announced are kept as announced.' });

const sessionPageSchema = z.strictObject({
  data: z.strictObject({
    total: z.number().int().min(0).meta({ description: 'every match, not just this page' }),
    sessions: z.array(sessionSchema),
  }),
});

const oneSessionSchema = z.strictObject({ data: sessionSchema });

const autocompleteSchema = z.strictObject({
  data: z.array(z.strictObject({ type: z.string(), value: z.string() })).max(AUTOCOMPLETE_LIMITS.maxLimit),
});

const errorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]).meta({ description: 'stable: match on it, never on the message' }),
      message: z.string().meta({ description: 'for people: names the field and the reason' }),
    }),
  })
  .meta({ description: 'Every error answer.' });

const healthSchema = z.strictObject({ status: z.literal('ok') });
const readySchema = z.strictObject({ status: z.literal('ready'), partial: z.boolean() });
const notReadySchema = z.strictObject({ status: z.literal('not_ready'), partial: z.boolean(), error: errorSchema.shape.error });

// ---- Building the document ----

type JsonSchema = Record<string, unknown>;

const COMPONENTS = '#/components/schemas/';

/** Named components from zod schemas, with references between them; `io` picks the request or answer side. */
function components(named: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', io, unrepresentable: 'any', uri: (id) => `${COMPONENTS}${id}` });
  const out: Record<string, JsonSchema> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as JsonSchema;
    out[id] = rest;
  }
  return out;
}

/** A schema for one parameter or body, inline (no $schema). */
function inline(schema: z.ZodType): JsonSchema {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** Query parameters from a strict object schema: one per field, required when the schema requires it. */
function queryParameters(schema: z.ZodType): JsonSchema[] {
  const json = inline(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, in: 'query', required: json.required?.includes(name) ?? false, description, schema: rest };
  });
}

const ref = (id: string): JsonSchema => ({ $ref: `${COMPONENTS}${id}` });
const json = (id: string, description: string, headers?: JsonSchema): JsonSchema => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ref(id) } },
});
const error = (description: string, headers?: JsonSchema): JsonSchema => json('Error', description, headers);

const partialHeader = {
  'X-Hub-Partial': { description: 'true while this node may miss other nodes’ changes (cluster mode, Redis unreachable)', schema: { type: 'string', enum: ['true'] } },
};

/** The errors every session route may answer. */
const guardErrors = {
  '400': error('bad request: a malformed project key, an unknown field or parameter, a bad value (code BAD_REQUEST or INVALID_FILTER)'),
  '401': error('missing or unknown API key'),
  '403': error('the API key is not allowed for this project'),
  '405': error('method not allowed (see the Allow header)', { Allow: { schema: { type: 'string' } } }),
  '429': error('rate limited per API key (REST_RATE_LIMIT)', { 'Retry-After': { description: 'seconds to wait', schema: { type: 'string' } } }),
  '500': error('internal error (no detail; logged)'),
};

function pathParameters(withSession: boolean): JsonSchema[] {
  const params: JsonSchema[] = [{ name: 'projectKey', in: 'path', required: true, description: projectKeyParam.description, schema: inline(projectKeyParam) }];
  if (withSession) params.push({ name: 'sessionId', in: 'path', required: true, description: sessionIdParam.description, schema: inline(sessionIdParam) });
  return params;
}

/** `/api/v1/:projectKey/...` as OpenAPI spells it. */
const openApiPath = (route: string): string => route.replace(/:(\w+)/g, '{$1}');

function build(): JsonSchema {
  const security = [{ apiKey: [] }];
  return {
    openapi: '3.1.0',
    info: {
      title: 'Live session hub: public REST API',
      version: '1',
      description:
        'Live sessions of a project: list, search, one session, autocomplete. Every error is `{"error": {"code", "message"}}`. ' +
        'Unknown fields and query parameters are refused (400), naming the field meant when it is close.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'an API key (HUB_API_KEYS), optionally as `Bearer <key>`' } },
      schemas: {
        ...components({ SearchBody: searchBodySchema }, 'input'),
        ...components(
          { Session: sessionSchema, SessionPage: sessionPageSchema, OneSession: oneSessionSchema, AutocompleteValues: autocompleteSchema, Error: errorSchema, Health: healthSchema, Ready: readySchema, NotReady: notReadySchema },
          'output',
        ),
      },
    },
    paths: {
      [openApiPath(ROUTES.sessions)]: {
        parameters: pathParameters(false),
        get: {
          operationId: 'listSessions',
          summary: 'List the live sessions of a project (newest first by default)',
          security,
          parameters: queryParameters(listQuerySchema),
          responses: { '200': json('SessionPage', 'a page of sessions', partialHeader), ...guardErrors },
        },
        post: {
          operationId: 'searchSessions',
          summary: 'Search the live sessions of a project: filters, sort, page',
          security,
          requestBody: { required: false, content: { 'application/json': { schema: ref('SearchBody') } } },
          responses: {
            '200': json('SessionPage', 'a page of the matching sessions', partialHeader),
            ...guardErrors,
            '413': error('body larger than REST_BODY_LIMIT'),
            '415': error('a content encoding or a charset other than UTF-8 (code UNSUPPORTED_MEDIA_TYPE)'),
          },
        },
      },
      [openApiPath(ROUTES.session)]: {
        parameters: pathParameters(true),
        get: {
          operationId: 'getSession',
          summary: 'One live session',
          security,
          responses: { '200': json('OneSession', 'the session', partialHeader), ...guardErrors, '404': error('no live session with that id in this project') },
        },
      },
      [openApiPath(ROUTES.autocomplete)]: {
        parameters: pathParameters(false),
        get: {
          operationId: 'autocomplete',
          summary: 'Distinct values of an attribute among the live sessions, containing q',
          security,
          parameters: queryParameters(autocompleteQuerySchema),
          responses: { '200': json('AutocompleteValues', 'the values', partialHeader), ...guardErrors },
        },
      },
      '/health': { get: { operationId: 'health', summary: 'Liveness', responses: { '200': json('Health', 'the process runs') } } },
      '/ready': {
        get: {
          operationId: 'ready',
          summary: 'Readiness',
          responses: { '200': json('Ready', 'serving'), '503': json('NotReady', 'starting, draining, or the cluster view is not loaded') },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics (absent here when OPS_PORT serves them)',
          parameters: [
            {
              name: 'name',
              in: 'query',
              required: false,
              description: `Only these metric families (repeat the parameter for more, at most ${MAX_METRIC_NAMES}; a histogram or counter by its family name, e.g. hub_diff_latency_seconds, hub_connects_refused_total). Absent: every family. Other parameters are ignored.`,
              style: 'form',
              explode: true,
              schema: { type: 'array', maxItems: MAX_METRIC_NAMES, items: { type: 'string', pattern: '^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$' } },
            },
          ],
          responses: {
            '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
            '400': error('BAD_REQUEST: a name that is not a metric name, names no family of this hub, or more than the limit'),
            '404': error('served on OPS_PORT instead'),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'openapi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } },
      },
    },
  };
}

let document: JsonSchema | undefined;

/** The document (built once: the schemas do not change while the process runs). */
export function openApiDocument(): JsonSchema {
  document ??= build();
  return document;
}
