'use strict';
// The client IP rule, as trek_audit.writer.client_ip has it (tests/writer/test_writer_client_ip.py).

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { auditContext, clientIp } = require('..');

const REMOTE = '10.0.0.9';

function request(header, remote = REMOTE) {
  const headers = header === undefined ? {} : { 'x-forwarded-for': header };
  return { headers, socket: { remoteAddress: remote } };
}

// [id, trustProxy, X-Forwarded-For, expected]
const CASES = [
  ['unset', undefined, '203.0.113.5', REMOTE],
  ['null', null, '203.0.113.5', REMOTE],
  ['empty', '', '203.0.113.5', REMOTE],
  ['zero', '0', '203.0.113.5', REMOTE],
  ['false', 'false', '203.0.113.5', REMOTE],
  ['bool-false', false, '203.0.113.5', REMOTE],
  ['int-zero', 0, '203.0.113.5', REMOTE],
  ['true-one-entry', 'true', '203.0.113.5', '203.0.113.5'],
  ['one-hop', '1', '198.51.100.1, 203.0.113.5', '203.0.113.5'],
  ['bool-true', true, '198.51.100.1,203.0.113.5', '203.0.113.5'],
  ['two-hops', '2', '198.51.100.1, 203.0.113.5, 192.0.2.7', '203.0.113.5'],
  ['two-hops-ignores-forged-left', 2, 'forged, 198.51.100.1, 192.0.2.7', '198.51.100.1'],
  ['three-hops-leftmost', '3', '198.51.100.1, 203.0.113.5, 192.0.2.7', '198.51.100.1'],
  ['shorter-than-hops', '3', '203.0.113.5, 192.0.2.7', REMOTE],
  ['empty-header', '1', '', REMOTE],
  ['no-header', '1', undefined, REMOTE],
  ['garbage', '1', 'not-an-ip', REMOTE],
  ['garbage-rightmost', '1', '203.0.113.5, garbage', REMOTE],
  ['garbage-at-hop', '2', '198.51.100.1, <script>, 192.0.2.7', REMOTE],
  ['port', '1', '203.0.113.5:8080', REMOTE],
  ['ipv6', '1', '2001:db8::1', '2001:db8::1'],
  ['ipv6-normalised', '1', '2001:DB8:0:0::1', '2001:db8::1'],
  ['ipv6-brackets', '1', '[2001:db8::1]', REMOTE],
  ['ipv6-two-hops', '2', '2001:db8::1, 192.0.2.7', '2001:db8::1'],
  ['spaces', '1', ' 203.0.113.5 ', '203.0.113.5'],
  ['empty-entries', '1', '203.0.113.5,,', REMOTE],
  // Python's ipaddress forms, beyond the shared cases.
  ['ipv4-leading-zero', '1', '01.2.3.4', REMOTE],
  ['ipv4-out-of-range', '1', '256.1.1.1', REMOTE],
  ['ipv6-full-form', '1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
  ['ipv6-first-longest-zero-run', '1', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ['ipv6-single-zero-group-kept', '1', '::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
  ['ipv6-trailing-zeros', '1', '1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
  ['ipv6-mapped-ipv4', '1', '::ffff:1.2.3.4', '::ffff:102:304'],
  ['ipv6-zone', '1', 'FE80::1%Eth0', 'fe80::1%Eth0'],
  ['ipv6-empty-zone', '1', 'fe80::1%', REMOTE],
  ['ipv4-with-zone', '1', '1.2.3.4%eth0', REMOTE],
  ['hops-with-plus-sign', '+2', '198.51.100.1, 192.0.2.7', '198.51.100.1'],
  ['hops-yes', 'yes', '203.0.113.5', '203.0.113.5'],
  ['hops-off', 'OFF', '203.0.113.5', REMOTE],
];

for (const [id, trustProxy, header, expected] of CASES) {
  test(`client ip rule: ${id}`, () => {
    assert.equal(clientIp(request(header), trustProxy), expected);
  });
}

test('without trust the leftmost entry is never taken', () => {
  // TREK takes the leftmost entry even without TRUST_PROXY, so any client can forge its IP.
  assert.equal(clientIp(request('1.2.3.4, 5.6.7.8'), undefined), REMOTE);
  assert.equal(clientIp(request('1.2.3.4, 5.6.7.8'), '1'), '5.6.7.8');
});

test('a bad TRUST_PROXY value throws', () => {
  assert.throws(() => clientIp(request('1.2.3.4'), 'maybe'), /TRUST_PROXY/);
  assert.throws(() => clientIp(request('1.2.3.4'), '-1'), /negative/);
  assert.throws(() => clientIp(request('1.2.3.4'), -1), /negative/);
  assert.throws(() => clientIp(request('1.2.3.4'), 1.5), /TRUST_PROXY/);
});

test('repeated X-Forwarded-For headers count as one list, in order', () => {
  const req = request(['1.2.3.4, 198.51.100.1', '192.0.2.7']);
  assert.equal(clientIp(req, 2), '198.51.100.1');
});

test('without a socket address and a trusted header the answer is null', () => {
  assert.equal(clientIp({ headers: {} }, 1), null);
});

test('the middleware sets req.auditIp under its trustProxy and calls next', () => {
  const req = request('1.2.3.4, 198.51.100.1');
  let called = 0;
  auditContext({ trustProxy: 1 })(req, {}, () => {
    called += 1;
  });
  assert.equal(req.auditIp, '198.51.100.1');
  assert.equal(called, 1);
});

test('the middleware falls back to TRUST_PROXY from the environment, read when it is made', (t) => {
  const saved = process.env.TRUST_PROXY;
  t.after(() => {
    if (saved === undefined) delete process.env.TRUST_PROXY;
    else process.env.TRUST_PROXY = saved;
  });
  process.env.TRUST_PROXY = 'true';
  const trusting = auditContext();
  delete process.env.TRUST_PROXY;
  const distrusting = auditContext();
  const first = request('203.0.113.5');
  const second = request('203.0.113.5');
  trusting(first, {}, () => {});
  distrusting(second, {}, () => {});
  assert.equal(first.auditIp, '203.0.113.5');
  assert.equal(second.auditIp, REMOTE);
  process.env.TRUST_PROXY = 'maybe';
  assert.throws(() => auditContext(), /TRUST_PROXY/);
});
