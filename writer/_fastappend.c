/* The common case of AuditWriter.record's append, in C: one call, four system calls.
 *
 * append(lock_fd, log_fd, log_ino, state, path, event, body, max_bytes, max_line_bytes,
 *        file_size_limit) -> int
 *
 * ``body`` is orjson's serialisation of ``event`` with the placeholders id "", seq 0, ts "".
 * Under flock(lock_fd) this reads the shared state page ``state`` (magic, version, last seq,
 * trek.log's inode, its expected size, last ts in ns: the layout is in _fastappend.h), checks
 * with statx that trek.log (``log_fd``) is the file the state describes, takes the next seq and
 * the time (never before the last one), makes the UUIDv7 id and the ts, writes the line (body
 * with the real id, seq and ts, U+2028, U+2029 and U+0085 escaped) in one write() and stores the
 * new state. It then fills in event["id"], event["seq"], event["ts"] and returns the seq.
 *
 * The statx asks for the inode, link count and size only. Asking for times (as fstat does) makes
 * a kernel with multigrain timestamps (Linux 6.13+) give the next write a fine-grained mtime,
 * which dirties the inode on every append and about doubles the cost of the write. Looking up
 * ``path`` (to notice an outside rename of trek.log) costs as much as the write, so it is done
 * at most once a second: the time of the last look-up is kept in the state page
 * (STATE_OFF_PATH_CHECKED_NS), shared by all writers of the directory.
 *
 * It returns 0, with the files, the state and the event untouched and the lock released, for
 * everything else: a state that does not match trek.log, an unlinked trek.log, a rotation due, a
 * line too long, a file-size limit in the way, a failed or short write (whatever got in is
 * truncated away first), a failed system call. The caller then takes its general path, which
 * handles and reports each of these. The GIL is released only while waiting for the lock and
 * during write(), so the random pool below needs no lock of its own; the state page is not
 * exported as a buffer during either (see below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static PyObject *key_id, *key_seq, *key_ts, *key_username, *key_email;

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

static uint64_t
load_u64(const unsigned char *p)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

static void
store_u64(unsigned char *p, uint64_t value)
{
    for (int i = 0; i < 8; i++, value >>= 8)
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

static int
as_int64(PyObject *object, long long *value)
{
    *value = PyLong_AsLongLong(object);
    return !(*value == -1 && PyErr_Occurred());
}

static PyObject *
fast_append(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long lock_fd, log_fd, max_bytes, max_line_bytes, file_size_limit;
    unsigned long long log_ino;
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "append() takes 10 positional arguments");
        return NULL;
    }
    PyObject *path = args[4], *event = args[5], *body = args[6];
    if (!as_int64(args[0], &lock_fd) || !as_int64(args[1], &log_fd) ||
        !as_int64(args[7], &max_bytes) || !as_int64(args[8], &max_line_bytes) ||
        !as_int64(args[9], &file_size_limit))
        return NULL;
    if (!PyBytes_CheckExact(path) || !PyDict_CheckExact(event) || !PyBytes_CheckExact(body)) {
        PyErr_SetString(PyExc_TypeError, "append() needs the path as bytes, the event dict and "
                                         "its bytes");
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
    if (lock_fd < 0 || log_fd < 0 || args[3] == Py_None || (long long)tail_len > max_line_bytes)
        return PyLong_FromLong(0);
    log_ino = PyLong_AsUnsignedLongLong(args[2]);
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
    PyObject *result = NULL, *id = NULL, *ts = NULL, *seq_object = NULL;
    int locked = 0, viewing = 0;
    /* The state page is exported only while the GIL is held: a child forked while this thread
     * waits for the lock or writes must be able to close its copy of the mapping (and with it
     * a descriptor of the lock file, which would otherwise keep this process's flock alive). */
    Py_buffer view;
    unsigned char *state;

    int lock_status = flock((int)lock_fd, LOCK_EX | LOCK_NB);
    if (lock_status != 0 && errno == EWOULDBLOCK) {
        Py_BEGIN_ALLOW_THREADS
        lock_status = flock((int)lock_fd, LOCK_EX);
        Py_END_ALLOW_THREADS
    }
    if (lock_status != 0)
        goto fallback; /* EINTR, ENOLCK...: the general path retries or reports it */
    locked = 1;
    if (PyObject_GetBuffer(args[3], &view, PyBUF_WRITABLE) < 0)
        goto done;
    viewing = 1;
    if (view.len < STATE_SIZE) {
        PyErr_SetString(PyExc_ValueError, "append() needs the state page");
        goto done;
    }
    state = view.buf;

    uint64_t seq = load_u64(state + STATE_OFF_SEQ), ino = load_u64(state + STATE_OFF_INO);
    uint64_t size = load_u64(state + STATE_OFF_SIZE), last_ns = load_u64(state + STATE_OFF_LAST_NS);
    struct statx st;
    if (memcmp(state + STATE_OFF_MAGIC, STATE_MAGIC, STATE_MAGIC_LEN) != 0 || ino != log_ino ||
        statx((int)log_fd, "", AT_EMPTY_PATH, STATX_WANTED, &st) != 0 ||
        (st.stx_mask & STATX_WANTED) != STATX_WANTED || st.stx_nlink == 0 || st.stx_ino != ino ||
        st.stx_size != size)
        goto fallback; /* first use, another process rotated, an outside change: resync */
    seq += 1;

    struct timespec clock;
    if (clock_gettime(CLOCK_REALTIME, &clock) != 0 || clock.tv_sec < 0)
        goto fallback;
    uint64_t now = (uint64_t)clock.tv_sec * NS_PER_S + (uint64_t)clock.tv_nsec;
    uint64_t path_checked = load_u64(state + STATE_OFF_PATH_CHECKED_NS);
    if (now - path_checked >= PATH_CHECK_NS || now < path_checked) {
        struct statx named;
        if (statx(AT_FDCWD, PyBytes_AS_STRING(path), 0, STATX_INO, &named) != 0 ||
            (named.stx_mask & STATX_INO) == 0 || named.stx_ino != ino)
            goto fallback; /* renamed or removed by something else: the general path sees it */
        store_u64(state + STATE_OFF_PATH_CHECKED_NS, now);
    }
    if (now < last_ns) /* ts never goes back in seq order, even if the clock does */
        now = last_ns;

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

    /* Made before the write, so nothing can fail after it. */
    id = PyUnicode_FromStringAndSize(id_text, ID_LEN);
    ts = PyUnicode_FromStringAndSize(ts_text, TS_LEN);
    seq_object = PyLong_FromUnsignedLongLong(seq);
    if (id == NULL || ts == NULL || seq_object == NULL)
        goto done; /* MemoryError; nothing written */

    ssize_t written;
    PyBuffer_Release(&view);
    viewing = 0;
    Py_BEGIN_ALLOW_THREADS
    written = write((int)log_fd, line, length);
    Py_END_ALLOW_THREADS
    if (written != (ssize_t)length) {
        /* Should the truncation fail, the partial line stays; the state then no longer
         * matches trek.log, so the general path resyncs and starts on a new line. */
        if (written > 0 && ftruncate((int)log_fd, (off_t)size) != 0)
            errno = 0;
        goto fallback;
    }
    /* The mapping cannot have gone meanwhile: closing it takes the writer's thread lock, which
     * the caller holds. */
    if (PyObject_GetBuffer(args[3], &view, PyBUF_WRITABLE) < 0)
        goto done;
    viewing = 1;
    state = view.buf;
    store_u64(state + STATE_OFF_SEQ, seq);
    store_u64(state + STATE_OFF_SIZE, size + length);
    store_u64(state + STATE_OFF_LAST_NS, now);
    flock((int)lock_fd, LOCK_UN);
    locked = 0;
    if (PyDict_SetItem(event, key_id, id) == 0 && PyDict_SetItem(event, key_seq, seq_object) == 0 &&
        PyDict_SetItem(event, key_ts, ts) == 0) {
        result = seq_object;
        seq_object = NULL;
    }
    goto done;

