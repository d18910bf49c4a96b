/* test_index_dist.c: the distance kernels of every ISA this CPU can run,
 * against a double-precision reference and against the scalar kernels:
 * odd dimensions, unaligned starts, tails that end at an unmapped page, zeros
 * and large values; batched scan == one-to-one bit for bit; dispatch. */
#include "t.h"
#include "core/core.h"
#include "index/index_int.h"

#include <float.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

T_MAIN_STATE;

static const size_t dims[] = {1, 3, 15, 16, 17, 31, 32, 33, 127, 128, 129, 192, 513};

static void fill(struct fl_rng *r, float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(fl_rng_double(r) * 2.0 - 1.0) * scale;
}

/* Reference values in double, plus the sum of absolute terms, which bounds
 * the rounding error any float summation order can make. */
static double ref_l2(const float *a, const float *b, size_t n, double *abs_sum)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    *abs_sum = s;
    return s;
}

static double ref_dot(const float *a, const float *b, size_t n, double *abs_sum)
{
    double s = 0.0, as = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)a[i] * (double)b[i];
        as += fabs((double)a[i] * (double)b[i]);
    }
    *abs_sum = as;
    return s;
}

/* |got - want| within a float summation bound: a few ulps per term of the
 * absolute sum (n * eps would be the worst case; we stay well inside it). */
static bool close_enough(float got, double want, double abs_sum, size_t n)
{
    double tol = abs_sum * 4.0 * (double)FLT_EPSILON * (1.0 + sqrt((double)n)) + 1e-30;
    return fabs((double)got - want) <= tol;
}

static const struct fl__index_dist *kern_or_null(int isa)
{
    return fl__index_dist_for((enum fl_isa)isa);
}

/* Every kernel (scalar too) against double, on random data at odd dims and
 * unaligned starts; and each SIMD kernel against the scalar one by NMSE. */
static void test_kernels_vs_reference(void)
{
    struct fl_rng r;
    const struct fl__index_dist *sc = fl__index_dist_for(FL_ISA_SCALAR);
    float *buf_a = fl_malloc(sizeof(float) * 600), *buf_b = fl_malloc(sizeof(float) * 600);
    T_REQUIRE(sc && buf_a && buf_b);
    fl_rng_seed(&r, 1);
    for (int isa = FL_ISA_SCALAR; isa <= FL_ISA_AVX512; isa++) {
        const struct fl__index_dist *k = kern_or_null(isa);
        double num_l2 = 0, den_l2 = 0, num_dot = 0, den_dot = 0;
        int bad = 0;
        if (!k) {
            printf("# %s kernels not available on this CPU/build\n", fl_isa_name(isa));
            continue;
        }
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t n = dims[di];
            for (size_t off = 0; off < 4; off++) {
                const float *a = buf_a + off, *b = buf_b + (3 - off) + 1;
                double as, want;
                float got, ref;
                fill(&r, buf_a, 600, 1.0f);
                fill(&r, buf_b, 600, 1.0f);
                want = ref_l2(a, b, n, &as);
                got = k->l2(a, b, n);
                ref = sc->l2(a, b, n);
                bad += !close_enough(got, want, as, n);
                num_l2 += ((double)got - ref) * ((double)got - ref);
                den_l2 += (double)ref * ref;
                want = ref_dot(a, b, n, &as);
                got = k->dot(a, b, n);
                ref = sc->dot(a, b, n);
                bad += !close_enough(got, want, as, n);
                num_dot += ((double)got - ref) * ((double)got - ref);
                den_dot += (double)ref * ref;
            }
        }
        printf("# %s: NMSE vs scalar l2 %.3g dot %.3g\n", k->name, num_l2 / den_l2,
               num_dot / den_dot);
        T_CHECK_EQ_INT(bad, 0);
        T_CHECK(num_l2 / den_l2 <= 1e-10);
        T_CHECK(num_dot / den_dot <= 1e-10);
    }
    fl_free(buf_a);
    fl_free(buf_b);
}

/* Zeros and identical vectors give exact zeros; large values (1e17, squares
 * near 1e34) stay finite and accurate; a one-hot pattern is exact. */
