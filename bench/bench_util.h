/*
 * bench_util.h: the small timing and sorting helpers the benchmarks share
 * (header-only; every bench is its own program).
 */
#ifndef FL_BENCH_UTIL_H
#define FL_BENCH_UTIL_H

#include "core/core.h"

#include <math.h>
#include <stdint.h>
#include <time.h>

/* CPU time of the calling thread, ns (for 1-thread runs on a shared, busy
 * machine the median CPU time is a fairer figure than wall time). */
static inline uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* qsort comparators, ascending. */
static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A standard normal draw from r (Box-Muller). */
static inline double bench_gauss(struct fl_rng *r)
{
    double u = fl_rng_double(r), v = fl_rng_double(r);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

#endif /* FL_BENCH_UTIL_H */
