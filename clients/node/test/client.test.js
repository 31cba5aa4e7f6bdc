'use strict';
// The co-process client: answers, errors, pipelining, a killed co-process, closing.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');
const { AuditError, createAuditClient } = require('..');
const { afterTest, readEvents, tempDataDir, trekAudit } = require('../test-support/trek.js');

function clientFor(t, options = {}) {
  const audit = createAuditClient({ dataDir: tempDataDir(t), ...options });
  afterTest(t, () => audit.close());
  return audit;
}

async function rejection(promise) {
  const error = await promise.then(
    (value) => assert.fail(`resolved to ${JSON.stringify(value)}`),
    (reason) => reason,
  );
  assert.ok(error instanceof AuditError, `not an AuditError: ${error}`);
  assert.equal(error.name, 'AuditError');
  return error;
}

test('a record resolves to the event as written, with id, seq and ts', async (t) => {
  const dataDir = tempDataDir(t);
  const audit = createAuditClient({ dataDir });
  const event = await audit.record('trip.create', {
    user: { id: 7, username: 'alice' },
    resource: 'trip/1',
    ip: '203.0.113.5',
    details: { title: 'Lisbon' },
  });
  await audit.close();
  assert.equal(event.v, 1);
  assert.equal(event.seq, 1);
  assert.match(event.id, /^[0-9a-f-]{36}$/);
  assert.match(event.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.deepEqual(event.user, { id: 7, username: 'alice', email: null });
  assert.equal(event.resource, 'trip/1');
  assert.equal(event.ip, '203.0.113.5');
  assert.deepEqual(event.details, { title: 'Lisbon' });
  assert.deepEqual(readEvents(dataDir).events, [event]);
});

test('pipelined records are answered in the order they were made', async (t) => {
  const audit = clientFor(t);
  const events = await Promise.all(
    Array.from({ length: 500 }, (_, index) => audit.record('trip.update', { details: { index } })),
  );
  assert.deepEqual(
    events.map((event) => [event.seq, event.details.index]),
    Array.from({ length: 500 }, (_, index) => [index + 1, index]),
  );
});

test('an invalid request is rejected with type invalid and the client goes on', async (t) => {
  const audit = clientFor(t);
  const pending = [
    audit.record('trip.create'),
    audit.record('Not An Action'),
    audit.record('trip.create', { user: { id: 'seven' } }),
    audit.record('trip.create', { details: [1, 2] }),
    audit.record('trip.delete'),
  ];
  const [first, badAction, badUser, badDetails, last] = await Promise.allSettled(pending);
  assert.equal(first.value.seq, 1);
  for (const outcome of [badAction, badUser, badDetails]) {
    assert.equal(outcome.status, 'rejected');
    assert.equal(outcome.reason.name, 'AuditError');
    assert.equal(outcome.reason.type, 'invalid');
    assert.ok(outcome.reason.message.length > 0);
  }
  assert.equal(last.value.seq, 2);
  assert.equal(last.value.action, 'trip.delete');
});

test('an action that is not a non-empty string is refused before anything is sent', async (t) => {
  const audit = clientFor(t, { command: ['/nonexistent/trek-audit'] });
  for (const action of ['', undefined, 42, null]) {
    const error = await rejection(audit.record(action));
    assert.equal(error.type, 'invalid');
    assert.match(error.message, /action must be a non-empty string/);
  }
  assert.equal((await rejection(audit.record('trip.create', { colour: 'red' }))).type, 'invalid');
  const circular = {};
  circular.self = circular;
  assert.equal(
    (await rejection(audit.record('trip.create', { details: circular }))).type,
    'invalid',
  );
});

test('killing the co-process rejects every pending record with type connection, and the next record starts a new one', async (t) => {
  const dataDir = tempDataDir(t);
  const audit = createAuditClient({ dataDir });
  afterTest(t, () => audit.close());
  const first = await audit.record('trip.create');
  const child = audit.channel.child;
  // Thousands in flight, so that some are still unanswered when the co-process dies.
  const inFlight = Array.from({ length: 10_000 }, () => audit.record('trip.update'));
  // Killed once the answers have started to come: some records answered, the rest in flight.
  await inFlight[0];
  child.kill('SIGKILL');
  const outcomes = await Promise.allSettled(inFlight);
  const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
  assert.ok(rejected.length > 0, 'the kill came after every answer');
  for (const { reason } of rejected) {
    assert.equal(reason.type, 'connection');
    assert.match(reason.message, /killed by SIGKILL/);
  }
  // No answered record follows a rejected one: nothing was dropped or mismatched.
  const firstRejected = outcomes.findIndex((outcome) => outcome.status === 'rejected');
  assert.ok(outcomes.slice(firstRejected).every((outcome) => outcome.status === 'rejected'));
  assert.deepEqual(
    outcomes.slice(0, firstRejected).map((outcome) => outcome.value.seq),
    Array.from({ length: firstRejected }, (_, index) => first.seq + 1 + index),
  );
  const next = await audit.record('trip.delete');
  assert.notEqual(audit.channel.child.pid, child.pid);
  // A rejected record may still have been written (the co-process can die between appending
  // and answering); the log has no gap either way.
  assert.ok(next.seq >= first.seq + 1 + (outcomes.length - rejected.length));
  await audit.close();
  assert.deepEqual(
    readEvents(dataDir).events.map((event) => event.seq),
    Array.from({ length: next.seq }, (_, index) => index + 1),
  );
});

test('a co-process that cannot be started rejects with type connection and says what to do', async (t) => {
  const audit = clientFor(t, { command: ['/nonexistent/trek-audit', 'record', '--stdin'] });
  const error = await rejection(audit.record('trip.create'));
  assert.equal(error.type, 'connection');
  assert.match(error.message, /ENOENT.*TREK_AUDIT_COMMAND/);
});

test('a co-process that does not answer in timeoutMs rejects with type connection', async (t) => {
  const audit = clientFor(t, { command: ['sleep', '30'], timeoutMs: 200 });
  const error = await rejection(audit.record('trip.create'));
  assert.equal(error.type, 'connection');
  assert.match(error.message, /no answer .* within 200 ms/);
});

test('close waits for pending answers, and a record after close rejects with type closed', async (t) => {
  const dataDir = tempDataDir(t);
  const audit = createAuditClient({ dataDir });
  const pending = Array.from({ length: 200 }, () => audit.record('trip.create'));
  await audit.close();
  const events = await Promise.all(pending);
  assert.equal(events.at(-1).seq, 200);
  assert.equal((await rejection(audit.record('trip.create'))).type, 'closed');
  assert.equal(readEvents(dataDir).events.length, 200);
});

test('a script that never calls close still exits once its records are answered', async (t) => {
  const dataDir = tempDataDir(t);
  const script = `
    const { createAuditClient } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    createAuditClient({ dataDir: process.argv[1] }).record('user.login').then((e) => console.log(e.seq));
  `;
  const child = spawn(process.execPath, ['-e', script, dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise((resolve) => child.on('exit', (...how) => resolve(how)));
  clearTimeout(timer);
  assert.deepEqual([code, signal], [0, null]);
  assert.equal(output.trim(), '1');
});

test('the client imports from ESM too', async () => {
  const module = await import(path.resolve(__dirname, '..', 'index.js'));
  assert.equal(typeof module.createAuditClient, 'function');
  assert.equal(typeof module.clientIp, 'function');
  assert.equal(typeof module.auditContext, 'function');
  assert.equal(typeof module.AuditError, 'function');
});

test('TREK_AUDIT_COMMAND names the program the co-process runs', async (t) => {
  const dataDir = tempDataDir(t);
  const audit = createAuditClient({
    env: { TREK_AUDIT_COMMAND: trekAudit().join(' '), TREK_DATA_DIR: dataDir },
  });
  assert.deepEqual(audit.command, [...trekAudit(), 'record', '--stdin']);
  assert.equal((await audit.record('trip.create')).seq, 1);
  await audit.close();
  assert.equal(readEvents(dataDir).events.length, 1);
});
