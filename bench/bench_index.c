/*
 * bench_index.c: exact search speed of src/index against the memory-bandwidth
 * floor. Not a test: it allocates about 1 GB and takes a few seconds.
 *
 * It fills an L2 index with N random D-dimensional vectors (default 1,000,000
 * x 128 = 512 MB of floats), runs Q single-threaded top-k searches and prints
 * milliseconds per query. The floor is the time to stream a separate buffer of
 * the same N*D floats once with a plain vectorised sum (the least work any
 * exact scan must do: read every float once); the ratio search / floor says
 * how close the scan is to bandwidth-bound. The floor is measured twice: a
 * plain sum, and the same sum with the software prefetch the scan kernels use
 * (the prefetch alone moves a streaming loop's speed on some machines). All
 * times are medians of several runs after a warm-up, so page faults
 * are not counted. Floor runs and searches are interleaved so that both see
 * the same load when the machine is shared, and medians are compared.
 *
 * Build and run (from the repository root):
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
 *      bench/bench_index.c build/libfacelink.a $(pkg-config --libs jansson libcrypto) \
 *      -lm -lpthread -o build/bench_index
 *   build/bench_index [N] [D] [Q] [K]
 * FL_FORCE_ISA=scalar|avx2|avx512 pins the kernels, as for the library.
 */
#include "bench_util.h"
#include "core/core.h"
#include "index/index.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* Sum of n floats (n % 32 == 0) with four AVX2 accumulators: load-bound. */
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

/* The same with the software prefetch the scan kernels use (4096 bytes
 * ahead), so the scan is also compared with a floor that has its advantage. */
