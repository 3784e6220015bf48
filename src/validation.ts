/**
 * Readable validation messages: one zod error map for requests, dashboard queries and the
 * configuration, so that a refusal reads "must be at most 200", "must be one of true, false" or
 * `unknown field "limt" (did you mean "limit"?)` instead of zod's defaults ("Too big: expected number
 * to be <=200", "Invalid input"). Messages set on a schema itself still win. Pure.
 */
import type { z } from 'zod';

type RawIssue = z.core.$ZodRawIssue;

/** Levenshtein distance, case-insensitive (`userid` is `userId` misspelt, not another word). */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // Row by row of the edit table; within a row, `left` is the cell just computed and `diagonal`
  // the one above-left, so no cell is read by an index that could miss.
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  let distance = t.length;
  for (let i = 0; i < s.length; i++) {
    const current = [i + 1];
    let left = i + 1;
    let diagonal = 0;
    for (const [j, up] of previous.entries()) {
      if (j > 0) {
        left = Math.min(up + 1, left + 1, diagonal + (s[i] === t[j - 1] ? 0 : 1));
        current.push(left);
      }
      diagonal = up;
    }
    previous = current;
    distance = left;
  }
  return distance;
}

/**
 * The known name `name` most likely stands for: within a third of its length in edits (at least one
 * edit), the closest first; undefined when none is that close.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d <= Math.max(1, Math.floor(candidate.length / 3)) && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Unknown names a message lists, and the characters shown of each: the names come from the client. */
const MAX_NAMES_SHOWN = 5;
const MAX_NAME_CHARS = 64;

/** `unknown field "filter" (did you mean "filters"?)` (the noun says what the name was: field, query parameter). */
export function unknownNameMessage(name: string, known: readonly string[], noun = 'field'): string {
  const shown = name.length > MAX_NAME_CHARS ? `${name.slice(0, MAX_NAME_CHARS)}...` : name;
  const near = name.length > MAX_NAME_CHARS ? undefined : nearestName(name, known);
  return near === undefined ? `unknown ${noun} "${shown}"` : `unknown ${noun} "${shown}" (did you mean "${near}"?)`;
}

/** The messages of several unknown names, at most MAX_NAMES_SHOWN of them. */
export function unknownNamesMessage(names: readonly string[], known: readonly string[], noun = 'field'): string {
  const parts = names.slice(0, MAX_NAMES_SHOWN).map((name) => unknownNameMessage(name, known, noun));
  if (names.length > MAX_NAMES_SHOWN) parts.push(`and ${names.length - MAX_NAMES_SHOWN} more unknown ${noun}s`);
  return parts.join('; ');
}

const ARTICLE: Readonly<Record<string, string>> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
};

function sizeUnit(origin: string): string {
  if (origin === 'string') return ' characters';
  if (origin === 'array' || origin === 'set') return ' items';
  return '';
}

/** The accepted values of a union of literals, enums and booleans; undefined for any other union. */
function unionValues(branches: readonly (readonly z.core.$ZodIssue[])[]): string[] | undefined {
  const values: string[] = [];
  for (const issues of branches) {
    const issue = issues.length === 1 ? issues[0] : undefined;
    if (issue?.code === 'invalid_value') values.push(...issue.values.map(String));
    else if (issue?.code === 'invalid_type' && issue.expected === 'boolean') values.push('true', 'false');
    else return undefined;
  }
  return [...new Set(values)];
}

/** Whether a union branch failed only because the value is of another basic type. */
function wrongType(issues: readonly z.core.$ZodIssue[]): boolean {
  const issue = issues.length === 1 ? issues[0] : undefined;
  return issue?.code === 'invalid_type' && issue.path.length === 0 && issue.expected !== 'int';
}

/**
 * A union refused: when the value had the type of exactly one branch, that branch's reasons
 * (`limit: 201` is "must be at most 200", not "invalid input"); when it had none, the types allowed.
 */
function matchedBranch(branches: readonly (readonly z.core.$ZodIssue[])[]): string | undefined {
  const matched = branches.filter((issues) => !wrongType(issues));
  const [only] = matched;
  if (matched.length === 1 && only && only.every((i) => i.path.length === 0)) return only.map((i) => i.message).join('; ');
  if (matched.length === 0) {
    const types = branches.map(([first]) => (first?.code === 'invalid_type' ? (ARTICLE[first.expected] ?? first.expected) : ''));
    return `must be ${[...new Set(types)].join(' or ')}`;
  }
  return undefined;
}

/** Field names of the object schema an `unrecognized_keys` issue came from. */
function knownKeys(issue: RawIssue): string[] {
  const def = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
  return def?.shape ? Object.keys(def.shape) : [];
}

/**
 * A zod error map (pass it as `safeParse(input, { error: readableIssues() })`). `noun` names what an
 * unknown key is to the client: a JSON field, or a query parameter.
 */
export function readableIssues(noun = 'field'): z.core.$ZodErrorMap {
  return (issue) => {
    switch (issue.code) {
      case 'too_big': {
        const unit = sizeUnit(issue.origin);
        if (unit) return `must have at most ${String(issue.maximum)}${unit}`;
        return issue.inclusive === false ? `must be less than ${String(issue.maximum)}` : `must be at most ${String(issue.maximum)}`;
      }
      case 'too_small': {
        const unit = sizeUnit(issue.origin);
        if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
        if (unit) return `must have at least ${String(issue.minimum)}${unit}`;
        return issue.inclusive === false ? `must be more than ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}`;
      }
      case 'invalid_type':
        if (issue.input === undefined) return `is required (${ARTICLE[issue.expected] ?? issue.expected})`;
        return `must be ${ARTICLE[issue.expected] ?? issue.expected}`;
      case 'invalid_value':
        return issue.values.length === 1 ? `must be ${String(issue.values[0])}` : `must be one of ${issue.values.map(String).join(', ')}`;
      case 'invalid_union': {
        const values = unionValues(issue.errors);
        return values ? `must be one of ${values.join(', ')}` : matchedBranch(issue.errors);
      }
      case 'unrecognized_keys': {
        const known = knownKeys(issue);
        return unknownNamesMessage(issue.keys, known, noun);
      }
      default:
        return undefined;
    }
  };
}
