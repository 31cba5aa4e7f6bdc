'use strict';
// The audit client: records events through the `trek-audit record --stdin` co-process or the
// Unix socket of `trek-audit ingest`. It never touches trek.log itself: the line format, seq,
// rotation, locking and the hash chain live in trek-audit alone (see README.md).

const { spawn } = require('node:child_process');
const net = require('node:net');

const DEFAULT_PROGRAM = ['trek-audit'];
const STDIN_ARGS = ['record', '--stdin'];
// A request path must not hang on a stuck writer; 10 s is far beyond a healthy answer
// (tens of microseconds) and beyond an fsync on a busy disk.
const DEFAULT_TIMEOUT_MS = 10_000;
// The last bytes of the co-process's standard error, quoted when it dies.
const STDERR_TAIL_BYTES = 4096;
const REQUEST_KEYS = ['user', 'resource', 'ip', 'details'];

class AuditError extends Error {
  /**
   * @param {'invalid'|'write'|'closed'|'connection'} type
   * @param {string} message
   */
  constructor(type, message) {
    super(message);
    this.name = 'AuditError';
    this.type = type;
  }
}

/** A first-in first-out queue; Array.shift() copies, which is quadratic with 10^4 in flight. */
class Fifo {
  constructor() {
    this.items = [];
    this.head = 0;
  }

  get length() {
    return this.items.length - this.head;
  }

  peek() {
    return this.items[this.head];
  }

  push(item) {
    this.items.push(item);
  }

  shift() {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  drain() {
    const items = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return items;
  }
}

/** One live co-process or socket connection, with the records it still owes an answer. */
class Channel {
  constructor(timeoutMs, onGone) {
    this.timeoutMs = timeoutMs;
    this.onGone = onGone;
    this.pending = new Fifo(); // { resolve, reject, deadline }, answered in order
    this.outgoing = [];
    this.flushScheduled = false;
    this.received = '';
    this.gone = false;
    this.timer = null;
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
  }

  send(line, entry) {
    if (this.pending.length === 0) this.ref();
    this.pending.push(entry);
    if (this.timeoutMs > 0) {
      entry.deadline = Date.now() + this.timeoutMs;
      if (this.timer === null) this.armTimer();
    }
    this.outgoing.push(line);
    // Requests made in the same tick leave in one write: pipelined records cost one system
    // call per batch, not one each.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  flush() {
    this.flushScheduled = false;
    if (this.gone || this.outgoing.length === 0) return;
    const data = this.outgoing.join('');
    this.outgoing = [];
    this.writable().write(data);
  }

  receive(chunk) {
    const text = this.received + chunk;
    let start = 0;
    let end = text.indexOf('\n');
    while (end !== -1) {
      if (this.gone) return;
      this.answer(text.slice(start, end));
      start = end + 1;
      end = text.indexOf('\n', start);
    }
    this.received = text.slice(start);
  }

