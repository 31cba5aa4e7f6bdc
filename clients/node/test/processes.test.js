'use strict';
// Several Node processes record at once on one data directory while trek.log rotates many
// times: every seq is written exactly once, with no gap.

const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');
const { readEvents, startIngest, tempDataDir } = require('../test-support/trek.js');

const WORKERS = 4;
const EVENTS_PER_WORKER = process.env.TREK_TEST_SHORT ? 500 : 2000;
// An event line here is about 190 bytes: trek.log rotates about 40 times, and every file is kept.
const ROTATION = {
  TREK_LOG_MAX_BYTES: String(EVENTS_PER_WORKER * 20),
  TREK_LOG_BACKUPS: '1000',
};

function runWorker(worker, message, env) {
  const child = fork(path.join(__dirname, '..', 'test-support', 'record-worker.js'), {
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${worker} exited with status ${code}`));
    });
    child.send({ ...message, worker, count: EVENTS_PER_WORKER });
  });
}

for (const transport of ['co-process', 'socket']) {
  test(`${WORKERS} Node processes recording through the ${transport} write every seq exactly once across rotations`, async (t) => {
    const dataDir = tempDataDir(t);
    let socket;
    if (transport === 'socket') {
      socket = path.join(dataDir, 'ingest.sock');
      await startIngest(t, dataDir, socket, ROTATION);
    }
    const started = process.hrtime.bigint();
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, worker) =>
        runWorker(worker, { dataDir, socket }, ROTATION),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;

    const { files, events } = readEvents(dataDir);
    const total = WORKERS * EVENTS_PER_WORKER;
    assert.ok(files.length > 10, `only ${files.length} log files: trek.log did not rotate enough`);
    // In file order, oldest file first: rotation neither loses, repeats nor reorders a line.
    const seqs = events.map((event) => event.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, index) => index + 1),
    );
    const written = new Map(events.map((event) => [event.id, event.seq]));
    assert.equal(written.size, events.length);
    const answered = results.flatMap((result) =>
      result.ids.map((id, index) => [id, result.seqs[index]]),
    );
    assert.equal(answered.length, total);
    for (const [id, seq] of answered) assert.equal(written.get(id), seq, `event ${id} as answered`);
    // Only the workers' events (and seals, where sealing is on) are in the log.
    const others = events.filter((event) => event.action !== 'trip.update');
    assert.ok(others.every((event) => event.action === 'audit.seal'));
    assert.equal(events.length - others.length, total);

    const slowest = Math.max(...results.map((result) => result.seconds));
    t.diagnostic(
      `${transport}: ${WORKERS} processes x ${EVENTS_PER_WORKER} events, ${files.length} log files: ` +
        `${Math.round(total / slowest)} events/s while recording (${Math.round(total / seconds)} events/s ` +
        `including process start-up)`,
    );
  });
}
