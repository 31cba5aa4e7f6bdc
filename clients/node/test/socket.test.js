'use strict';
// The socket client: pipelining, errors, a server that goes away and comes back.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { createAuditClient } = require('..');
const { afterTest, readEvents, startIngest, tempDataDir } = require('../test-support/trek.js');

test('pipelined records through the socket are answered in order, invalid ones rejected in place', async (t) => {
  const dataDir = tempDataDir(t);
  const socket = path.join(dataDir, 'ingest.sock');
  await startIngest(t, dataDir, socket);
  const audit = createAuditClient({ socket });
  afterTest(t, () => audit.close());
  const outcomes = await Promise.allSettled(
    Array.from({ length: 300 }, (_, index) =>
      audit.record(index % 100 === 50 ? 'Bad Action' : 'trip.update', { details: { index } }),
    ),
  );
  const events = outcomes
    .filter((outcome) => outcome.status === 'fulfilled')
    .map((outcome) => outcome.value);
  const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
  assert.deepEqual(
    rejected.map((outcome) => outcome.reason.type),
    ['invalid', 'invalid', 'invalid'],
  );
  assert.deepEqual(
    events.map((event) => event.seq),
    Array.from({ length: 297 }, (_, index) => index + 1),
  );
  assert.deepEqual(
    events.map((event) => event.details.index),
    Array.from({ length: 300 }, (_, index) => index).filter((index) => index % 100 !== 50),
  );
  await audit.close();
  assert.equal(readEvents(dataDir).events.length, 297);
});

test('a socket nobody listens on rejects with type connection and says what to run', async (t) => {
  const dataDir = tempDataDir(t);
  const audit = createAuditClient({ socket: path.join(dataDir, 'missing.sock') });
  afterTest(t, () => audit.close());
  const error = await audit.record('trip.create').catch((reason) => reason);
  assert.equal(error.name, 'AuditError');
  assert.equal(error.type, 'connection');
  assert.match(error.message, /missing\.sock.*trek-audit ingest/);
});

test('a server killed with pending records rejects them with type connection, and the next record reconnects', async (t) => {
  const dataDir = tempDataDir(t);
  const socket = path.join(dataDir, 'ingest.sock');
  const first = await startIngest(t, dataDir, socket);
  const audit = createAuditClient({ socket });
  afterTest(t, () => audit.close());
  assert.equal((await audit.record('trip.create')).seq, 1);
  const inFlight = Array.from({ length: 10_000 }, () => audit.record('trip.update'));
  // Killed once the answers have started to come: some records answered, the rest in flight.
  await inFlight[0];
  first.child.kill('SIGKILL');
  const outcomes = await Promise.allSettled(inFlight);
  const firstRejected = outcomes.findIndex((outcome) => outcome.status === 'rejected');
  assert.ok(firstRejected !== -1, 'the kill came after every answer');
  for (const outcome of outcomes.slice(firstRejected)) {
    assert.equal(outcome.status, 'rejected');
    assert.equal(outcome.reason.type, 'connection');
  }
  await first.exited;
  await startIngest(t, dataDir, socket);
  const next = await audit.record('trip.delete');
  // A record rejected this way may or may not have been written: the server can die after
  // appending the line and before answering. The log has no gap either way.
  assert.ok(next.seq >= 2 + firstRejected);
  await audit.close();
  const { events } = readEvents(dataDir);
  assert.deepEqual(events.at(-1), next);
  assert.deepEqual(
    events.map((event) => event.seq),
    Array.from({ length: next.seq }, (_, index) => index + 1),
  );
});