  answer(line) {
    if (this.pending.length === 0) {
      this.fail(`${this.describe()} sent an answer to no request: ${line.slice(0, 200)}`);
      return;
    }
    let answer;
    try {
      answer = JSON.parse(line);
    } catch (error) {
      this.fail(`${this.describe()} sent a line that is not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
      this.fail(`${this.describe()} sent an answer that is not an object: ${line.slice(0, 200)}`);
      return;
    }
    const entry = this.pending.shift();
    if (answer.error) {
      const { type, message } = answer.error;
      entry.reject(new AuditError(type === 'write' ? 'write' : 'invalid', String(message)));
    } else {
      entry.resolve(answer);
    }
    if (this.pending.length === 0) {
      this.clearTimer();
      this.unref();
      this.onIdle?.();
    }
  }

  // One timer for the oldest record in flight, set again when it fires rather than on every
  // answer: at 10^4 answers a second, a timer per answer costs more than the answer.
  armTimer() {
    const wait = Math.max(0, this.pending.peek().deadline - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.pending.length === 0) return;
      if (this.pending.peek().deadline <= Date.now()) {
        this.fail(`no answer from ${this.describe()} within ${this.timeoutMs} ms`);
      } else {
        this.armTimer();
      }
    }, wait);
  }

  clearTimer() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Reject every record still waiting and stop using this channel: answers cannot be matched. */
  fail(message) {
    if (this.gone) return;
    this.gone = true;
    this.clearTimer();
    this.onGone(this);
    const pending = this.pending.drain();
    this.outgoing = [];
    for (const entry of pending) entry.reject(new AuditError('connection', message));
    this.onIdle?.();
    this.destroy();
  }

  /** End the input, and resolve once the other side is gone (killed if it lingers). */
  end() {
    this.gone = true;
    this.ref();
    this.endInput();
    if (this.timeoutMs === 0) return this.closed;
    const timer = setTimeout(() => this.destroy(), this.timeoutMs);
    return this.closed.finally(() => clearTimeout(timer));
  }

  /** Resolves once every pending record has its answer (or was rejected). */
  drained() {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onIdle = () => {
        this.onIdle = null;
        resolve();
      };
    });
  }
}

/** The `trek-audit record --stdin` co-process. */
class ProcessChannel extends Channel {
  constructor(command, env, timeoutMs, onGone) {
    super(timeoutMs, onGone);
    this.command = command;
    this.stderrTail = '';
    this.child = spawn(command[0], command.slice(1), {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const child = this.child;
    child.on('error', (error) => {
      this.fail(`cannot run ${command.join(' ')}: ${error.message}${hintFor(error)}`);
      this.markClosed();
    });
    child.stdin.on('error', (error) => {
      // EPIPE: the co-process is gone; 'close' below says how.
      if (error.code !== 'EPIPE') this.fail(`cannot write to ${this.describe()}: ${error.message}`);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => this.receive(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    child.on('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      const said = this.stderrTail.trim();
      this.fail(`${this.describe()} ${how}${said ? `: ${said}` : ''}`);
      this.markClosed();
    });
    this.unref();
  }

  describe() {
    return `the trek-audit co-process (${this.command.join(' ')})`;
  }

  writable() {
    return this.child.stdin;
  }

  // While no record waits, the co-process does not keep Node's event loop alive: a script that
  // forgets close() still exits, and the co-process then sees EOF and exits too.
  ref() {
    this.child.ref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) stream.ref?.();
  }

  unref() {
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      stream.unref?.();
    }
  }

  endInput() {
    this.child.stdin.end();
  }

  destroy() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** A connection to `trek-audit ingest --socket PATH`. */
class SocketChannel extends Channel {
  constructor(path, timeoutMs, onGone) {
    super(timeoutMs, onGone);
    this.path = path;
    this.socket = net.createConnection({ path });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk) => this.receive(chunk));
    this.socket.on('error', (error) => {
      this.fail(`cannot talk to ${this.describe()}: ${error.message}${hintFor(error)}`);
    });
    this.socket.on('close', () => {
      this.fail(`${this.describe()} closed the connection`);
      this.markClosed();
    });
    this.socket.on('end', () => this.fail(`${this.describe()} closed the connection`));
    this.unref();
  }

  describe() {
    return `the trek-audit ingest socket ${this.path}`;
  }

  writable() {
    return this.socket;
  }

  ref() {
    this.socket.ref();
  }

  unref() {
    this.socket.unref();
  }

  endInput() {
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }
}

function hintFor(error) {
  if (error.code === 'ENOENT' && error.syscall?.startsWith('spawn')) {
    return '; install trek-audit, or name it with TREK_AUDIT_COMMAND or the command option';
  }
  if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
    return '; is `trek-audit ingest` (or `trek-audit serve` with TREK_INGEST_SOCKET) running?';
  }
  return '';
}

function programFromEnv(env) {
  const named = env.TREK_AUDIT_COMMAND?.trim();
  return named ? named.split(/\s+/) : DEFAULT_PROGRAM;
}

class AuditClient {
  constructor(options) {
    const { dataDir, socket, command, env, timeoutMs } = options;
    if (socket !== undefined && (typeof socket !== 'string' || socket === '')) {
      throw new TypeError('socket must be the path of the ingest socket');
    }
    if (command !== undefined && !(Array.isArray(command) && command.length > 0)) {
      throw new TypeError(
        "command must be a non-empty array, e.g. ['trek-audit', 'record', '--stdin']",
      );
    }
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new TypeError('timeoutMs must be a number of milliseconds (0: wait forever)');
    }
    this.socket = socket;
    const childEnv = { ...process.env, ...env };
    if (dataDir !== undefined) childEnv.TREK_DATA_DIR = String(dataDir);
    this.env = childEnv;
    this.command = command ? command.map(String) : [...programFromEnv(childEnv), ...STDIN_ARGS];
    this.timeoutMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.channel = null;
    this.closing = null;
  }

  /** Append one event; resolves to it as written (with id, seq and ts). */
  record(action, fields = {}) {
    if (this.closing !== null) {
      return Promise.reject(new AuditError('closed', 'the audit client is closed'));
    }
    let line;
    try {
      line = requestLine(action, fields);
    } catch (error) {
      return Promise.reject(new AuditError('invalid', error.message));
    }
    const channel = this.channel ?? this.open();
    return new Promise((resolve, reject) => {
      channel.send(line, { resolve, reject, deadline: 0 });
    });
  }

  /** Wait for the answers still due, then end the co-process's input or the connection. */
  async close() {
    if (this.closing === null) this.closing = this.shutDown();
    return this.closing;
  }

  async shutDown() {
    const channel = this.channel;
    if (channel === null) return;
    await channel.drained();
    if (this.channel === channel) this.channel = null;
    await channel.end();
  }

  open() {
    const gone = (channel) => {
      if (this.channel === channel) this.channel = null;
    };
    this.channel = this.socket
      ? new SocketChannel(this.socket, this.timeoutMs, gone)
      : new ProcessChannel(this.command, this.env, this.timeoutMs, gone);
    return this.channel;
  }
}

function requestLine(action, fields) {
  if (typeof action !== 'string' || action === '') {
    throw new TypeError(
      `action must be a non-empty string such as 'trip.create', not ${describe(action)}`,
    );
  }
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new TypeError(
      'the second argument must be an object with user, resource, ip and details, ' +
        `not ${describe(fields)}`,
    );
  }
  const request = { action };
  for (const key of Object.keys(fields)) {
    if (!REQUEST_KEYS.includes(key)) {
      throw new TypeError(
        `unknown field ${JSON.stringify(key)}; allowed: ${REQUEST_KEYS.join(', ')}`,
      );
    }
    if (fields[key] !== undefined) request[key] = fields[key];
  }
  // JSON.stringify escapes every newline inside strings, so the request is exactly one line.
  return `${JSON.stringify(request)}\n`;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  return `a ${typeof value}`;
}

/**
 * A client that records through `trek-audit ingest` when given `socket`, else through a
 * `trek-audit record --stdin` co-process started on the first record.
 */
function createAuditClient(options = {}) {
  return new AuditClient(options);
}

module.exports = { AuditError, createAuditClient };
