/**
 * Checks REST answers against the OpenAPI document the hub serves (src/http/openapi.ts), with ajv
 * (JSON Schema 2020-12, what OpenAPI 3.1 uses). `call` in ./http.ts runs every answer the
 * integration suites get through `openApiProblems`, so a route whose answers drift from the
 * document fails the suite that saw it.
 */
import Ajv2020 from 'ajv/dist/2020';
import { openApiDocument } from '../../src/http/openapi';

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}

const DOC_ID = 'openapi.json';
const doc = openApiDocument() as { paths: Record<string, Record<string, Operation>> };
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(doc, DOC_ID);

/** Paths of the document as patterns (`{projectKey}` is one segment). */
const templates = Object.keys(doc.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}/?$`, 'i'),
}));

/** A JSON pointer to a part of the document, as a URI fragment. */
function pointer(...parts: string[]): string {
  return `${DOC_ID}#/${parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;
}

function validate(ref: string, body: unknown): string[] {
  const check = ajv.getSchema(ref);
  if (!check) return [`no schema at ${ref}`];
  if (check(body)) return [];
  return (check.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

export interface Answer {
  method: string;
  /** Path and query string. */
  url: string;
  status: number;
  contentType: string | null;
  /** The parsed body; undefined when there is none or it is not JSON. */
  json: unknown;
  text: string;
}

/** Why an answer does not match the document (empty when it does). */
export function openApiProblems(a: Answer): string[] {
  const path = a.url.replace(/\?.*$/s, '');
  const method = a.method.toLowerCase();
  // No body to check: HEAD, preflights and OPTIONS, 204s.
  if (method === 'head' || method === 'options' || a.status === 204) return [];
  const match = templates.find((t) => t.pattern.test(path));
  const operation = match ? doc.paths[match.template]?.[method] : undefined;
  if (!match || !operation) {
    // The public API's own paths (unknown ones, methods a route does not answer): an Error, and
    // never a success the document does not have. Other paths (/debug, OpenReplay's internal API
    // under /assist/<key>/) are not the public API: not checked.
    if (!/^\/api\//i.test(path) && !match) return [];
    if (a.status < 400) return [`${a.method} ${path} answered ${a.status} but is not in the document`];
    return validate(pointer('components', 'schemas', 'Error'), a.json).map((p) => `${a.method} ${path} ${a.status}: ${p}`);
  }
  const status = String(a.status);
  const response = operation.responses[status] ?? operation.responses.default;
  if (!response) return [`${a.method} ${match.template}: status ${status} is not documented`];
  const mediaTypes = Object.keys(response.content ?? {});
  if (mediaTypes.length === 0) return [];
  const mediaType = mediaTypes.find((m) => a.contentType?.startsWith(m));
  if (!mediaType) return [`${a.method} ${match.template} ${status}: content type ${a.contentType ?? 'none'}, documented ${mediaTypes.join(', ')}`];
  if (mediaType !== 'application/json') return [];
  return validate(pointer('paths', match.template, method, 'responses', status, 'content', mediaType, 'schema'), a.json).map(
    (p) => `${a.method} ${match.template} ${status}: ${p}`,
  );
}

let checked = 0;
/** Throws when an answer does not match the document. */
export function assertMatchesOpenApi(a: Answer): void {
  const problems = openApiProblems(a);
  if (problems.length > 0) throw new Error(`answer does not match /openapi.json:\n${problems.join('\n')}\nbody: ${a.text.slice(0, 500)}`);
  checked += 1;
}

/** How many answers this worker checked (the OpenAPI suite asserts it is not zero). */
export function answersChecked(): number {
  return checked;
}