fallback:
    result = PyLong_FromLong(0);
done:
    if (locked)
        flock((int)lock_fd, LOCK_UN);
    Py_XDECREF(id);
    Py_XDECREF(ts);
    Py_XDECREF(seq_object);
    if (buffer != stack_line)
        PyMem_Free(buffer);
    if (viewing)
        PyBuffer_Release(&view);
    return result;
}

/* -- the common case of the argument checks ------------------------------------------------- */

#define MAX_DEPTH 64 /* deeper details go to the Python check */

static int is_json_value(PyObject *value, int depth);

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

/* A copy of user in canonical form (id, username, email in that order) when it is a plain dict
 * of those keys with a 64-bit int or None and strs or None; None when line.check_user must look. */
static PyObject *
canonical_user(PyObject *module, PyObject *user)
{
    (void)module;
    if (!PyDict_CheckExact(user) || PyDict_GET_SIZE(user) > 3)
        Py_RETURN_NONE;
    PyObject *id = PyDict_GetItemWithError(user, key_id);
    PyObject *username = id == NULL && PyErr_Occurred() ? NULL
                                                        : PyDict_GetItemWithError(user, key_username);
    PyObject *email = username == NULL && PyErr_Occurred() ? NULL
                                                           : PyDict_GetItemWithError(user, key_email);
    if (PyErr_Occurred())
        return NULL;
    if ((id != NULL) + (username != NULL) + (email != NULL) != PyDict_GET_SIZE(user))
        Py_RETURN_NONE; /* an unknown key */
    if (id == NULL)
        id = Py_None;
    if (username == NULL)
        username = Py_None;
    if (email == NULL)
        email = Py_None;
    if (id != Py_None) {
        int overflow;
        if (!PyLong_CheckExact(id))
            Py_RETURN_NONE;
        long long number = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (number == -1 && PyErr_Occurred())
            return NULL;
        if (overflow != 0)
            Py_RETURN_NONE;
    }
    if ((username != Py_None && !PyUnicode_CheckExact(username)) ||
        (email != Py_None && !PyUnicode_CheckExact(email)))
        Py_RETURN_NONE;
    PyObject *copy = PyDict_New();
    if (copy == NULL)
        return NULL;
    if (PyDict_SetItem(copy, key_id, id) < 0 || PyDict_SetItem(copy, key_username, username) < 0 ||
        PyDict_SetItem(copy, key_email, email) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    return copy;
}

static PyMethodDef methods[] = {
    {"append", (PyCFunction)(void (*)(void))fast_append, METH_FASTCALL,
     "append(lock_fd, log_fd, log_ino, state, path, event, body, max_bytes, max_line_bytes, "
     "file_size_limit) -> int\n\nAppend one event line in the common case and return its seq; "
     "0 means nothing was done and the general path must handle this event."},
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
    key_seq = PyUnicode_InternFromString("seq");
    key_ts = PyUnicode_InternFromString("ts");
    key_username = PyUnicode_InternFromString("username");
    key_email = PyUnicode_InternFromString("email");
    if (key_id == NULL || key_seq == NULL || key_ts == NULL || key_username == NULL ||
        key_email == NULL)
        return NULL;
    if (pthread_atfork(NULL, NULL, forget_pool) != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddStringConstant(module, "PLACEHOLDER", PLACEHOLDER) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
