'use strict';
// A TREK-like app records from its request handler, through the co-process and the socket.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { createAuditClient } = require('..');
const { startApp } = require('../test-support/app.js');
const { afterTest, readEvents, startIngest, tempDataDir } = require('../test-support/trek.js');

async function createTrip(base, id, forwardedFor) {
  const response = await fetch(`${base}/${id}`, {
    method: 'POST',
    headers: { 'x-forwarded-for': forwardedFor },
  });
  return { status: response.status, body: await response.json() };
}

for (const transport of ['co-process', 'socket']) {
  test(`a request handler records through the ${transport} and answers with the event`, async (t) => {
    const dataDir = tempDataDir(t);
    let socket;
    if (transport === 'socket') {
      socket = path.join(dataDir, 'ingest.sock');
      await startIngest(t, dataDir, socket);
    }
    const audit = createAuditClient(socket ? { socket } : { dataDir });
    afterTest(t, () => audit.close());
    const base = await startApp(t, audit);
    const first = await createTrip(base, 1, 'forged, 203.0.113.5');
    const second = await createTrip(base, 2, '198.51.100.1');
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(first.body.action, 'trip.create');
    assert.equal(first.body.resource, 'trip/1');
    assert.equal(first.body.ip, '203.0.113.5');
    assert.deepEqual(first.body.user, { id: 7, username: 'alice', email: 'alice@example.com' });
    assert.deepEqual(first.body.details, { method: 'POST' });
    assert.deepEqual([first.body.seq, second.body.seq], [1, 2]);
    await audit.close();
    assert.deepEqual(readEvents(dataDir).events, [first.body, second.body]);
  });
}
