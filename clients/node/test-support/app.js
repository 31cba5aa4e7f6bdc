'use strict';
// A tiny TREK-like app: its request handler records an audit event and answers with it.

const http = require('node:http');
const { auditContext } = require('..');
const { afterTest } = require('./trek.js');

/** An HTTP server on a free port whose POST /trips records trip.create through `audit`. */
async function startApp(t, audit, { trustProxy = 1 } = {}) {
  const context = auditContext({ trustProxy });
  const server = http.createServer((req, res) => {
    context(req, res, async () => {
      try {
        const event = await audit.record('trip.create', {
          user: { id: 7, username: 'alice', email: 'alice@example.com' },
          resource: `trip${req.url}`,
          ip: req.auditIp,
          details: { method: req.method },
        });
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify(event));
      } catch (error) {
        res.writeHead(error.type === 'invalid' ? 400 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: error.type, message: error.message } }));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterTest(t, () => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

module.exports = { startApp };