static void test_kernels_special_values(void)
{
    float a[513], b[513];
    struct fl_rng r;
    fl_rng_seed(&r, 2);
    for (int isa = FL_ISA_SCALAR; isa <= FL_ISA_AVX512; isa++) {
        const struct fl__index_dist *k = kern_or_null(isa);
        if (!k)
            continue;
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t n = dims[di];
            double as, want;
            memset(a, 0, sizeof(a));
            memset(b, 0, sizeof(b));
            T_CHECK(k->l2(a, b, n) == 0.0f);
            T_CHECK(k->dot(a, b, n) == 0.0f);
            fill(&r, a, n, 1.0f);
            T_CHECK(k->dot(a, b, n) == 0.0f);
            T_CHECK(k->l2(a, a, n) == 0.0f);
            /* one-hot at the last element: only the tail path sees it */
            memset(a, 0, sizeof(a));
            a[n - 1] = 3.0f;
            b[n - 1] = 5.0f;
            T_CHECK(k->l2(a, b, n) == 4.0f);
            T_CHECK(k->dot(a, b, n) == 15.0f);
            fill(&r, a, n, 1e17f);
            fill(&r, b, n, 1e17f);
            want = ref_l2(a, b, n, &as);
            T_CHECK(isfinite(k->l2(a, b, n)));
            T_CHECK(close_enough(k->l2(a, b, n), want, as, n));
            want = ref_dot(a, b, n, &as);
            T_CHECK(close_enough(k->dot(a, b, n), want, as, n));
        }
    }
}

/* The batched kernel equals the one-to-one kernel bit for bit, for every row,
 * at strides that are not multiples of the register width. */
static void test_batch_equals_single(void)
{
    struct fl_rng r;
    enum { ROWS = 37 };
    fl_rng_seed(&r, 3);
    for (int isa = FL_ISA_SCALAR; isa <= FL_ISA_AVX512; isa++) {
        const struct fl__index_dist *k = kern_or_null(isa);
        if (!k)
            continue;
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t n = dims[di], stride = n + (di % 3) * 5;
            float *base = fl_malloc(sizeof(float) * stride * ROWS), q[513], out[ROWS];
            int mism = 0;
            T_REQUIRE(base);
            fill(&r, base, stride * ROWS, 2.0f);
            fill(&r, q, n, 2.0f);
            k->l2_batch(q, base, ROWS, n, stride, out);
            for (size_t i = 0; i < ROWS; i++)
                mism += memcmp(&out[i], &(float){k->l2(q, base + i * stride, n)}, 4) != 0;
            k->dot_batch(q, base, ROWS, n, stride, out);
            for (size_t i = 0; i < ROWS; i++)
                mism += memcmp(&out[i], &(float){k->dot(q, base + i * stride, n)}, 4) != 0;
            T_CHECK_EQ_INT(mism, 0);
            fl_free(base);
        }
    }
}

/* A vector whose last element is the last float of a mapped page, followed by
 * an unmapped page: the masked tail loads must not touch the guard page. */
static void test_tail_at_page_end(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *mem =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    T_REQUIRE(mem != MAP_FAILED);
    T_REQUIRE(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
    for (int isa = FL_ISA_SCALAR; isa <= FL_ISA_AVX512; isa++) {
        const struct fl__index_dist *k = kern_or_null(isa);
        if (!k)
            continue;
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t n = dims[di];
            float *v = (float *)(void *)(mem + page) - n, out;
            for (size_t i = 0; i < n; i++)
                v[i] = 1.0f;
            T_CHECK(k->l2(v, v, n) == 0.0f);
            T_CHECK(k->dot(v, v, n) == (float)n);
            k->l2_batch(v, v, 1, n, n, &out);
            T_CHECK(out == 0.0f);
        }
    }
    munmap(mem, (size_t)page * 2);
}

/* The int8 kernels: every ISA against a double sum of q_i * c_i (exact
 * products, so only the float summation differs), at odd dims and unaligned
 * starts, with codes ending at an unmapped page (the tail must not read past
 * it). */
static void test_qdot(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *mem =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    float q[520];
    struct fl_rng r;
    T_REQUIRE(mem != MAP_FAILED);
    T_REQUIRE(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
    fl_rng_seed(&r, 5);
    for (int isa = FL_ISA_SCALAR; isa <= FL_ISA_AVX512; isa++) {
        const struct fl__index_dist *k = kern_or_null(isa);
        int bad = 0;
        if (!k)
            continue;
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t n = dims[di];
            int8_t *c = (int8_t *)(mem + page) - n; /* ends at the guard page */
            for (size_t off = 0; off < 3; off++) {
                double want = 0.0, as = 0.0;
                fill(&r, q, n + off, 1.0f);
                for (size_t i = 0; i < n; i++) {
                    c[i] = (int8_t)((int)(fl_rng_double(&r) * 255.0) - 127);
                    want += (double)q[off + i] * c[i];
                    as += fabs((double)q[off + i] * c[i]);
                }
                bad += !close_enough(k->qdot(q + off, c, n), want, as, n);
            }
        }
        T_CHECK_EQ_INT(bad, 0);
    }
    munmap(mem, (size_t)page * 2);
}

