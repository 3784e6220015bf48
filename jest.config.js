/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Stretched with every wait of the suites by TEST_TIME_FACTOR (test/support/wait.ts).
  testTimeout: 30000 * (Number(process.env.TEST_TIME_FACTOR) || 1),
  // Builds the client bundles and the console (scripts/build.mjs) once per run.
  globalSetup: '<rootDir>/test/support/globalSetup.js',
  // Integration suites start servers and Redis; two workers keep a 2-core machine responsive.
  maxWorkers: 2,
  // A worker that has run ~30 suites holds ~0.5 GB of heap, and its process took 0.85-0.97 s to go
  // after its 'exit' event (measured in a full run): over jest's default 500 ms, so a worker with
  // nothing left open was still force-exited ("A worker process has failed to exit gracefully").
  // A timer or socket a suite leaves behind for longer still shows.
  workerGracefulExitTimeout: 3000,
};
