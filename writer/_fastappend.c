/* The common case of AuditWriter.record's append, in C: one call, six system calls.
 *
 * append(lock_fd, log_fd, log_ino, path, body, max_bytes, max_line_bytes, file_size_limit,
 *        seal_interval_ns) -> (id, seq, ts) | None
 *
 * ``body`` is orjson's serialisation of an event with the placeholders id "", seq 0, ts "".
 * Under flock(lock_fd) this reads the state page at the start of the lock file (magic, version,
 * last seq, trek.log's inode, its expected size, last ts in ns: the layout is in _fastappend.h),
 * checks with statx that trek.log (``log_fd``) is the file the state describes, takes the next
 * seq and the time (never before the last one), makes the UUIDv7 id and the ts, writes the line
 * (body with the real id, seq and ts, U+2028, U+2029 and U+0085 escaped) in one write() and
 * stores the new state. It returns the id, seq and ts it wrote, for the caller's event.
 *
 * The state also holds the head of the hash chain (writer/chain.py): the line's SHA-256 link,
 * SHA-256(head || line), is computed before the write (with OpenSSL's libcrypto: an EVP_MD
 * fetched once and one reused EVP_MD_CTX, safe since this runs with the GIL held) and stored
 * with the rest, together with the time of the oldest line after the last seal. Seals are the
 * Python path's: a writer that seals (seal_interval_ns > 0) hands back when no seal is known
 * yet or the oldest unsealed line is seal_interval_ns old.
 *
 * The state is read with pread and stored with pwrite, never through a mapping: anything that
 * can write the lock file can truncate it, and touching a mapped page past the end of the file
 * kills the process with SIGBUS. A short read is a state that is not trusted.
 *
 * The statx asks for the inode, link count and size only. Asking for times (as fstat does) makes
 * a kernel with multigrain timestamps (Linux 6.13+) give the next write a fine-grained mtime,
 * which dirties the inode on every append and about doubles the cost of the write. Looking up
 * ``path`` (to notice an outside rename of trek.log) costs as much as the write, so it is done
 * at most once a second: the time of the last look-up is kept in the state page
 * (STATE_OFF_PATH_CHECKED_NS), shared by all writers of the directory.
 *
 * It returns None, with the files and the state untouched and the lock released, for everything
 * else: a state that is short, not sound or does not match trek.log, a seq or a time at the end
 * of its range, an unlinked trek.log, a rotation due, a line too long, a file-size limit in the
 * way, a failed or short write (whatever got in is truncated away first), a failed system call.
 * The caller then takes its general path, which handles and reports each of these. Everything
 * that can fail, the objects returned included, is done before the write: once the line is in,
 * the call succeeds (a state that could not be stored no longer matches trek.log, so the next
 * append resyncs). The GIL is released only while waiting for the lock and during write(), so
 * the random pool below needs no lock of its own.
 *
 * Borrowed references: the arguments are held by the caller for the whole call. Nothing below
 * holds a reference it borrowed from a dict or list across a call that can run Python code
 * (canonical_user says why that matters).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "_fastappend.h"

#define PATH_CHECK_NS 1000000000ULL
#define STATX_WANTED (STATX_INO | STATX_NLINK | STATX_SIZE)
#define PLACEHOLDER_LEN (sizeof(PLACEHOLDER) - 1)
#define ID_LEN 36 /* xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx */
#define TS_LEN 27 /* 2026-11-26T13:22:49.123456Z */
/* {"v":1,"id":"<id>","seq":<up to 20 digits>,"ts":"<ts>", */
#define HEAD_ROOM 128
#define STACK_LINE 4096
#define NS_PER_S 1000000000ULL

/* The keys of a user, interned: the same objects as those in most callers' dict literals. */
static PyObject *key_id, *key_username, *key_email;

/* SHA-256 for the chain, fetched once; the context is reused by every call (GIL held). */
static EVP_MD *chain_md;
static EVP_MD_CTX *chain_ctx;

