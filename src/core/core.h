/*
 * core.h: the core layer, shared by every other module (library-internal).
 *
 * core depends on libc, pthreads, jansson and OpenSSL only. It provides:
 * assertions, the allocator (with failure injection for tests), checked size
 * math, arenas, capped growable buffers, logging, UUIDs, base64, JSON helpers,
 * time and CPU feature detection.
 *
 * Threading: everything here is safe to call from any thread. The allocator's
 * failure injection and counters are process-wide atomics; the logger's level
 * and format are set once at start-up.
 */
#ifndef FL_CORE_H
#define FL_CORE_H

#include "facelink.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ============================== Assertions ============================== */

/* Always on, also in release builds. For invariants we own, never for bytes
 * that came from outside (those get a status code). Logs file:line, aborts. */
#define FL_ASSERT(x)                                                           \
    do {                                                                       \
        if (!(x))                                                              \
            fl__assert_fail(#x, __FILE__, __LINE__);                           \
    } while (0)
_Noreturn void fl__assert_fail(const char *expr, const char *file, int line);

#define FL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ============================== Allocation ============================== */

/* All heap goes through these (checksrc.sh rejects raw malloc outside
 * alloc.c). fl_malloc(0) returns a unique non-NULL pointer. fl_free(NULL) is a
 * no-op. On failure they return NULL; library code turns that into
 * FL_ERR_NOMEM, never an abort. */
void *fl_malloc(size_t size);
void *fl_calloc(size_t n, size_t size);
void *fl_realloc(void *p, size_t size);
void fl_free(void *p);
char *fl_strdup(const char *s);
char *fl_strndup(const char *s, size_t n);
/* Aligned allocation (align a power of two >= sizeof(void *)); free with
 * fl_free_aligned(). */
void *fl_malloc_aligned(size_t size, size_t align);
void fl_free_aligned(void *p);
/* Ask the kernel to back [p, p + size) with transparent huge pages when it
 * can (Linux MADV_HUGEPAGE on the whole 4 KiB pages inside the range; a
 * no-op elsewhere or on failure). Only 2 MiB-aligned stretches of the range
 * can get them, so give it 2 MiB-aligned blocks of whole 2 MiB. For memory
 * read at random, like the index's rows: with 4 KiB pages nearly every
 * access there is a TLB miss as well as a cache miss. */
void fl_advise_huge(void *p, size_t size);

/* Failure injection for allocation-torture tests: make the n-th allocation
 * from now fail (n >= 1), or never (n == 0). fl_test_injected() tells how many
 * failures were injected since the last fl_test_fail_alloc_at() call. */
void fl_test_fail_alloc_at(long n);
long fl_test_injected(void);
/* Number of live allocations made through fl_malloc & co (leak checks). */
long fl_alloc_live(void);

/* Checked size math: return false (and leave *out alone) on overflow. */
static inline bool fl_size_mul(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}
static inline bool fl_size_add(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* ================================ Arenas ================================ */

/* A bump allocator over a chain of chunks, for request- and inference-scoped
 * memory. cap bounds the total bytes handed out (0 = unlimited). reset keeps
 * the first (largest) chunk, so after warm-up a reset arena does not call
 * malloc again. Not thread-safe: one arena per thread. */
struct fl_arena_chunk;
struct fl_arena {
    struct fl_arena_chunk *head; /* owned */
    size_t used;                 /* bytes handed out since init/reset */
    size_t cap;                  /* 0 = unlimited */
};
void fl_arena_init(struct fl_arena *a, size_t cap);
/* NULL when the cap would be exceeded or memory is out. align is a power of 2. */
void *fl_arena_alloc(struct fl_arena *a, size_t size, size_t align);
void fl_arena_reset(struct fl_arena *a);
void fl_arena_fini(struct fl_arena *a);
#define FL_ARENA_NEW(a, type, n) ((type *)fl_arena_alloc((a), sizeof(type) * (n), alignof(type)))

/* ========================= Capped growable buffer ========================= */

/* curl's dynbuf: a byte buffer that grows up to toobig bytes. A failed append
 * frees the buffer and returns FL_ERR_NOMEM or FL_ERR_LIMIT. The content is
 * always NUL-terminated (the NUL is not counted in len). */
struct fl_buf {
    char *data;    /* owned; NULL while empty */
    size_t len;    /* bytes used, excluding the trailing NUL */
    size_t alloc;  /* bytes allocated */
    size_t toobig; /* max len + 1 */
};
void fl_buf_init(struct fl_buf *b, size_t toobig);
enum fl_status fl_buf_append(struct fl_buf *b, const void *p, size_t n, struct fl_err *err);
enum fl_status fl_buf_printf(struct fl_buf *b, struct fl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hand the data to the caller (fl_free it); the buffer becomes empty. */
char *fl_buf_take(struct fl_buf *b, size_t *out_len);
void fl_buf_reset(struct fl_buf *b);
void fl_buf_fini(struct fl_buf *b);

/* ================================ Logging ================================ */

enum fl_log_level { FL_LOG_DEBUG = 0, FL_LOG_INFO = 1, FL_LOG_WARN = 2, FL_LOG_ERROR = 3, FL_LOG_OFF = 4 };
/* Set once at start-up: minimum level, and JSON lines (true) or plain text. */
void fl_log_setup(enum fl_log_level level, bool json_lines);
/* Parse "debug|info|warn|error|off"; false if unknown. */
bool fl_log_level_parse(const char *s, enum fl_log_level *out);
void fl_log(enum fl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define FL_LOG_D(...) fl_log(FL_LOG_DEBUG, __VA_ARGS__)
#define FL_LOG_I(...) fl_log(FL_LOG_INFO, __VA_ARGS__)
#define FL_LOG_W(...) fl_log(FL_LOG_WARN, __VA_ARGS__)
#define FL_LOG_E(...) fl_log(FL_LOG_ERROR, __VA_ARGS__)

/* ================================= UUIDs ================================= */

#define FL_UUID_STR_LEN 36 /* without the NUL */
/* Random (version 4) UUID, lowercase text into out[37]. */
enum fl_status fl_uuid_v4(char out[FL_UUID_STR_LEN + 1], struct fl_err *err);
/* Name-based (version 5, SHA-1) UUID of namespace ns (text UUID) and name
 * bytes, lowercase text into out[37]. Same input, same UUID. */
enum fl_status fl_uuid_v5(const char *ns, const void *name, size_t name_len,
                          char out[FL_UUID_STR_LEN + 1], struct fl_err *err);
/* True if s is a lowercase canonical UUID (Rekognition's FaceId pattern). */
bool fl_uuid_valid(const char *s);

/* ================================ Base64 ================================ */

/* Standard alphabet with padding. encoded length = 4*ceil(n/3). */
size_t fl_base64_encoded_len(size_t n);
/* Encode n bytes into out (room for fl_base64_encoded_len(n)+1); NUL-terminates. */
void fl_base64_encode(const void *in, size_t n, char *out);
/* Decode; out must hold 3*(len/4) bytes. Rejects bad characters, bad padding
 * and lengths not a multiple of 4 with FL_ERR_INVALID_ARG. */
enum fl_status fl_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len,
                                struct fl_err *err);
/* Upper bound of the decoded size for an encoded length. */
size_t fl_base64_decoded_max(size_t len);

/* ============================== SHA-256 / HMAC ============================== */

void fl_sha256(const void *p, size_t n, uint8_t out[32]);
void fl_sha256_hex(const void *p, size_t n, char out[65]);
void fl_hmac_sha256(const void *key, size_t key_len, const void *p, size_t n, uint8_t out[32]);
void fl_hex(const uint8_t *p, size_t n, char *out); /* out: 2n+1 chars */
int fl_hex_digit(char c); /* 0..15 for a hex digit of either case, else -1 */

/* ================================= Time ================================= */

/* Wall clock, seconds since the epoch with fraction. */
double fl_time_now(void);
/* Monotonic clock in nanoseconds, for timing. */
uint64_t fl_time_mono_ns(void);

/* ================================ CPU ================================ */

enum fl_isa { FL_ISA_SCALAR = 0, FL_ISA_AVX2 = 1, FL_ISA_AVX512 = 2 };
/* Best ISA this CPU supports, honouring FL_FORCE_ISA=scalar|avx2|avx512 in the
 * environment (it can only lower the choice). Computed once. */
enum fl_isa fl_cpu_isa(void);
const char *fl_isa_name(enum fl_isa isa);

/* ================================= RNG ================================= */

/* Small seedable PRNG (xoshiro256**), one per thread or per object. */
struct fl_rng {
    uint64_t s[4];
};
void fl_rng_seed(struct fl_rng *r, uint64_t seed);
uint64_t fl_rng_next(struct fl_rng *r);
/* Uniform in [0,1). */
double fl_rng_double(struct fl_rng *r);

/* ================================= Files ================================= */

/* Read a whole file into a fresh buffer (caller fl_free()s *out). Fails with
 * FL_ERR_LIMIT over max_bytes, FL_ERR_IO on read errors, FL_ERR_NOT_FOUND if
 * it does not exist. */
enum fl_status fl_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len,
                            struct fl_err *err);
/* Write a file atomically (temp file, fsync, rename). */
enum fl_status fl_file_write_atomic(const char *path, const void *p, size_t n, struct fl_err *err);

/* ================================= JSON ================================= */

#include <jansson.h>

/* Route jansson's allocations through fl_malloc (idempotent; fl_init calls it). */
void fl_json_setup(void);
/* Parse a JSON object from n bytes. Malformed input or a non-object gives
 * FL_ERR_SERIALIZATION with the position in the message. Caller json_decref()s. */
enum fl_status fl_json_parse_object(const char *p, size_t n, json_t **out, struct fl_err *err);
/* Serialise compactly (keys in insertion order) into a fresh NUL-terminated
 * string; caller fl_free()s it. */
enum fl_status fl_json_dump(const json_t *v, char **out, size_t *out_len, struct fl_err *err);
/* Number as a double whether JSON gave an integer or a real; false otherwise. */
bool fl_json_number(const json_t *v, double *out);

/* ================================= Init ================================= */

/* One-time process set-up (JSON allocator, CPU detection). Safe to call more
 * than once and from several threads. */
void fl_core_init(void);

#endif /* FL_CORE_H */
