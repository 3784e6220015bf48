/**
 * /openapi.json: an OpenAPI 3.1 document generated from the request schemas, served with CORS, and
 * able to tell a wrong answer (support/openapi.ts checks every answer the REST suites see with it).
 */
import Ajv2020 from 'ajv/dist/2020';
import { z } from 'zod';
import { openApiDocument } from '../src/http/openapi';
import { listQuerySchema, searchBodySchema } from '../src/http/schemas';
import { PROJECT_A, type TestApp, addSession, call, sessionsPath, startTestApp } from './support/http';
import { answersChecked, openApiProblems } from './support/openapi';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  addSession(app.index, PROJECT_A, '1', { userID: 'u1', metadata: { plan: 'trial' } });
});
afterAll(() => app.close());

type Doc = { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string; required: boolean }> }>>; components: { schemas: Record<string, unknown> } };

it('is served at /openapi.json as OpenAPI 3.1, the same document the hub builds, with CORS', async () => {
  const reply = await call(app.url, '/openapi.json', { key: null, headers: { origin: 'https://swagger.example' } });
  expect(reply.status).toBe(200);
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  expect(reply.headers.get('access-control-allow-origin')).toBe('*');
  expect(reply.json).toEqual(openApiDocument());
  const doc = reply.json as Doc;
  expect(doc.openapi).toBe('3.1.0');
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining(['/api/v1/{projectKey}/assist/sessions', '/api/v1/{projectKey}/assist/sessions/{sessionId}', '/api/v1/{projectKey}/assist/autocomplete']),
  );
});

it('takes its request parts from the zod schemas the routes validate with', () => {
  const doc = openApiDocument() as Doc;
  const { $schema: _, ...body } = z.toJSONSchema(searchBodySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  expect(doc.components.schemas.SearchBody).toEqual(body);
  expect(body.additionalProperties).toBe(false);
  const listParams = doc.paths['/api/v1/{projectKey}/assist/sessions']?.get?.parameters?.map((p) => p.name).sort();
  expect(listParams).toEqual(Object.keys(listQuerySchema.shape).sort());
  const autocomplete = doc.paths['/api/v1/{projectKey}/assist/autocomplete']?.get?.parameters ?? [];
  expect(autocomplete.find((p) => p.name === 'type')?.required).toBe(true);
});

it('compiles as JSON Schema 2020-12, and its body schema agrees with the validator on examples', () => {
  const ajv = new Ajv2020({ strict: false });
  ajv.addSchema(openApiDocument(), 'doc');
  const body = ajv.getSchema('doc#/components/schemas/SearchBody');
  expect(body).toBeDefined();
  const check = body as NonNullable<typeof body>;
  const examples: unknown[] = [
    { filters: [{ type: 'USERID', value: ['a'], operator: 'is' }], limit: 10, page: 1, sort: 'timestamp', order: 'DESC' },
    { filter: { userId: 'x' } },
    { limit: 500 },
    { filters: [{ type: 'USERID', values: ['a'] }] },
    {},
  ];
  for (const example of examples) {
    expect([example, check(example)]).toEqual([example, searchBodySchema.safeParse(example).success]);
  }
});

it('tells a wrong answer from a right one (the check of every REST answer can fail)', () => {
  const url = sessionsPath(PROJECT_A);
  const answer = { method: 'GET', url, status: 200, contentType: 'application/json', text: '' };
  expect(openApiProblems({ ...answer, json: { data: { total: 0, sessions: [] } } })).toEqual([]);
  expect(openApiProblems({ ...answer, json: { data: { total: 'one', sessions: [] } } })).not.toEqual([]);
  expect(openApiProblems({ ...answer, json: { data: { total: 1, sessions: [{ sessionID: '1' }] } } })).not.toEqual([]);
  expect(openApiProblems({ ...answer, status: 418, json: {} })).toEqual([expect.stringContaining('418 is not documented')]);
  expect(openApiProblems({ ...answer, status: 400, json: { error: { code: 'NOPE', message: 'x' } } })).not.toEqual([]);
  expect(openApiProblems({ ...answer, url: '/api/v1/x/assist/nope', status: 404, json: { error: { code: 'NOT_FOUND', message: 'no' } } })).toEqual([]);
  expect(openApiProblems({ ...answer, url: '/api/v1/x/assist/nope', status: 200, json: {} })).not.toEqual([]);
  // Outside the public API (OpenReplay's internal API, /debug): not the document's business.
  expect(openApiProblems({ ...answer, url: '/assist/key/sockets-live/p', status: 200, json: { data: [] } })).toEqual([]);
  expect(answersChecked()).toBeGreaterThan(0);
});