/* head = SHA-256(head || line); 0 if libcrypto failed (nothing is then written). */
static int
advance_chain(unsigned char *head, const char *line, size_t length)
{
    unsigned int size = 0;
    return EVP_DigestInit_ex(chain_ctx, chain_md, NULL) == 1 &&
           EVP_DigestUpdate(chain_ctx, head, CHAIN_BYTES) == 1 &&
           EVP_DigestUpdate(chain_ctx, line, length) == 1 &&
           EVP_DigestFinal_ex(chain_ctx, head, &size) == 1 && size == CHAIN_BYTES;
}

/* Random bytes for the ids, drawn from getrandom() in bulk. A forked child forgets the pool
 * (pthread_atfork), so it never hands out its parent's bytes. */
static unsigned char pool[4000];
static size_t pool_used = sizeof(pool);

static void
forget_pool(void)
{
    pool_used = sizeof(pool);
}

static const unsigned char *
random_bytes(size_t count)
{
    if (pool_used + count > sizeof(pool)) {
        size_t got = 0;
        while (got < sizeof(pool)) {
            ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
            if (n <= 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                return NULL;
            }
            got += (size_t)n;
        }
        pool_used = 0;
    }
    pool_used += count;
    return pool + pool_used - count;
}

/* Little-endian fields of the state page. */
static uint64_t
load_le(const unsigned char *p, int bytes)
{
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

static void
store_le(unsigned char *p, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++, value >>= 8)
        p[i] = (unsigned char)value;
}

static const char HEX[] = "0123456789abcdef";

static char *
put_hex(char *out, const unsigned char *bytes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        *out++ = HEX[bytes[i] >> 4];
        *out++ = HEX[bytes[i] & 15];
    }
    return out;
}

static char *
put_digits(char *out, unsigned long long value, int width)
{
    char *end = out + width;
    for (char *p = end; p > out; value /= 10)
        *--p = (char)('0' + value % 10);
    return end;
}

static char *
put_str(char *out, const char *text)
{
    size_t length = strlen(text);
    memcpy(out, text, length);
    return out + length;
}

/* The UUIDv7 (RFC 9562) for a Unix time in ms: 48 time bits, then 74 random bits around the
 * version and variant. Returns 0 if no random bytes could be had. */
static int
format_id(char *out, uint64_t ms)
{
    const unsigned char *r = random_bytes(10);
    unsigned char time_bytes[6], random[10];
    if (r == NULL)
        return 0;
    for (int i = 0; i < 6; i++)
        time_bytes[i] = (unsigned char)(ms >> (40 - 8 * i));
    memcpy(random, r, 10);
    random[0] = (unsigned char)(0x70 | (random[0] & 0x0F));
    random[2] = (unsigned char)(0x80 | (random[2] & 0x3F));
    out = put_hex(out, time_bytes, 4);
    *out++ = '-';
    out = put_hex(out, time_bytes + 4, 2);
    *out++ = '-';
    out = put_hex(out, random, 2);
    *out++ = '-';
    out = put_hex(out, random + 2, 2);
    *out++ = '-';
    put_hex(out, random + 4, 6);
    return 1;
}

