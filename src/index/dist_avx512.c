/*
 * dist_avx512.c: AVX-512F distance kernels (16 floats per register).
 *
 * Built with the Makefile's AVX-512 flags (f/bw/dq/vl); only reached through
 * fl__index_dist_for(), which checks that the CPU has all of them.
 *
 * Same shape as dist_avx2.c: two accumulators per row (even and odd 16-float
 * blocks), the tail (dim % 16) through a zero-masking load, which suppresses
 * faults on masked-off lanes, and the batched kernel running exactly the
 * one-to-one row code so both agree bit for bit. A 128-d row is eight loads:
 * the scan is bound by memory bandwidth, not by these instructions.
 *
 * Threading: pure functions.
 */
#include "index/index_int.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* Horizontal sum of 16 lanes in a fixed order: 512 -> 256 -> 128 -> 1. */
static inline float hsum512(__m512 v)
{
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float l2_row(const float *a, const float *b, size_t dim)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        acc0 = _mm512_fmadd_ps(d0, d0, acc0);
        acc1 = _mm512_fmadd_ps(d1, d1, acc1);
    }
    if (i + 16 <= dim) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        acc0 = _mm512_fmadd_ps(d0, d0, acc0);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1u);
        __m512 d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        acc1 = _mm512_fmadd_ps(d1, d1, acc1);
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

static inline float dot_row(const float *a, const float *b, size_t dim)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    if (i + 16 <= dim) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1u);
        acc1 =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

/* Float query times int8 codes: 16 codes sign-extended to int32 and
 * converted per step, two accumulators, masked tail. */
static float qdot_avx512(const float *q, const int8_t *c, size_t dim)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(c + i))));
        __m512 c1 =
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(c + i + 16))));
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), c0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), c1, acc1);
    }
    for (; i < dim; i += 16) {
        size_t rem = dim - i < 16 ? dim - i : 16;
        __mmask16 m = (__mmask16)((1u << rem) - 1u);
        __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, c + i)));
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), c0, acc0);
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

static float l2_avx512(const float *a, const float *b, size_t dim)
{
    return l2_row(a, b, dim);
}

static float dot_avx512(const float *a, const float *b, size_t dim)
{
    return dot_row(a, b, dim);
}

static void l2_batch_avx512(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                            float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = l2_row(q, base + r * stride, dim);
    }
}

static void dot_batch_avx512(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                             float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = dot_row(q, base + r * stride, dim);
    }
}

static const struct fl__index_dist dist_avx512 = {
    .name = "avx512",
    .isa = FL_ISA_AVX512,
    .l2 = l2_avx512,
    .dot = dot_avx512,
    .l2_batch = l2_batch_avx512,
    .dot_batch = dot_batch_avx512,
    .qdot = qdot_avx512,
};

const struct fl__index_dist *fl__index_dist_avx512(void)
{
    return &dist_avx512;
}

#else

const struct fl__index_dist *fl__index_dist_avx512(void)
{
    return NULL;
}

#endif