/* The row codes: every component within half a step of its float (the
 * largest exactly), the stored scale and squared norm consistent with the
 * codes, padding zeroed; a zero row codes to all zeros; and the quantised dot
 * of unit 320-d vectors off by about 1e-3 at most (what the graph's ranking
 * can afford: its best candidates are re-scored with the floats). */
static void test_quantize(void)
{
    struct fl_rng r;
    const struct fl__index_dist *k = fl__index_dist_active();
    int8_t code[4096 + 64];
    float x[513], q[513], scale, sqn;
    double worst = 0.0;
    fl_rng_seed(&r, 6);
    for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
        size_t n = dims[di], cs = fl__index_code_stride(n);
        double sq = 0.0;
        int bad = 0;
        T_CHECK(cs % 64 == 0 && cs >= n + FL__INDEX_CODE_META);
        fill(&r, x, n, 3.0f);
        memset(code, 0x55, sizeof(code));
        fl__index_quantize(x, n, code);
        fl__index_code_meta(code, cs, &scale, &sqn);
        T_CHECK(scale > 0.0f);
        for (size_t i = 0; i < n; i++) {
            bad += fabs((double)x[i] - (double)scale * code[i]) > scale * 0.5001;
            bad += fabsf(x[i]) > 127.0f * scale * 1.0001f;
            sq += (double)scale * code[i] * scale * code[i];
        }
        for (size_t i = n; i < cs - FL__INDEX_CODE_META; i++)
            bad += code[i] != 0;
        T_CHECK_EQ_INT(bad, 0);
        T_CHECK(fabs(sqn - sq) <= 1e-5 * sq);
    }
    memset(x, 0, sizeof(x));
    fl__index_quantize(x, 128, code);
    fl__index_code_meta(code, fl__index_code_stride(128), &scale, &sqn);
    T_CHECK(scale == 0.0f && sqn == 0.0f && code[0] == 0 && code[127] == 0);
    for (int t = 0; t < 200; t++) {
        double nx = 0.0, nq = 0.0, exact = 0.0;
        fill(&r, x, 320, 1.0f);
        fill(&r, q, 320, 1.0f);
        for (size_t i = 0; i < 320; i++) {
            nx += (double)x[i] * x[i];
            nq += (double)q[i] * q[i];
        }
        for (size_t i = 0; i < 320; i++) {
            x[i] = (float)(x[i] / sqrt(nx));
            q[i] = (float)(q[i] / sqrt(nq));
            exact += (double)x[i] * q[i];
        }
        fl__index_quantize(x, 320, code);
        fl__index_code_meta(code, fl__index_code_stride(320), &scale, &sqn);
        worst = fmax(worst, fabs(scale * k->qdot(q, code, 320) - exact));
    }
    printf("# unit 320-d vectors: worst |quantised dot - dot| over 200 pairs %.2e\n", worst);
    T_CHECK(worst < 2e-3);
}

/* The active table is the best available not above fl_cpu_isa(), so
 * FL_FORCE_ISA pins it (run with FL_FORCE_ISA=scalar to see "scalar"). */
static void test_dispatch(void)
{
    const struct fl__index_dist *a = fl__index_dist_active();
    T_REQUIRE(a != NULL);
    T_CHECK((int)a->isa <= (int)fl_cpu_isa());
    for (int isa = (int)a->isa + 1; isa <= (int)fl_cpu_isa(); isa++)
        T_CHECK(fl__index_dist_for((enum fl_isa)isa) == NULL);
    T_CHECK_EQ_STR(fl_index_isa_name(), a->name);
    T_CHECK(fl__index_dist_for(FL_ISA_SCALAR) != NULL);
    printf("# active kernels: %s (fl_cpu_isa %s)\n", a->name, fl_isa_name(fl_cpu_isa()));
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_kernels_vs_reference);
    T_RUN(test_kernels_special_values);
    T_RUN(test_batch_equals_single);
    T_RUN(test_tail_at_page_end);
    T_RUN(test_qdot);
    T_RUN(test_quantize);
    T_RUN(test_dispatch);
    return t_done();
}
