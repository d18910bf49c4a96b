/*
 * util.c: small services of the core layer: hashing (OpenSSL), clocks, CPU
 * feature detection, a seedable PRNG, whole-file I/O, and one-time init.
 *
 * CPU detection runs once (pthread_once) and honours FL_FORCE_ISA so tests
 * and benchmarks can pin a kernel; the choice can only be lowered, never
 * raised above what the CPU supports.
 */
#define _GNU_SOURCE
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ============================== Hashing ============================== */

int fl_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void fl_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void fl_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    FL_ASSERT(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1);
}

void fl_sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t md[32];
    fl_sha256(p, n, md);
    fl_hex(md, 32, out);
}

void fl_hmac_sha256(const void *key, size_t key_len, const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    FL_ASSERT(HMAC(EVP_sha256(), key, (int)key_len, p, n, out, &len) != NULL);
}

/* =============================== Time =============================== */

double fl_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t fl_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* =============================== CPU =============================== */

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static enum fl_isa isa_best;

static void isa_detect(void)
{
    enum fl_isa best = FL_ISA_SCALAR;
    const char *force = getenv("FL_FORCE_ISA");
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = FL_ISA_AVX2;
    if (best == FL_ISA_AVX2 && __builtin_cpu_supports("avx512f"))
        best = FL_ISA_AVX512;
#endif
    if (force) {
        enum fl_isa want = best;
        if (strcmp(force, "scalar") == 0)
            want = FL_ISA_SCALAR;
        else if (strcmp(force, "avx2") == 0)
            want = FL_ISA_AVX2;
        else if (strcmp(force, "avx512") == 0)
            want = FL_ISA_AVX512;
        if (want < best)
            best = want;
    }
    isa_best = best;
}

enum fl_isa fl_cpu_isa(void)
{
    pthread_once(&isa_once, isa_detect);
    return isa_best;
}

const char *fl_isa_name(enum fl_isa isa)
{
    switch (isa) {
    case FL_ISA_AVX2:
        return "avx2";
    case FL_ISA_AVX512:
        return "avx512";
    default:
        return "scalar";
    }
}

/* =============================== RNG =============================== */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void fl_rng_seed(struct fl_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t fl_rng_next(struct fl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double fl_rng_double(struct fl_rng *r)
{
    return (double)(fl_rng_next(r) >> 11) * 0x1.0p-53;
}

/* =============================== Files =============================== */

enum fl_status fl_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len,
                            struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    uint8_t *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        rc = fl_err_set(err, errno == ENOENT ? FL_ERR_NOT_FOUND : FL_ERR_IO, "cannot open %s: %s",
                        path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fl_err_set(err, FL_ERR_IO, "%s is not a readable regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        rc = fl_err_set(err, FL_ERR_LIMIT, "%s is %lld bytes, over the limit of %zu", path,
                        (long long)st.st_size, max_bytes);
        goto out;
    }
    buf = fl_malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory reading %s", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = fl_err_set(err, FL_ERR_IO, "read %s failed: %s", path,
                            n < 0 ? strerror(errno) : "short read");
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = 0;
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    fl_free(buf);
    close(fd);
    return rc;
}

enum fl_status fl_file_write_atomic(const char *path, const void *p, size_t n, struct fl_err *err)
{
    char tmp[4096];
    const uint8_t *q = p;
    size_t done = 0;
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "path too long: %s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fl_err_set(err, FL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    while (done < n) {
        ssize_t w = write(fd, q + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return fl_err_set(err, FL_ERR_IO, "write %s failed: %s", tmp, strerror(errno));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return fl_err_set(err, FL_ERR_IO, "cannot commit %s: %s", path, strerror(errno));
    }
    return FL_OK;
}

/* =============================== JSON =============================== */

static void *json_malloc(size_t n)
{
    return fl_malloc(n);
}

static void json_free(void *p)
{
    fl_free(p);
}

void fl_json_setup(void)
{
    json_set_alloc_funcs(json_malloc, json_free);
}

enum fl_status fl_json_parse_object(const char *p, size_t n, json_t **out, struct fl_err *err)
{
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return fl_err_set(err, FL_ERR_SERIALIZATION, "malformed JSON at line %d column %d: %s",
                          je.line, je.column, je.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return fl_err_set(err, FL_ERR_SERIALIZATION, "the request body must be a JSON object");
    }
    *out = v;
    return FL_OK;
}

enum fl_status fl_json_dump(const json_t *v, char **out, size_t *out_len, struct fl_err *err)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (!s)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory serialising JSON");
    *out = s;
    if (out_len)
        *out_len = strlen(s);
    return FL_OK;
}

bool fl_json_number(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    return false;
}

/* =============================== Init =============================== */

static pthread_once_t core_once = PTHREAD_ONCE_INIT;

static void core_init_once(void)
{
    fl_json_setup();
    (void)fl_cpu_isa();
}

void fl_core_init(void)
{
    pthread_once(&core_once, core_init_once);
}

void fl_init(void)
{
    fl_core_init();
}
