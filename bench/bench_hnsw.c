/*
 * bench_hnsw.c: speed of src/index against the memory-bandwidth floor and,
 * through bench/faiss_peer.py on the same files, against FAISS. Not a test.
 *
 * Three commands, all single-threaded:
 *
 *   bench_hnsw gen DIR [N_FLAT] [N_HNSW]
 *     Writes the data sets once, fixed seeds, as .npy (float32, C order):
 *       flat_base.npy     N_FLAT x 128 uniform [0,1) (default 1,000,000)
 *       flat_queries.npy  50 x 128, same distribution
 *       hnsw_base.npy     N_HNSW x 128 Gaussian mixture (default 200,000):
 *                         100 centres N(0,1), spread 1 per axis, so clusters
 *                         overlap (face embeddings are clustered, not uniform)
 *       hnsw_queries.npy  1000 x 128 from the same mixture
 *       hnsw_gt.npy       1000 x 10 int64: exact top-10 row numbers (L2),
 *                         from our exact scan
 *     An existing file of the right size is kept.
 *
 *   bench_hnsw exact DIR [ROUNDS]
 *     Exact top-10 inner-product search (FL_INDEX_IP) of each flat query
 *     over flat_base, one query at a time, interleaved with the floor: the
 *     time to stream the same bytes once with a plain vectorised sum.
 *     Prints the medians and their ratio.
 *
 *   bench_hnsw hnsw DIR [M] [EF_CONSTRUCTION]
 *     Builds the graph over hnsw_base (L2, default M 16, efConstruction
 *     200; the index's own start-up path: fl_index_add_batch crossing the
 *     threshold), then sweeps efSearch: recall@10 against hnsw_gt and
 *     queries per second (1000 queries one at a time, median of 3 passes).
 *     Reports the smallest ef with recall@10 >= 0.99 and its QPS.
 *
 * Output lines starting with "RESULT " are key value pairs for scripts/bench.
 *
 * Build (from the repository root; scripts/bench does this):
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
 *      bench/bench_hnsw.c build/libfacelink.a $(pkg-config --libs jansson libcrypto) \
 *      -lm -lpthread -o build/bench_hnsw
 */
#include "bench_util.h"
#include "core/core.h"
#include "index/index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIM      128
#define NQ_FLAT  50
#define NQ_HNSW  1000
#define K        10
#define CLUSTERS 100

/* ================================ .npy files ================================ */

