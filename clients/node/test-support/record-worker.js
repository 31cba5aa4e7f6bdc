'use strict';
// A forked Node process: records `count` events pipelined through its own client and reports
// the seqs and ids it was given.

const { createAuditClient } = require('..');

process.once('message', async ({ dataDir, socket, count, worker }) => {
  const audit = createAuditClient({ dataDir, socket, timeoutMs: 60_000 });
  const started = process.hrtime.bigint();
  const events = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      audit.record('trip.update', { resource: `trip/${worker}`, details: { worker, index } }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await audit.close();
  process.send(
    { ids: events.map((event) => event.id), seqs: events.map((event) => event.seq), seconds },
    () => process.exit(0),
  );
});