/* UTC, RFC 3339 with microseconds and Z. Returns 0 outside years 1000..9999. */
static int
format_ts(char *out, uint64_t ns)
{
    time_t second = (time_t)(ns / NS_PER_S);
    struct tm tm;
    if (gmtime_r(&second, &tm) == NULL || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
        return 0;
    out = put_digits(out, (unsigned long long)tm.tm_year + 1900, 4);
    *out++ = '-';
    out = put_digits(out, (unsigned long long)tm.tm_mon + 1, 2);
    *out++ = '-';
    out = put_digits(out, (unsigned long long)tm.tm_mday, 2);
    *out++ = 'T';
    out = put_digits(out, (unsigned long long)tm.tm_hour, 2);
    *out++ = ':';
    out = put_digits(out, (unsigned long long)tm.tm_min, 2);
    *out++ = ':';
    out = put_digits(out, (unsigned long long)tm.tm_sec, 2);
    *out++ = '.';
    out = put_digits(out, (ns % NS_PER_S) / 1000, 6);
    *out = 'Z';
    return 1;
}

/* The line breakers of _fastappend.h. An escape is at most ESCAPE_GROWTH times as long as what
 * it replaces, which bounds the room copy_escaped needs. */
#define ESCAPE_GROWTH 3
#define BREAKER(name)                                                                             \
    {name, sizeof(name) - 1, name##_ESCAPED, sizeof(name##_ESCAPED) - 1}
#define CHECK_GROWTH(name)                                                                        \
    _Static_assert(sizeof(name##_ESCAPED) - 1 <= ESCAPE_GROWTH * (sizeof(name) - 1),              \
                   #name " grows too much")

static const struct breaker {
    const char *raw;
    size_t raw_len;
    const char *escaped;
    size_t escaped_len;
} BREAKERS[] = {
    BREAKER(LINE_BREAKER_U2028),
    BREAKER(LINE_BREAKER_U2029),
    BREAKER(LINE_BREAKER_U0085),
};
#define BREAKER_COUNT (sizeof(BREAKERS) / sizeof(BREAKERS[0]))
CHECK_GROWTH(LINE_BREAKER_U2028);
CHECK_GROWTH(LINE_BREAKER_U2029);
CHECK_GROWTH(LINE_BREAKER_U0085);

static const struct breaker *
breaker_at(const char *src, size_t left)
{
    for (size_t b = 0; b < BREAKER_COUNT; b++) {
        const struct breaker *breaker = &BREAKERS[b];
        if (left >= breaker->raw_len && src[0] == breaker->raw[0] &&
            memcmp(src, breaker->raw, breaker->raw_len) == 0)
            return breaker;
    }
    return NULL;
}

/* Copy src to out, escaping the line breakers orjson leaves raw; returns the bytes written.
 * out must have room for ESCAPE_GROWTH * length bytes. */
static size_t
copy_escaped(char *out, const char *src, size_t length)
{
    int maybe = 0;
    for (size_t b = 0; b < BREAKER_COUNT && !maybe; b++)
        maybe = memchr(src, (unsigned char)BREAKERS[b].raw[0], length) != NULL;
    if (!maybe) {
        memcpy(out, src, length);
        return length;
    }
    char *start = out;
    for (size_t i = 0; i < length;) {
        const struct breaker *breaker = breaker_at(src + i, length - i);
        if (breaker != NULL) {
            memcpy(out, breaker->escaped, breaker->escaped_len);
            out += breaker->escaped_len;
            i += breaker->raw_len;
        }
        else {
            *out++ = src[i++];
        }
    }
    return (size_t)(out - start);
}

/* A descriptor: an exact int in the range of a C int (-1 and the like mean "not open"). */
static int
as_fd(PyObject *object, int *fd)
{
    int overflow;
    if (!PyLong_CheckExact(object)) {
        PyErr_Format(PyExc_TypeError, "append() takes descriptors as int, not %.100s",
                     Py_TYPE(object)->tp_name);
        return 0;
    }
    long value = PyLong_AsLongAndOverflow(object, &overflow);
    if (value == -1 && PyErr_Occurred())
        return 0;
    if (overflow != 0 || value < INT_MIN || value > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "append() got a descriptor out of the range of int");
        return 0;
    }
    *fd = (int)value;
    return 1;
}

/* A size or limit: an exact int, 0 <= value < 2**63. */
static int
as_size(PyObject *object, long long *value)
{
    if (!PyLong_CheckExact(object)) {
        PyErr_Format(PyExc_TypeError, "append() takes sizes as int, not %.100s",
                     Py_TYPE(object)->tp_name);
        return 0;
    }
    *value = PyLong_AsLongLong(object);
    if (*value == -1 && PyErr_Occurred())
        return 0;
    if (*value < 0) {
        PyErr_SetString(PyExc_ValueError, "append() got a negative size");
        return 0;
    }
    return 1;
}

/* The tuple (id, seq, ts) that append returns; NULL with an exception set if it cannot be made. */
static PyObject *
stamped(const char *id_text, uint64_t seq, const char *ts_text)
{
    PyObject *id = PyUnicode_FromStringAndSize(id_text, ID_LEN);
    PyObject *seq_object = PyLong_FromUnsignedLongLong(seq);
    PyObject *ts = PyUnicode_FromStringAndSize(ts_text, TS_LEN);
    PyObject *result = NULL;
    if (id != NULL && seq_object != NULL && ts != NULL)
        result = PyTuple_Pack(3, id, seq_object, ts);
    Py_XDECREF(id);
    Py_XDECREF(seq_object);
    Py_XDECREF(ts);
    return result;
}

static PyObject *
fast_append(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int lock_fd, log_fd;
    long long max_bytes, max_line_bytes, file_size_limit, seal_interval;
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "append() takes 9 positional arguments");
        return NULL;
    }
    PyObject *path = args[3], *body = args[4];
    if (!as_fd(args[0], &lock_fd) || !as_fd(args[1], &log_fd) || !as_size(args[5], &max_bytes) ||
        !as_size(args[6], &max_line_bytes) || !as_size(args[7], &file_size_limit) ||
        !as_size(args[8], &seal_interval))
        return NULL;
    if (!PyLong_CheckExact(args[2]) || !PyBytes_CheckExact(path) || !PyBytes_CheckExact(body)) {
        PyErr_SetString(PyExc_TypeError, "append() needs trek.log's inode as int, its path as "
                                         "bytes and the event as bytes");
        return NULL;
    }
    const char *path_text = PyBytes_AS_STRING(path);
    if (strlen(path_text) != (size_t)PyBytes_GET_SIZE(path)) {
        PyErr_SetString(PyExc_ValueError, "append() got a path with a NUL byte");
        return NULL;
    }
    const char *body_data = PyBytes_AS_STRING(body);
    size_t body_len = (size_t)PyBytes_GET_SIZE(body);
    if (body_len < PLACEHOLDER_LEN || memcmp(body_data, PLACEHOLDER, PLACEHOLDER_LEN) != 0) {
        PyErr_SetString(PyExc_ValueError, "append() got bytes that do not start as an event");
        return NULL;
    }
    const char *tail = body_data + PLACEHOLDER_LEN;
    size_t tail_len = body_len - PLACEHOLDER_LEN;
    if (lock_fd < 0 || log_fd < 0 || (long long)tail_len > max_line_bytes)
        Py_RETURN_NONE;
    unsigned long long log_ino = PyLong_AsUnsignedLongLong(args[2]);
    if (log_ino == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;

    /* The line is assembled in place: the escaped rest of the body first, the head (which
     * needs the lock) right before it. */
    char stack_line[STACK_LINE];
    char *buffer = stack_line;
    size_t room = HEAD_ROOM + ESCAPE_GROWTH * tail_len;
    if (room > sizeof(stack_line)) {
        buffer = PyMem_Malloc(room);
        if (buffer == NULL)
            return PyErr_NoMemory();
    }
    size_t rest_len = copy_escaped(buffer + HEAD_ROOM, tail, tail_len);
    PyObject *result = NULL;
    int locked = 0;

    int lock_status = flock(lock_fd, LOCK_EX | LOCK_NB);
    if (lock_status != 0 && errno == EWOULDBLOCK) {
        Py_BEGIN_ALLOW_THREADS
        lock_status = flock(lock_fd, LOCK_EX);
        Py_END_ALLOW_THREADS
    }
    if (lock_status != 0)
        goto fallback; /* EINTR, ENOLCK...: the general path retries or reports it */
    locked = 1;

    /* Read under the lock, in one call that cannot fault whatever became of the file. */
    unsigned char state[STATE_SIZE];
    if (pread(lock_fd, state, STATE_SIZE, 0) != STATE_SIZE)
        goto fallback; /* truncated, shortened or unreadable: the general path rebuilds it */
    uint64_t seq = load_le(state + STATE_OFF_SEQ, 8), ino = load_le(state + STATE_OFF_INO, 8);
    uint64_t size = load_le(state + STATE_OFF_SIZE, 8);
    uint64_t last_ns = load_le(state + STATE_OFF_LAST_NS, 8);
    uint64_t path_checked = load_le(state + STATE_OFF_PATH_CHECKED_NS, 8);
    uint64_t seal_seq = load_le(state + STATE_OFF_SEAL_SEQ, 8);
    uint64_t unsealed_ns = load_le(state + STATE_OFF_UNSEALED_NS, 8);
    if (memcmp(state + STATE_OFF_MAGIC, STATE_MAGIC, STATE_MAGIC_LEN) != 0 ||
        load_le(state + STATE_OFF_VERSION, 4) != STATE_VERSION || last_ns >= (uint64_t)TS_END_NS ||
        seal_seq > seq || unsealed_ns > last_ns)
        goto fallback; /* new or damaged: the general path rebuilds it from the log files */
    if (seq >= (uint64_t)SEQ_MAX)
        goto fallback; /* no seq left (or garbage): the general path refuses or resyncs */
    struct statx st;
    if (ino != log_ino || statx(log_fd, "", AT_EMPTY_PATH, STATX_WANTED, &st) != 0 ||
        (st.stx_mask & STATX_WANTED) != STATX_WANTED || st.stx_nlink == 0 || st.stx_ino != ino ||
        st.stx_size != size)
        goto fallback; /* first use, another process rotated, an outside change: resync */
    seq += 1;

    struct timespec clock;
    if (clock_gettime(CLOCK_REALTIME, &clock) != 0 || clock.tv_sec < 0)
        goto fallback;
    uint64_t now = (uint64_t)clock.tv_sec * NS_PER_S + (uint64_t)clock.tv_nsec;
    if (now - path_checked >= PATH_CHECK_NS || now < path_checked) {
        struct statx named;
        if (statx(AT_FDCWD, path_text, 0, STATX_INO, &named) != 0 ||
            (named.stx_mask & STATX_INO) == 0 || named.stx_ino != ino)
            goto fallback; /* renamed or removed by something else: the general path sees it */
        path_checked = now; /* stored with the rest, once the line is in */
    }
    if (now < last_ns) /* ts never goes back in seq order, even if the clock does */
        now = last_ns;
    if (now >= (uint64_t)TS_END_NS)
        goto fallback; /* past the last ts the format allows: the general path refuses */
    if (seal_interval > 0 &&
        (seal_seq == 0 || (unsealed_ns != 0 && now - unsealed_ns >= (uint64_t)seal_interval)))
        goto fallback; /* a seal is due first: the Python path writes it */

    char id_text[ID_LEN], ts_text[TS_LEN], seq_text[20];
    if (!format_id(id_text, now / 1000000) || !format_ts(ts_text, now))
        goto fallback;
    int seq_digits = 1;
    for (uint64_t rest = seq; rest >= 10; rest /= 10)
        seq_digits++;
    put_digits(seq_text, seq, seq_digits);

    size_t head_len = 13 + ID_LEN + 8 + (size_t)seq_digits + 7 + TS_LEN + 2;
    char *line = buffer + HEAD_ROOM - head_len;
    char *out = put_str(line, "{\"v\":1,\"id\":\"");
    memcpy(out, id_text, ID_LEN);
    out = put_str(out + ID_LEN, "\",\"seq\":");
    memcpy(out, seq_text, (size_t)seq_digits);
    out = put_str(out + seq_digits, ",\"ts\":\"");
    memcpy(out, ts_text, TS_LEN);
    put_str(out + TS_LEN, "\",");
    size_t length = head_len + rest_len;
    if ((long long)length > max_line_bytes || (size > 0 && size + length > (uint64_t)max_bytes) ||
        size + length > (uint64_t)file_size_limit)
        goto fallback; /* too long, rotation due, or past RLIMIT_FSIZE: the general path */
    /* TREK_BENCH_NO_CHAIN is for benchmarks/writer.py alone, which builds a copy with it (never
     * installed) to measure what the hash costs: the state's chain is then left as it is. */
#ifndef TREK_BENCH_NO_CHAIN
    if (!advance_chain(state + STATE_OFF_CHAIN, line, length))
        goto fallback; /* only the local copy of the state has changed */
#else
    (void)advance_chain;
#endif

    /* Made before the write, so nothing can fail after it. */
    result = stamped(id_text, seq, ts_text);
    if (result == NULL)
        goto done; /* MemoryError; nothing written */

    ssize_t written;
    Py_BEGIN_ALLOW_THREADS
    written = write(log_fd, line, length);
    Py_END_ALLOW_THREADS
    if (written != (ssize_t)length) {
        /* Should the truncation fail, the partial line stays; the state then no longer
         * matches trek.log, so the general path resyncs and starts on a new line. */
        if (written > 0 && ftruncate(log_fd, (off_t)size) != 0)
            errno = 0;
        Py_CLEAR(result);
        goto fallback;
    }
    store_le(state + STATE_OFF_SEQ, seq, 8);
    store_le(state + STATE_OFF_SIZE, size + length, 8);
    store_le(state + STATE_OFF_LAST_NS, now, 8);
    store_le(state + STATE_OFF_PATH_CHECKED_NS, path_checked, 8);
    store_le(state + STATE_OFF_UNSEALED_NS, unsealed_ns != 0 ? unsealed_ns : now, 8);
    /* A state not stored (a full disk after an outside truncation) names the old size of
     * trek.log, so the next append resyncs: the line is in either way. */
    if (pwrite(lock_fd, state, STATE_SIZE, 0) != STATE_SIZE)
        errno = 0;
    goto done;

fallback:
    result = Py_NewRef(Py_None);
done:
    if (locked)
        flock(lock_fd, LOCK_UN);
    if (buffer != stack_line)
        PyMem_Free(buffer);
    return result;
}

/* -- the common case of the argument checks ------------------------------------------------- */

#define MAX_DEPTH 64 /* deeper details go to the Python check */

static int is_json_value(PyObject *value, int depth);

/* PyDict_Next and PyList_GET_ITEM lend their references. That is safe here because nothing in
 * these two functions runs Python code: they look into exact str, int, float, dict and list
 * objects only (no __eq__, __hash__ or __index__ is called), so no container can change while
 * its items are in hand. */
static int
is_json_object(PyObject *dict, int depth)
{
    PyObject *key, *value;
    Py_ssize_t position = 0;
    if (depth > MAX_DEPTH)
        return 0;
    while (PyDict_Next(dict, &position, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !is_json_value(value, depth))
            return 0;
    }
    return 1;
}

/* Exactly the values line.check_details accepts without a word: str, None, bool, int in the
 * 64-bit range, finite float, and dicts (str keys) and lists of these. */
static int
is_json_value(PyObject *value, int depth)
{
    if (PyUnicode_CheckExact(value) || value == Py_None || PyBool_Check(value))
        return 1;
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return overflow == 0;
    }
    if (PyFloat_CheckExact(value))
        return isfinite(PyFloat_AS_DOUBLE(value));
    if (PyDict_CheckExact(value))
        return is_json_object(value, depth + 1);
    if (PyList_CheckExact(value)) {
        if (depth + 1 > MAX_DEPTH)
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (!is_json_value(PyList_GET_ITEM(value, i), depth + 1))
                return 0;
        }
        return 1;
    }
    return 0;
}