__attribute__((target("avx2"))) static float sum_avx2_pf(const float *p, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 32) {
        if (i + 1024 + 16 < n) {
            _mm_prefetch((const char *)(p + i + 1024), _MM_HINT_T0);
            _mm_prefetch((const char *)(p + i + 1024 + 16), _MM_HINT_T0);
        }
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

/* Portable fallback: eight independent scalar chains. */
static float sum_scalar(const float *p, size_t n)
{
    float s[8] = {0};
    for (size_t i = 0; i < n; i += 8) {
        for (int l = 0; l < 8; l++)
            s[l] += p[i + (size_t)l];
    }
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static float sum_stream(const float *p, size_t n, bool prefetch)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        return prefetch ? sum_avx2_pf(p, n) : sum_avx2(p, n);
#endif
    (void)prefetch;
    return sum_scalar(p, n);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t dim = argc > 2 ? strtoull(argv[2], NULL, 10) : 128;
    size_t nq = argc > 3 ? strtoull(argv[3], NULL, 10) : 20;
    size_t k = argc > 4 ? strtoull(argv[4], NULL, 10) : 10;
    const size_t batch = 65536;
    struct fl_err err = {0};
    struct fl_rng r;
    struct fl_index *ix;
    uint64_t *ids = NULL;
    float *vecs = NULL, *floor_buf = NULL, *q = NULL;
    struct fl_index_hit *hits = NULL;
    double *times = NULL, *floor_t = NULL, *floor_pf_t = NULL, floor_ms, floor_pf_ms, sink = 0;
    size_t floor_n;
    int rc = 1;

    fl_core_init();
    fl_rng_seed(&r, 42);
    if (n == 0 || nq == 0) {
        fprintf(stderr, "usage: bench_index [N>0] [D] [Q>0] [K]\n");
        return 2;
    }
    ix = fl_index_new(dim, FL_INDEX_L2, &err);
    ids = fl_malloc(sizeof(*ids) * batch);
    vecs = fl_malloc(sizeof(float) * batch * dim);
    q = fl_malloc(sizeof(float) * dim);
    hits = fl_malloc(sizeof(*hits) * k);
    times = fl_malloc(sizeof(double) * nq);
    floor_t = fl_malloc(sizeof(double) * nq);
    floor_pf_t = fl_malloc(sizeof(double) * nq);
    if (!ix || !ids || !vecs || !q || !hits || !times || !floor_t || !floor_pf_t) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        goto out;
    }
    {
        /* the exact scan is what is measured: no graph (it would also take
         * minutes to build for a million vectors) */
        struct fl_index_hnsw_params hp;
        fl_index_hnsw_defaults(&hp);
        hp.threshold = SIZE_MAX;
        if (fl_index_set_hnsw(ix, &hp, &err) != FL_OK) {
            fprintf(stderr, "setup failed: %s\n", err.msg);
            goto out;
        }
    }

    /* Fill the index in batches, as the start-up rebuild would. */
    uint64_t t0 = fl_time_mono_ns();
    for (size_t done = 0; done < n;) {
        size_t m = FL_MIN(batch, n - done);
        for (size_t i = 0; i < m; i++)
            ids[i] = done + i;
        for (size_t i = 0; i < m * dim; i++)
            vecs[i] = (float)fl_rng_double(&r);
        if (fl_index_add_batch(ix, ids, vecs, m, &err) != FL_OK) {
            fprintf(stderr, "add_batch: %s\n", err.msg);
            goto out;
        }
        done += m;
    }
    double build_s = (double)(fl_time_mono_ns() - t0) * 1e-9;

    /* The floor: the same number of floats, streamed once per run. */
    floor_n = (n * dim + 31) / 32 * 32;
    floor_buf = fl_malloc_aligned(floor_n * sizeof(float), 64);
    if (!floor_buf) {
        fprintf(stderr, "out of memory for the floor buffer\n");
        goto out;
    }
    for (size_t i = 0; i < floor_n; i++)
        floor_buf[i] = (float)(i & 1023) * 1e-3f;

    /* Interleave floor runs and searches so that both see the same machine
     * load (other processes on a shared box), then compare medians. Round 0
     * is a warm-up. */
    for (size_t i = 0; i <= nq; i++) {
        size_t got = 0;
        uint64_t a = fl_time_mono_ns();
        sink += sum_stream(floor_buf, floor_n, false);
        uint64_t b = fl_time_mono_ns();
        sink += sum_stream(floor_buf, floor_n, true);
        uint64_t c = fl_time_mono_ns();
        for (size_t j = 0; j < dim; j++)
            q[j] = (float)fl_rng_double(&r);
        uint64_t d = fl_time_mono_ns();
        struct fl_index_search_opts exact = {.mode = FL_INDEX_SEARCH_EXACT};
        if (fl_index_search_opt(ix, q, k, INFINITY, NULL, &exact, hits, &got, &err) != FL_OK) {
            fprintf(stderr, "search: %s\n", err.msg);
            goto out;
        }
        uint64_t e = fl_time_mono_ns();
        if (i > 0) {
            floor_t[i - 1] = (double)(b - a) * 1e-6;
            floor_pf_t[i - 1] = (double)(c - b) * 1e-6;
            times[i - 1] = (double)(e - d) * 1e-6;
        }
        sink += got ? hits[0].distance : 0;
    }
    qsort(times, nq, sizeof(double), cmp_double);
    qsort(floor_t, nq, sizeof(double), cmp_double);
    qsort(floor_pf_t, nq, sizeof(double), cmp_double);
    floor_ms = floor_t[nq / 2];
    floor_pf_ms = floor_pf_t[nq / 2];

    double mb = (double)n * (double)dim * sizeof(float) / 1e6;
    printf("index: %zu x %zu float32 (%.0f MB), L2, k=%zu, kernels %s, build %.2f s\n", n, dim, mb,
           k, fl_index_isa_name(), build_s);
    printf("search: best %.2f ms, median %.2f ms per query (%zu queries, 1 thread)\n", times[0],
           times[nq / 2], nq);
    printf("floor:  median %.2f ms to stream %.0f MB once with a plain sum (%.1f GB/s); "
           "%.2f ms with prefetch (%.1f GB/s)\n",
           floor_ms, mb, mb / floor_ms, floor_pf_ms, mb / floor_pf_ms);
    printf("ratio:  median search / plain floor = %.2f, / prefetched floor = %.2f; "
           "scan rate %.1f GB/s\n",
           times[nq / 2] / floor_ms, times[nq / 2] / floor_pf_ms, mb / times[nq / 2]);
    printf("(checksum %g)\n", sink);
    rc = 0;
out:
    fl_index_free(ix);
    fl_free(ids);
    fl_free(vecs);
    fl_free(q);
    fl_free(hits);
    fl_free(times);
    fl_free(floor_t);
    fl_free(floor_pf_t);
    fl_free_aligned(floor_buf);
    return rc;
}
