/*
 * dist_avx2.c: AVX2+FMA distance kernels (8 floats per register).
 *
 * Built with -mavx2 -mfma by the Makefile; only reached through
 * fl__index_dist_for(), which checks the CPU first.
 *
 * Each row is summed in two 8-lane accumulators (even and odd 8-float blocks)
 * so consecutive FMAs do not wait on each other; the tail (dim % 8) is read
 * with a masked load, which never touches the masked-off bytes, so a vector
 * that ends at the edge of a page is safe. The batched kernel runs exactly the
 * one-to-one row code, so both give bit-identical results per row. Rows are
 * independent, so the out-of-order core overlaps consecutive rows by itself;
 * the scan is memory-bound long before it is compute-bound (see
 * docs/internals/index.md for the numbers).
 *
 * Threading: pure functions.
 */
#include "index/index_int.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* Mask rows for the tail: &tail_mask[8 - rem] selects the first rem lanes. */
static const int32_t tail_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Horizontal sum of 8 lanes (fixed order, so results are reproducible). */
static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float l2_row(const float *a, const float *b, size_t dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    if (i + 8 <= dim) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        i += 8;
    }
    if (i < dim) {
        __m256i m = _mm256_loadu_si256((const __m256i *)&tail_mask[8 - (dim - i)]);
        __m256 d1 = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

static inline float dot_row(const float *a, const float *b, size_t dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    if (i + 8 <= dim) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        i += 8;
    }
    if (i < dim) {
        __m256i m = _mm256_loadu_si256((const __m256i *)&tail_mask[8 - (dim - i)]);
        acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* Float query times int8 codes: 8 codes sign-extended and converted per
 * step; the tail (dim % 8) goes through a zeroed 8-byte copy, since AVX2 has
 * no masked byte load. */
static float qdot_avx2(const float *q, const int8_t *c, size_t dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const void *)(c + i))));
        __m256 c1 =
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const void *)(c + i + 8))));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), c0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), c1, acc1);
    }
    for (; i < dim; i += 8) {
        size_t rem = dim - i < 8 ? dim - i : 8;
        int8_t tail[8] = {0};
        __m256i m = _mm256_loadu_si256((const __m256i *)&tail_mask[8 - rem]);
        memcpy(tail, c + i, rem);
        __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const void *)tail)));
        acc0 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), c0, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

static float l2_avx2(const float *a, const float *b, size_t dim)
{
    return l2_row(a, b, dim);
}

static float dot_avx2(const float *a, const float *b, size_t dim)
{
    return dot_row(a, b, dim);
}

static void l2_batch_avx2(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                          float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = l2_row(q, base + r * stride, dim);
    }
}

static void dot_batch_avx2(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                           float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = dot_row(q, base + r * stride, dim);
    }
}

static const struct fl__index_dist dist_avx2 = {
    .name = "avx2",
    .isa = FL_ISA_AVX2,
    .l2 = l2_avx2,
    .dot = dot_avx2,
    .l2_batch = l2_batch_avx2,
    .dot_batch = dot_batch_avx2,
    .qdot = qdot_avx2,
};

const struct fl__index_dist *fl__index_dist_avx2(void)
{
    return &dist_avx2;
}

#else

const struct fl__index_dist *fl__index_dist_avx2(void)
{
    return NULL;
}

#endif
