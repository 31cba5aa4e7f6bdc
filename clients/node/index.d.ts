// Types of the trek-audit Node.js client (index.js).

/** The acting user; a missing key is written as null. */
export interface AuditUser {
  id?: number | null;
  username?: string | null;
  email?: string | null;
}

/** A JSON value as trek-audit writes it in `details`. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What an event says besides its action; every field may be left out (written as null). */
export interface AuditFields {
  user?: AuditUser | null;
  resource?: string | null;
  ip?: string | null;
  details?: { [key: string]: JsonValue } | null;
}

/** One event exactly as trek-audit wrote it to trek.log (line format v1). */
export interface AuditEvent {
  v: 1;
  /** UUIDv7 of the event. */
  id: string;
  /** Position in the log: 1, 2, 3, ... with no gap across processes and rotations. */
  seq: number;
  /** When it was written, UTC with microseconds: 2025-01-31T12:00:00.123456Z. */
  ts: string;
  action: string;
  user: { id: number | null; username: string | null; email: string | null } | null;
  resource: string | null;
  ip: string | null;
  details: { [key: string]: JsonValue } | null;
}

/**
 * Why a record failed:
 * - `invalid`: the request was refused (malformed action, user, details...); nothing written.
 * - `write`: trek-audit could not append the line (disk full...); nothing written.
 * - `closed`: the client was closed before the record.
 * - `connection`: the co-process died or the socket broke before the answer came; the event
 *   may or may not have been written.
 */
export type AuditErrorType = 'invalid' | 'write' | 'closed' | 'connection';

export class AuditError extends Error {
  constructor(type: AuditErrorType, message: string);
  readonly name: 'AuditError';
  readonly type: AuditErrorType;
}

export interface AuditClientOptions {
  /** TREK_DATA_DIR of the co-process (default: inherited from the environment). */
  dataDir?: string;
  /** Path of the `trek-audit ingest` socket; when given, no co-process is started. */
  socket?: string;
  /**
   * The co-process's command line (default: TREK_AUDIT_COMMAND, split on spaces, or
   * `trek-audit`, followed by `record --stdin`).
   */
  command?: string[];
  /** Extra environment of the co-process, over process.env. */
  env?: { [name: string]: string | undefined };
  /**
   * How long a record waits for its answer before the connection is dropped, in ms
   * (default 10000; 0 waits forever).
   */
  timeoutMs?: number;
}

export interface AuditClient {
  /** Append one event; resolves to it as written, rejects with an AuditError. */
  record(action: string, fields?: AuditFields): Promise<AuditEvent>;
  /** Wait for the answers still due, then end the co-process's input or the connection. */
  close(): Promise<void>;
}

/**
 * A client that records through `trek-audit ingest` when given `socket`, else through a
 * `trek-audit record --stdin` co-process started on the first record (and again after it dies).
 */
export function createAuditClient(options?: AuditClientOptions): AuditClient;

/** The TRUST_PROXY setting: unset/false = no proxy trusted, true = 1 hop, N = N hops. */
export type TrustProxy = boolean | number | string | null | undefined;

/** The part of a Node/Express request the client IP rule reads. */
export interface RequestLike {
  headers?: { [name: string]: string | string[] | undefined };
  socket?: { remoteAddress?: string | null } | null;
  connection?: { remoteAddress?: string | null } | null;
}

/** Parse TRUST_PROXY into a number of hops; throws RangeError for anything else. */
export function parseTrustProxy(value: TrustProxy): number;

/**
 * The client's IP address: the socket's peer, or with N trusted proxy hops the Nth
 * X-Forwarded-For entry counted from the right if it is a valid address (in Python's
 * ipaddress form), else the socket's peer. `trustProxy` defaults to 0.
 */
export function clientIp(req: RequestLike, trustProxy?: TrustProxy): string | null;

export interface AuditContextOptions {
  /** Default: the TRUST_PROXY environment variable when the middleware is made. */
  trustProxy?: TrustProxy;
}

/** Express-style middleware that sets `req.auditIp` with clientIp() and calls next(). */
export function auditContext(
  options?: AuditContextOptions,
): <Req extends RequestLike>(
  req: Req & { auditIp?: string | null },
  res: unknown,
  next?: (error?: unknown) => void,
) => void;