static PyObject *
plain_details(PyObject *module, PyObject *details)
{
    (void)module;
    return PyBool_FromLong(PyDict_CheckExact(details) && is_json_object(details, 0));
}

/* Which of id, username, email an exact str key is (0, 1, 2), or -1. Runs no Python code. */
static int
user_key_slot(PyObject *key)
{
    if (!PyUnicode_CheckExact(key))
        return -1;
    if (key == key_id || PyUnicode_CompareWithASCIIString(key, "id") == 0)
        return 0;
    if (key == key_username || PyUnicode_CompareWithASCIIString(key, "username") == 0)
        return 1;
    if (key == key_email || PyUnicode_CompareWithASCIIString(key, "email") == 0)
        return 2;
    return -1;
}

/* A copy of user in canonical form (id, username, email in that order) when it is a plain dict
 * whose keys are exact strs among those three, with a 64-bit int or None and strs or None; None
 * when line.check_user must look.
 *
 * A value borrowed from a dict lives only as long as the dict holds it, and looking a key up
 * compares keys, which for a key of a str subclass (or any object whose hash collides) runs its
 * __eq__, which can replace or delete a value already looked up. So the dict is walked once
 * (PyDict_Next runs no Python code), any key but an exact str leaves the check to Python, keys
 * are compared as strs, and each value is held with a reference of its own until the end. */
