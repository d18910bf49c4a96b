/*
 * dist.c: scalar distance kernels (the reference every SIMD file is tested
 * against) and the run-time dispatch table.
 *
 * What. Squared L2 and dot product, one-to-one and one query against a block
 * of rows (the scan's hot path). The batched form exists so the SIMD files can
 * keep the query in registers across rows and so the index calls through a
 * function pointer once per block, not once per vector.
 *
 * The scalar kernels accumulate in four float lanes (element i goes to lane
 * i % 4) and add the lanes pairwise at the end. That is still an obviously
 * correct reference, but it breaks the single add-latency chain, so the scalar
 * fallback scans about four times faster than a naive loop. Tests compare
 * every kernel, scalar included, to a double-precision sum.
 *
 * Dispatch. fl__index_dist_active() picks, once (pthread_once), the best table
 * not above fl_cpu_isa(), which already honours FL_FORCE_ISA. A table is only
 * handed out when the CPU supports every extension its file was compiled with:
 * the Makefile builds *_avx512.c with avx512f/bw/dq/vl, so we check all four,
 * not just avx512f as fl_cpu_isa() does. The SIMD files never run otherwise.
 *
 * Threading: all kernels are pure; the table is written once under
 * pthread_once and read-only afterwards.
 */
#include "index/index_int.h"

#include <pthread.h>

/* Squared L2, four lanes; see the essay for the summation order. */
static float l2_scalar(const float *a, const float *b, size_t dim)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        for (size_t l = 0; l < 4; l++) {
            float d = a[i + l] - b[i + l];
            s[l] += d * d;
        }
    }
    for (size_t l = 0; i < dim; i++, l++) {
        float d = a[i] - b[i];
        s[l] += d * d;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Dot product, same lane layout as l2_scalar. */
static float dot_scalar(const float *a, const float *b, size_t dim)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        for (size_t l = 0; l < 4; l++)
            s[l] += a[i + l] * b[i + l];
    }
    for (size_t l = 0; i < dim; i++, l++)
        s[l] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Float query times int8 codes, same lane layout. */
static float qdot_scalar(const float *q, const int8_t *c, size_t dim)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        for (size_t l = 0; l < 4; l++)
            s[l] += q[i + l] * (float)c[i + l];
    }
    for (size_t l = 0; i < dim; i++, l++)
        s[l] += q[i] * (float)c[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Batched forms: per row exactly the one-to-one kernel (bit-identical). */
static void l2_batch_scalar(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                            float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = l2_scalar(q, base + r * stride, dim);
    }
}

static void dot_batch_scalar(const float *q, const float *base, size_t n, size_t dim, size_t stride,
                             float *out)
{
    const float *end = base + n * stride;
    for (size_t r = 0; r < n; r++) {
        fl__index_prefetch_row(base + r * stride, end, stride);
        out[r] = dot_scalar(q, base + r * stride, dim);
    }
}

static const struct fl__index_dist dist_scalar = {
    .name = "scalar",
    .isa = FL_ISA_SCALAR,
    .l2 = l2_scalar,
    .dot = dot_scalar,
    .l2_batch = l2_batch_scalar,
    .dot_batch = dot_batch_scalar,
    .qdot = qdot_scalar,
};

/* True if the CPU can run code built with the flags the Makefile gives the
 * file for isa. */
static bool cpu_can_run(enum fl_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa) {
    case FL_ISA_SCALAR:
        return true;
    case FL_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FL_ISA_AVX512:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return false;
#else
    return isa == FL_ISA_SCALAR;
#endif
}

const struct fl__index_dist *fl__index_dist_for(enum fl_isa isa)
{
    const struct fl__index_dist *t = NULL;
    switch (isa) {
    case FL_ISA_SCALAR:
        return &dist_scalar;
    case FL_ISA_AVX2:
        t = fl__index_dist_avx2();
        break;
    case FL_ISA_AVX512:
        t = fl__index_dist_avx512();
        break;
    }
    if (t && !cpu_can_run(isa))
        t = NULL;
    return t;
}

static pthread_once_t active_once = PTHREAD_ONCE_INIT;
static const struct fl__index_dist *active;

static void choose_active(void)
{
    enum fl_isa want = fl_cpu_isa();
    const struct fl__index_dist *t = NULL;
    for (int isa = (int)want; isa >= (int)FL_ISA_SCALAR && !t; isa--)
        t = fl__index_dist_for((enum fl_isa)isa);
    FL_ASSERT(t != NULL);
    active = t;
}

const struct fl__index_dist *fl__index_dist_active(void)
{
    pthread_once(&active_once, choose_active);
    return active;
}

const char *fl_index_isa_name(void)
{
    return fl__index_dist_active()->name;
}
