// jest's global set-up: builds the dashboard client bundles and the console (esbuild, well under a
// second) so that `npx jest` alone serves the current console and resolves `live-session-hub/client`.
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = function globalSetup() {
  execFileSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build.mjs')], { stdio: 'inherit' });
};
