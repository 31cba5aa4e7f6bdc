'use strict';
// What the tests share: the trek-audit program, temporary data directories, an ingest server
// started as a child, and the seqs read back from trek.log*.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: delay } = require('node:timers/promises');

const READY_TIMEOUT_MS = 15_000;
const cleanUps = new WeakMap();

/**
 * Run `undo` after the test, the last registered first: a client is closed before the server
 * it talks to stops, and both before the data directory goes.
 */
function afterTest(t, undo) {
  let stack = cleanUps.get(t);
  if (stack === undefined) {
    stack = [];
    cleanUps.set(t, stack);
    t.after(async () => {
      while (stack.length > 0) await stack.pop()();
    });
  }
  stack.push(undo);
}

/** The trek-audit program as TREK_AUDIT_COMMAND names it (the venv's binary under pytest). */
function trekAudit() {
  const named = process.env.TREK_AUDIT_COMMAND?.trim();
  return named ? named.split(/\s+/) : ['trek-audit'];
}

/** An empty data directory, removed after the test. */
function tempDataDir(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trek-node-'));
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
  afterTest(t, () => fs.rmSync(root, { recursive: true, force: true }));
  return dataDir;
}

/**
 * Start `trek-audit ingest --socket PATH` on dataDir and resolve once it accepts connections.
 * The server is stopped (SIGTERM) after the test.
 */
async function startIngest(t, dataDir, socketPath, env = {}) {
  const [program, ...args] = trekAudit();
  const child = spawn(program, [...args, 'ingest', '--socket', socketPath], {
    env: { ...process.env, ...env, TREK_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  afterTest(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `trek-audit ingest exited (${child.exitCode ?? child.signalCode}): ${stderr}`,
      );
    }
    if (await accepts(socketPath)) return { child, exited };
    if (Date.now() > deadline)
      throw new Error(`trek-audit ingest did not listen on ${socketPath}: ${stderr}`);
    await delay(20);
  }
}

function accepts(socketPath) {
  return new Promise((resolve) => {
    const probe = net.createConnection({ path: socketPath });
    probe.on('connect', () => {
      probe.end();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
}

/** Every event line of trek.log and its rotated files, oldest file first. */
function readEvents(dataDir) {
  const logs = path.join(dataDir, 'logs');
  const files = fs
    .readdirSync(logs)
    .filter((name) => /^trek\.log(\.[0-9]+)?$/.test(name))
    .sort((a, b) => rotationNumber(b) - rotationNumber(a));
  const events = [];
  for (const name of files) {
    for (const line of fs.readFileSync(path.join(logs, name), 'utf8').split('\n')) {
      if (line !== '') events.push(JSON.parse(line));
    }
  }
  return { files, events };
}

function rotationNumber(name) {
  const match = /\.([0-9]+)$/.exec(name);
  return match ? Number(match[1]) : 0;
}

module.exports = { afterTest, readEvents, startIngest, tempDataDir, trekAudit };