/* Write a 2-D C-order array as .npy version 1.0 (descr "<f4" or "<i8"). */
static int npy_write(const char *path, const char *descr, const void *data, size_t rows,
                     size_t cols, size_t elem)
{
    char hdr[128];
    int len =
        snprintf(hdr, sizeof(hdr), "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                 descr, rows, cols);
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned short hl = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t w = fwrite(data, elem, rows * cols, f);
    return fclose(f) == 0 && w == rows * cols ? 0 : -1;
}

/* Read a 2-D .npy we wrote with dtype descr ("<f4", "<i8"; elements of
 * `size` bytes) and `cols` columns into a fresh array: returns rows, or 0 on
 * any mismatch. */
static size_t npy_read(const char *path, const char *descr, size_t size, size_t cols, void **out)
{
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    char hdr[256], want[16];
    size_t rows = 0, c = 0, hl;
    *out = NULL;
    if (!f)
        return 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY\x01\x00", 8) != 0)
        goto out;
    hl = pre[8] | (size_t)pre[9] << 8;
    if (hl >= sizeof(hdr) || fread(hdr, 1, hl, f) != hl)
        goto out;
    hdr[hl] = 0;
    snprintf(want, sizeof(want), "'%s'", descr);
    if (!strstr(hdr, want) ||
        sscanf(strstr(hdr, "'shape': (") + 10, "%zu, %zu", &rows, &c) != 2 || c != cols) {
        rows = 0;
        goto out;
    }
    *out = fl_malloc(rows * cols * size);
    if (!*out || fread(*out, size, rows * cols, f) != rows * cols) {
        fl_free(*out);
        *out = NULL;
        rows = 0;
    }
out:
    fclose(f);
    return rows;
}

static size_t npy_read_f32(const char *path, size_t cols, float **out)
{
    void *p;
    size_t rows = npy_read(path, "<f4", sizeof(float), cols, &p);
    *out = p;
    return rows;
}

static size_t npy_read_i64(const char *path, size_t cols, int64_t **out)
{
    void *p;
    size_t rows = npy_read(path, "<i8", sizeof(int64_t), cols, &p);
    *out = p;
    return rows;
}

/* ================================ Helpers ================================ */

static double gauss(struct fl_rng *r)
{
    double u = fl_rng_double(r), v = fl_rng_double(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_s(void)
{
    return (double)fl_time_mono_ns() * 1e-9;
}

static void path_of(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static bool file_has(const char *path, size_t bytes_at_least)
{
    struct stat st;
    return stat(path, &st) == 0 && (size_t)st.st_size >= bytes_at_least;
}

/* Fill an index from rows (ids = row numbers), in batches as at start-up. */
static struct fl_index *load_index(const float *rows, size_t n, enum fl_index_metric metric,
                                   const struct fl_index_hnsw_params *hp, double *build_s)
{
    struct fl_err err = {0};
    struct fl_index *ix = fl_index_new(DIM, metric, &err);
    uint64_t *ids = fl_malloc(n * sizeof(uint64_t));
    if (!ix || !ids) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (hp && fl_index_set_hnsw(ix, hp, &err) != FL_OK) {
        fprintf(stderr, "set_hnsw: %s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = i;
    double t0 = now_s();
    if (fl_index_add_batch(ix, ids, rows, n, &err) != FL_OK) {
        fprintf(stderr, "add_batch: %s\n", err.msg);
        exit(1);
    }
    *build_s = now_s() - t0;
    fl_free(ids);
    return ix;
}

/* ================================== gen ================================== */

static int cmd_gen(const char *dir, size_t n_flat, size_t n_hnsw)
{
    char p[1024];
    struct fl_rng r;
    float *a;
    mkdir(dir, 0755);

    path_of(p, sizeof(p), dir, "flat_base.npy");
    if (!file_has(p, n_flat * DIM * 4)) {
        fl_rng_seed(&r, 42);
        a = fl_malloc(n_flat * DIM * sizeof(float));
        for (size_t i = 0; i < n_flat * DIM; i++)
            a[i] = (float)fl_rng_double(&r);
        if (npy_write(p, "<f4", a, n_flat, DIM, 4) != 0)
            return 1;
        fl_free(a);
        a = fl_malloc(NQ_FLAT * DIM * sizeof(float));
        for (size_t i = 0; i < NQ_FLAT * DIM; i++)
            a[i] = (float)fl_rng_double(&r);
        path_of(p, sizeof(p), dir, "flat_queries.npy");
        if (npy_write(p, "<f4", a, NQ_FLAT, DIM, 4) != 0)
            return 1;
        fl_free(a);
    }

    path_of(p, sizeof(p), dir, "hnsw_base.npy");
    if (!file_has(p, n_hnsw * DIM * 4)) {
        float *centres = fl_malloc(CLUSTERS * DIM * sizeof(float));
        float *q = fl_malloc(NQ_HNSW * DIM * sizeof(float));
        int64_t *gt = fl_malloc(NQ_HNSW * K * sizeof(int64_t));
        struct fl_index_hit hits[K];
        struct fl_index_search_opts exact = {.mode = FL_INDEX_SEARCH_EXACT};
        double unused;
        size_t nh;
        fl_rng_seed(&r, 4242);
        for (size_t i = 0; i < CLUSTERS * DIM; i++)
            centres[i] = (float)gauss(&r);
        a = fl_malloc(n_hnsw * DIM * sizeof(float));
        for (size_t i = 0; i < n_hnsw + NQ_HNSW; i++) {
            float *row = i < n_hnsw ? a + i * DIM : q + (i - n_hnsw) * DIM;
            const float *c = centres + (fl_rng_next(&r) % CLUSTERS) * DIM;
            for (size_t j = 0; j < DIM; j++)
                row[j] = c[j] + (float)gauss(&r);
        }
        if (npy_write(p, "<f4", a, n_hnsw, DIM, 4) != 0)
            return 1;
        path_of(p, sizeof(p), dir, "hnsw_queries.npy");
        if (npy_write(p, "<f4", q, NQ_HNSW, DIM, 4) != 0)
            return 1;
        struct fl_index_hnsw_params hp;
        fl_index_hnsw_defaults(&hp);
        hp.threshold = SIZE_MAX;
        struct fl_index *ix = load_index(a, n_hnsw, FL_INDEX_L2, &hp, &unused);
        for (size_t i = 0; i < NQ_HNSW; i++) {
            fl_index_search_opt(ix, q + i * DIM, K, INFINITY, NULL, &exact, hits, &nh, NULL);
            for (size_t j = 0; j < K; j++)
                gt[i * K + j] = j < nh ? (int64_t)hits[j].id : -1;
        }
        path_of(p, sizeof(p), dir, "hnsw_gt.npy");
        if (npy_write(p, "<i8", gt, NQ_HNSW, K, 8) != 0)
            return 1;
        fl_index_free(ix);
        fl_free(a);
        fl_free(q);
        fl_free(gt);
        fl_free(centres);
    }
    printf("data in %s\n", dir);
    return 0;
}

/* ================================= exact ================================= */

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* Sum of n floats (n % 32 == 0), four AVX2 accumulators: load-bound. */
__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

static float sum_stream(const float *p, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        return sum_avx2(p, n);
#endif
    float s[8] = {0};
    for (size_t i = 0; i < n; i += 8) {
        for (int l = 0; l < 8; l++)
            s[l] += p[i + (size_t)l];
    }
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static int cmd_exact(const char *dir, size_t rounds)
{
    char p[1024];
    float *base, *q;
    size_t n, nq;
    double build_s, sink = 0;
    path_of(p, sizeof(p), dir, "flat_base.npy");
    n = npy_read_f32(p, DIM, &base);
    path_of(p, sizeof(p), dir, "flat_queries.npy");
    nq = npy_read_f32(p, DIM, &q);
    if (!n || !nq) {
        fprintf(stderr, "run `bench_hnsw gen %s` first\n", dir);
        return 1;
    }
    struct fl_index_hnsw_params hp;
    fl_index_hnsw_defaults(&hp);
    hp.threshold = SIZE_MAX; /* exact scan only */
    struct fl_index *ix = load_index(base, n, FL_INDEX_IP, &hp, &build_s);
    fl_free(base);
    size_t floor_n = (n * DIM + 31) / 32 * 32;
    float *floor_buf = fl_malloc_aligned(floor_n * sizeof(float), 64);
    for (size_t i = 0; i < floor_n; i++)
        floor_buf[i] = (float)(i & 1023) * 1e-3f;
    size_t total = rounds * nq;
    double *ts = fl_malloc(total * sizeof(double)), *tf = fl_malloc(total * sizeof(double));
    struct fl_index_hit hits[K];
    size_t nh, m = 0;
    /* Warm-up, then interleave floor runs and searches. */
    sink += sum_stream(floor_buf, floor_n);
    fl_index_search(ix, q, K, INFINITY, NULL, hits, &nh, NULL);
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nq; i++, m++) {
            double a = now_s();
            sink += sum_stream(floor_buf, floor_n);
            double b = now_s();
            fl_index_search(ix, q + i * DIM, K, INFINITY, NULL, hits, &nh, NULL);
            double c = now_s();
            tf[m] = (b - a) * 1e3;
            ts[m] = (c - b) * 1e3;
            sink += hits[0].distance;
        }
    }
    double ms = median(ts, total), fms = median(tf, total);
    double mb = (double)n * DIM * 4 / 1e6;
    printf("exact: %zu x %d IP, k=%d, kernels %s, %zu queries x %zu rounds, 1 thread\n", n, DIM, K,
           fl_index_isa_name(), nq, rounds);
    printf("  search median %.2f ms (%.1f GB/s); floor median %.2f ms (%.1f GB/s); ratio %.3f\n",
           ms, mb / ms, fms, mb / fms, ms / fms);
    printf("RESULT ours_exact_ms %.4f\nRESULT floor_ms %.4f\n(checksum %g)\n", ms, fms, sink);
    fl_index_free(ix);
    fl_free_aligned(floor_buf);
    fl_free(ts);
    fl_free(tf);
    fl_free(q);
    return 0;
}

/* ================================== hnsw ================================== */

static int cmd_hnsw(const char *dir, unsigned m, unsigned efc)
{
    char p[1024];
    float *base, *q;
    int64_t *gt;
    size_t n, nq, ngt;
    double build_s;
    path_of(p, sizeof(p), dir, "hnsw_base.npy");
    n = npy_read_f32(p, DIM, &base);
    path_of(p, sizeof(p), dir, "hnsw_queries.npy");
    nq = npy_read_f32(p, DIM, &q);
    path_of(p, sizeof(p), dir, "hnsw_gt.npy");
    ngt = npy_read_i64(p, K, &gt);
    if (!n || !nq || ngt != nq) {
        fprintf(stderr, "run `bench_hnsw gen %s` first\n", dir);
        return 1;
    }
    struct fl_index_hnsw_params hp;
    fl_index_hnsw_defaults(&hp);
    hp.m = m;
    hp.ef_construction = efc;
    struct fl_index *ix = load_index(base, n, FL_INDEX_L2, &hp, &build_s);
    fl_free(base);
    if (!fl_index_has_graph(ix)) {
        fprintf(stderr, "no graph built\n");
        return 1;
    }
    printf("hnsw: %zu x %d L2 (Gaussian mixture), M %u, efConstruction %u, kernels %s, "
           "build %.2f s (1 thread)\n",
           n, DIM, m, efc, fl_index_isa_name(), build_s);
    printf("RESULT ours_build_s %.3f\n", build_s);
    static const size_t efs[] = {10,  16,  24,  32,  48,  64,  96,  128,
                                 160, 192, 256, 384, 512, 768, 1024};
    struct fl_index_hit hits[K];
    size_t nh;
    bool reported = false;
    for (size_t e = 0; e < FL_ARRAY_LEN(efs); e++) {
        struct fl_index_search_opts o = {.mode = FL_INDEX_SEARCH_APPROX, .ef = efs[e]};
        size_t hit = 0;
        double t[3];
        for (int pass = 0; pass < 3; pass++) {
            double t0 = now_s();
            for (size_t i = 0; i < nq; i++) {
                fl_index_search_opt(ix, q + i * DIM, K, INFINITY, NULL, &o, hits, &nh, NULL);
                if (pass == 0) {
                    for (size_t a = 0; a < nh; a++) {
                        for (size_t b = 0; b < K; b++)
                            hit += (int64_t)hits[a].id == gt[i * K + b];
                    }
                }
            }
            t[pass] = now_s() - t0;
        }
        double qps = (double)nq / median(t, 3);
        double rec = (double)hit / (double)(nq * K);
        printf("  ef %4zu: recall@10 %.4f, %.0f QPS\n", efs[e], rec, qps);
        if (!reported && rec >= 0.99) {
            printf("RESULT ours_ef %zu\nRESULT ours_recall %.4f\nRESULT ours_qps %.1f\n", efs[e],
                   rec, qps);
            reported = true;
            if (e + 1 < FL_ARRAY_LEN(efs) && efs[e] >= 64)
                break; /* one more point is enough past the target */
        }
    }
    fl_index_free(ix);
    fl_free(q);
    fl_free(gt);
    return reported ? 0 : 1;
}

int main(int argc, char **argv)
{
    fl_core_init();
    if (argc >= 3 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000,
                       argc > 4 ? strtoull(argv[4], NULL, 10) : 200000);
    if (argc >= 3 && strcmp(argv[1], "exact") == 0)
        return cmd_exact(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 1);
    if (argc >= 3 && strcmp(argv[1], "hnsw") == 0)
        return cmd_hnsw(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 16,
                        argc > 4 ? (unsigned)atoi(argv[4]) : 200);
    fprintf(stderr, "usage: bench_hnsw gen DIR [N_FLAT] [N_HNSW] | exact DIR [ROUNDS] | "
                    "hnsw DIR [M] [EF_CONSTRUCTION]\n");
    return 2;
}
