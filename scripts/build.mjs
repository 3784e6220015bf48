#!/usr/bin/env node
// Builds what tsc does not: the publishable dashboard client (`live-session-hub/client`: ESM and
// CJS bundles with socket.io-client left external, and the ESM entry of its types) and the
// console's static files (dist/console). `npm run build` runs it after tsc; `npm start`, `npm test`
// and jest's global set-up run it too. Files are written to a temporary name and renamed, so a
// hub serving dist/console while another build runs never reads half a file.
//
//   node scripts/build.mjs [client] [console]     (default: both)
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const targets = process.argv.slice(2);
const wanted = (name) => targets.length === 0 || targets.includes(name);

function writeAtomic(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

async function bundle(options) {
  const result = await build({ bundle: true, write: false, logLevel: 'warning', legalComments: 'none', ...options });
  for (const file of result.outputFiles) writeAtomic(file.path, file.contents);
  return result;
}

async function buildClient() {
  const common = {
    entryPoints: [join(root, 'src/client/index.ts')],
    platform: 'neutral',
    target: 'es2020',
    external: ['socket.io-client'],
    tsconfig: join(root, 'tsconfig.json'),
  };
  await bundle({ ...common, format: 'cjs', outfile: join(dist, 'client/index.cjs') });
  await bundle({ ...common, format: 'esm', outfile: join(dist, 'client/index.mjs') });
  // tsc emits index.d.ts (the CJS types); ESM importers get the same declarations as an ES module.
  writeAtomic(join(dist, 'client/index.d.mts'), "export * from './index.js';\n");
}

async function buildConsole() {
  const dir = join(root, 'console');
  const out = join(dist, 'console');
  await bundle({
    entryPoints: [join(dir, 'main.tsx')],
    outfile: join(out, 'app.js'),
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(dir, 'tsconfig.json'),
  });
  writeAtomic(join(out, 'index.html'), readFileSync(join(dir, 'index.html')));
  for (const file of ['style.css', 'icon.svg']) writeAtomic(join(out, file), readFileSync(join(dir, file)));
}

try {
  if (wanted('client')) await buildClient();
  if (wanted('console')) await buildConsole();
} catch (err) {
  process.stderr.write(`build failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
