'use strict';
// Events per second through the client, pipelined, and the round trip of one record at a time,
// through the `record --stdin` co-process and through the `ingest` socket.
//
//   node bench/throughput.js [EVENTS]      (TREK_AUDIT_COMMAND names trek-audit, default on PATH)

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: delay } = require('node:timers/promises');
const { createAuditClient } = require('..');

const EVENTS = Number(process.argv[2] ?? 20_000);
const ROUND_TRIPS = Math.min(EVENTS, 5_000);
const WARM_UP = 200;
const USER = { id: 7, username: 'alice', email: 'alice@example.com' };

function program() {
  const named = process.env.TREK_AUDIT_COMMAND?.trim();
  return named ? named.split(/\s+/) : ['trek-audit'];
}

function record(audit, index) {
  return audit.record('trip.update', {
    user: USER,
    resource: `trip/${index % 100}`,
    ip: '203.0.113.5',
    details: { index, title: 'Lisbon in spring' },
  });
}

async function pipelined(audit) {
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: EVENTS }, (_, index) => record(audit, index)));
  return EVENTS / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function roundTrips(audit) {
  const micros = [];
  for (let index = 0; index < ROUND_TRIPS; index += 1) {
    const started = process.hrtime.bigint();
    await record(audit, index);
    micros.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  micros.sort((a, b) => a - b);
  const at = (fraction) =>
    micros[Math.min(micros.length - 1, Math.floor(fraction * micros.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

async function measure(name, options) {
  const audit = createAuditClient({ ...options, timeoutMs: 0 });
  await Promise.all(Array.from({ length: WARM_UP }, (_, index) => record(audit, index)));
  const rate = await pipelined(audit);
  const { p50, p99 } = await roundTrips(audit);
  await audit.close();
  console.log(
    `${name.padEnd(11)} pipelined ${Math.round(rate).toString().padStart(7)} events/s   ` +
      `one at a time p50 ${p50.toFixed(0).padStart(4)} us  p99 ${p99.toFixed(0).padStart(5)} us`,
  );
}

async function startIngest(dataDir, socket) {
  const [command, ...args] = program();
  const child = spawn(command, [...args, 'ingest', '--socket', socket], {
    env: { ...process.env, TREK_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 15_000;
  while (!(await accepts(socket))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error('trek-audit ingest did not start');
    await delay(20);
  }
  return child;
}

function accepts(socket) {
  return new Promise((resolve) => {
    const probe = net.createConnection({ path: socket });
    probe.on('connect', () => resolve(probe.end() && true));
    probe.on('error', () => resolve(false));
  });
}

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trek-node-bench-'));
  try {
    console.log(
      `trek-audit Node client, node ${process.version}, ${os.cpus().length} CPUs: ` +
        `${EVENTS} pipelined events, ${ROUND_TRIPS} round trips (after ${WARM_UP} to warm up)`,
    );
    const pipeDir = path.join(root, 'pipe');
    fs.mkdirSync(pipeDir);
    await measure('co-process', { dataDir: pipeDir });
    const socketDir = path.join(root, 'socket');
    fs.mkdirSync(socketDir);
    const socket = path.join(socketDir, 'ingest.sock');
    const ingest = await startIngest(socketDir, socket);
    try {
      await measure('socket', { socket });
    } finally {
      ingest.kill('SIGTERM');
      await new Promise((resolve) => ingest.once('exit', resolve));
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
