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
};
