/**
 * The layering docs/architecture.md describes, checked on the sources: the domain imports nothing
 * of the hub's adapters, and the cluster layer never imports the live layer (it gets callbacks).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const SRC = join(__dirname, '..', '..', 'src');

function importsOf(folder: string): Array<{ file: string; from: string }> {
  const found: Array<{ file: string; from: string }> = [];
  for (const file of readdirSync(join(SRC, folder)).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, folder, file), 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+'([^']+)'/gm)) found.push({ file: `${folder}/${file}`, from: m[1]! });
  }
  return found;
}

const forbidden = (folder: string, prefixes: string[]) => importsOf(folder).filter((i) => prefixes.some((p) => i.from.startsWith(p)));

test('the cluster layer imports nothing of src/live/ or src/http/', () => {
  expect(importsOf('cluster').length).toBeGreaterThan(5);
  expect(forbidden('cluster', ['../live', '../http', '../subscriptions'])).toEqual([]);
});

test('the domain (src/sessions/) imports no adapter, store or Socket.IO', () => {
  expect(importsOf('sessions').length).toBeGreaterThan(5);
  expect(forbidden('sessions', ['../live', '../http', '../cluster', '../subscriptions', 'socket.io', 'ioredis', 'express'])).toEqual([]);
});

test('subscriptions know no Socket.IO and no adapter', () => {
  expect(forbidden('subscriptions', ['../live', '../http', '../cluster', 'socket.io'])).toEqual([]);
});