static PyObject *
canonical_user(PyObject *module, PyObject *user)
{
    (void)module;
    if (!PyDict_CheckExact(user) || PyDict_GET_SIZE(user) > 3)
        Py_RETURN_NONE;
    PyObject *values[3] = {NULL, NULL, NULL}; /* id, username, email: owned */
    PyObject *key, *value, *copy = NULL;
    Py_ssize_t position = 0;
    int plain = 1;
    while (plain && PyDict_Next(user, &position, &key, &value)) {
        int slot = user_key_slot(key);
        if (slot < 0 || values[slot] != NULL) {
            plain = 0; /* an unknown key, or one that is not an exact str */
            break;
        }
        values[slot] = Py_NewRef(value);
    }
    for (int slot = 0; plain && slot < 3; slot++) {
        if (values[slot] == NULL)
            values[slot] = Py_NewRef(Py_None);
    }
    if (plain && values[0] != Py_None) {
        int overflow = 0;
        if (!PyLong_CheckExact(values[0]) ||
            (PyLong_AsLongLongAndOverflow(values[0], &overflow) == -1 && PyErr_Occurred()) ||
            overflow != 0)
            plain = 0;
    }
    for (int slot = 1; plain && slot < 3; slot++) {
        if (values[slot] != Py_None && !PyUnicode_CheckExact(values[slot]))
            plain = 0;
    }
    if (PyErr_Occurred())
        goto done;
    if (!plain) {
        copy = Py_NewRef(Py_None);
        goto done;
    }
    copy = PyDict_New();
    if (copy == NULL)
        goto done;
    if (PyDict_SetItem(copy, key_id, values[0]) < 0 ||
        PyDict_SetItem(copy, key_username, values[1]) < 0 ||
        PyDict_SetItem(copy, key_email, values[2]) < 0)
        Py_CLEAR(copy);
done:
    for (int slot = 0; slot < 3; slot++)
        Py_XDECREF(values[slot]);
    return copy;
}

