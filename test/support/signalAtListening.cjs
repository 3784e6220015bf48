// Preloaded into a hub child (`node --require`): sends the process SIGTERM from inside the write of
// its "hub listening" log line, the earliest moment a supervisor reading the log can react to it.
// The hub writes its log synchronously with fs.writeSync (src/ops/logger.ts).
const fs = require('node:fs');

const writeSync = fs.writeSync;
let sent = false;
fs.writeSync = function writeSyncThenSignal(fd, data, ...rest) {
  const written = writeSync.call(this, fd, data, ...rest);
  if (!sent && fd === 1 && String(data).includes('"msg":"hub listening"')) {
    sent = true;
    process.kill(process.pid, 'SIGTERM');
  }
  return written;
};
