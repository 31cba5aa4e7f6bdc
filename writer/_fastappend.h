/* What writer/_fastappend.c shares with the Python writer: the layout of the shared state page
 * (writer/state.py), the ranges of seq and ts and the bytes of the line it writes
 * (writer/line.py).
 *
 * tests/writer/test_writer_c_contract.py reads every #define here and compares it with the
 * Python side, so the two cannot drift apart; keep one value per line, as a plain number or a
 * string literal.
 */
#ifndef TREK_AUDIT_FASTAPPEND_H
#define TREK_AUDIT_FASTAPPEND_H

/* The state page, little-endian: magic, version, the last seq, trek.log's inode, its expected
 * size, the last ts in ns, when the C path last looked trek.log up by name (in ns), the chain
 * head after the last line, the seq and epoch of the last seal, the ts in ns of the oldest line
 * after it (0: none), the chain head after the last seal line and the last seal's key_id. */
#define STATE_MAGIC "TRKA"
#define STATE_MAGIC_LEN 4
#define STATE_VERSION 2
#define STATE_OFF_MAGIC 0
#define STATE_OFF_VERSION 4
#define STATE_OFF_SEQ 8
#define STATE_OFF_INO 16
#define STATE_OFF_SIZE 24
#define STATE_OFF_LAST_NS 32
#define STATE_OFF_PATH_CHECKED_NS 40
#define STATE_OFF_CHAIN 48
#define STATE_OFF_SEAL_SEQ 80
#define STATE_OFF_SEAL_EPOCH 88
#define STATE_OFF_UNSEALED_NS 96
#define STATE_OFF_SEAL_HEAD 104
#define STATE_OFF_SEAL_KEY_ID 136
#define STATE_SIZE 144

/* The chain (writer/chain.py): a SHA-256 head, 32 bytes. */
#define CHAIN_BYTES 32

/* The line format's ranges (writer/line.py): the largest seq, so that it fits a signed 64-bit
 * integer, and the first ns since the epoch past the last ts allowed (2262-01-01T00:00:00Z). */
#define SEQ_MAX 9223372036854775807
#define TS_END_NS 9214646400000000000

/* An event serialised by orjson with the placeholders id "", seq 0, ts "" starts so. */
#define PLACEHOLDER "{\"v\":1,\"id\":\"\",\"seq\":0,\"ts\":\"\","

/* The characters orjson leaves raw that some readers take for line breaks, and their escapes. */
#define LINE_BREAKER_U2028 "\xe2\x80\xa8"
#define LINE_BREAKER_U2028_ESCAPED "\\u2028"
#define LINE_BREAKER_U2029 "\xe2\x80\xa9"
#define LINE_BREAKER_U2029_ESCAPED "\\u2029"
#define LINE_BREAKER_U0085 "\xc2\x85"
#define LINE_BREAKER_U0085_ESCAPED "\\u0085"

#endif