static PyMethodDef methods[] = {
    {"append", (PyCFunction)(void (*)(void))fast_append, METH_FASTCALL,
     "append(lock_fd, log_fd, log_ino, path, body, max_bytes, max_line_bytes, file_size_limit, "
     "seal_interval_ns) -> (id, seq, ts) | None\n\nAppend one event line in the common case, "
     "moving the hash chain on, and return the id, seq and ts it was written with; None means "
     "nothing was done and the general path must handle this event (a seal due included)."},
    {"plain_details", plain_details, METH_O,
     "plain_details(details) -> bool\n\nTrue if details is a dict that line.check_details "
     "accepts as it is; False when that check must look (and maybe raise)."},
    {"canonical_user", canonical_user, METH_O,
     "canonical_user(user) -> dict | None\n\nThe user in canonical form when it is plainly "
     "valid; None when line.check_user must look (and maybe raise)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "trek_audit.writer._fastappend",
    "The common case of the writer's append in C (see writer/appender.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastappend(void)
{
    key_id = PyUnicode_InternFromString("id");
    key_username = PyUnicode_InternFromString("username");
    key_email = PyUnicode_InternFromString("email");
    if (key_id == NULL || key_username == NULL || key_email == NULL)
        return NULL;
    if (chain_md == NULL)
        chain_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (chain_ctx == NULL)
        chain_ctx = EVP_MD_CTX_new();
    if (chain_md == NULL || chain_ctx == NULL) {
        PyErr_SetString(PyExc_ImportError, "libcrypto has no SHA-256 for the hash chain");
        return NULL;
    }
    if (pthread_atfork(NULL, NULL, forget_pool) != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    /* What it was compiled with, for a test to hold against writer/line.py. */
    PyObject *seq_max = PyLong_FromUnsignedLongLong(SEQ_MAX);
    PyObject *ts_end_ns = PyLong_FromUnsignedLongLong(TS_END_NS);
    int added = PyModule_AddStringConstant(module, "PLACEHOLDER", PLACEHOLDER) == 0 &&
                PyModule_AddObjectRef(module, "SEQ_MAX", seq_max) == 0 &&
                PyModule_AddObjectRef(module, "TS_END_NS", ts_end_ns) == 0;
    Py_XDECREF(seq_max);
    Py_XDECREF(ts_end_ns);
    if (!added) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
