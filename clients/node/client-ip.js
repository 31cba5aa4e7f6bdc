'use strict';
// Which address made a request: the socket's peer, or a proxy's X-Forwarded-For when trusted.
// The same rule, with the same answers, as trek_audit.writer.client_ip on the Python side.

const net = require('node:net');

/** How many proxy hops to trust: 0 for unset, empty, 0 or false; 1 for true; N for N. */
function parseTrustProxy(value) {
  if (value === undefined || value === null || value === false) return 0;
  if (value === true) return 1;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      throw new RangeError(
        `TRUST_PROXY must be unset, true, false or a number of proxy hops, got ${value}`,
      );
    }
    if (value < 0) throw new RangeError(`TRUST_PROXY must not be negative, got ${value}`);
    return value;
  }
  const text = pythonStrip(String(value)).toLowerCase();
  if (['', 'false', 'no', 'off'].includes(text)) return 0;
  if (['true', 'yes', 'on'].includes(text)) return 1;
  if (!/^[+-]?[0-9]+(_[0-9]+)*$/.test(text)) {
    throw new RangeError(
      'TRUST_PROXY must be unset, true, false or a number of proxy hops, ' +
        `got ${JSON.stringify(String(value))}`,
    );
  }
  const hops = Number.parseInt(text.replaceAll('_', ''), 10);
  if (hops < 0)
    throw new RangeError(`TRUST_PROXY must not be negative, got ${JSON.stringify(String(value))}`);
  return hops;
}

// Python's str.strip() whitespace, so that an entry is read exactly as the Python side reads it.
const PYTHON_SPACE =
  '[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PYTHON_STRIP = new RegExp(`^${PYTHON_SPACE}+|${PYTHON_SPACE}+$`, 'g');

function pythonStrip(text) {
  return text.replace(PYTHON_STRIP, '');
}

/** The address in Python's ipaddress form (IPv6 compressed, lower case), or null if invalid. */
function normaliseIp(text) {
  if (net.isIPv4(text)) return text; // strict dotted quad: already canonical
  const percent = text.indexOf('%');
  const address = percent === -1 ? text : text.slice(0, percent);
  const zone = percent === -1 ? null : text.slice(percent + 1);
  if (zone !== null && (zone === '' || zone.includes('%'))) return null;
  if (!net.isIPv6(address)) return null;
  const groups = ipv6Groups(address);
  if (groups === null) return null;
  return compressIpv6(groups) + (zone === null ? '' : `%${zone}`);
}

function ipv6Groups(address) {
  let text = address.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!net.isIPv4(tail)) return null;
    const [a, b, c, d] = tail.split('.').map(Number);
    const high = ((a << 8) | b).toString(16);
    const low = ((c << 8) | d).toString(16);
    text = `${text.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part) =>
    part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16));
  const head = parse(halves[0]);
  if (halves.length === 1) return head.length === 8 ? head : null;
  const rest = parse(halves[1]);
  const zeros = 8 - head.length - rest.length;
  if (zeros < 1) return null;
  return [...head, ...new Array(zeros).fill(0), ...rest];
}

// Python's ipaddress rule: the first longest run of two or more zero groups becomes '::'.
function compressIpv6(groups) {
  let bestStart = -1;
  let bestLength = 0;
  let start = -1;
  for (let index = 0; index < groups.length; index += 1) {
    if (groups[index] === 0) {
      if (start === -1) start = index;
      if (index - start + 1 > bestLength) {
        bestStart = start;
        bestLength = index - start + 1;
      }
    } else {
      start = -1;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestLength < 2) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

/**
 * The client's IP address: the socket's peer, or with N trusted proxy hops the Nth
 * X-Forwarded-For entry counted from the right, if it is a valid address.
 */
function clientIp(req, trustProxy = 0) {
  const hops = parseTrustProxy(trustProxy);
  const remote = req.socket?.remoteAddress ?? req.connection?.remoteAddress ?? null;
  let forwarded = req.headers?.['x-forwarded-for'];
  // Several X-Forwarded-For headers count as one list, in order.
  if (Array.isArray(forwarded)) forwarded = forwarded.join(',');
  if (hops === 0 || !forwarded) return remote;
  const entries = forwarded.split(',').map(pythonStrip);
  if (entries.length < hops) return remote;
  return normaliseIp(entries[entries.length - hops]) ?? remote;
}

/**
 * Express-style middleware setting req.auditIp; trustProxy defaults to the TRUST_PROXY
 * environment variable, read when the middleware is made.
 */
function auditContext(options = {}) {
  const setting = options.trustProxy !== undefined ? options.trustProxy : process.env.TRUST_PROXY;
  const hops = parseTrustProxy(setting);
  return function auditContextMiddleware(req, res, next) {
    req.auditIp = clientIp(req, hops);
    if (typeof next === 'function') next();
  };
}

module.exports = { auditContext, clientIp, parseTrustProxy };
