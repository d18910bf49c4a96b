/*
 * random_read.c: what one read of a row at a random address costs on this
 * machine, by row size and page size. Not a test; the measurement behind the
 * int8 codes and 2 MiB pages of the graph search (docs/internals/index.md).
 *
 * A 160 MB buffer (about the rows and codes of 100,000 fused faces) is read
 * one row at a time at random row numbers (a fixed xorshift sequence): every
 * cache line of the row is touched, as a distance kernel does. Rows of 320
 * bytes (a 320-d int8 code) and 1,280 bytes (320 floats), on 4 KiB pages and
 * on 2 MiB pages (madvise MADV_HUGEPAGE; transparent huge pages must be
 * "madvise" or "always"). Prints ns per row, best of 3 passes of 2^20 rows.
 *
 *   build/bench/random_read
 */
#include "bench_util.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL ((size_t)160 << 20)
#define READS (1 << 20)

static double pass(const unsigned char *a, size_t row, const uint32_t *idx)
{
    uint64_t t0 = thread_cpu_ns();
    unsigned long sum = 0;
    for (int i = 0; i < READS; i++) {
        const unsigned char *p = a + (size_t)idx[i] * row;
        for (size_t b = 0; b < row; b += 64)
            sum += p[b];
    }
    if (sum == 1) /* keep the loads */
        printf(" ");
    return (double)(thread_cpu_ns() - t0) / READS;
}

int main(void)
{
    static const size_t rows[] = {320, 1280};
    uint32_t *idx = malloc(sizeof(*idx) * READS);
    if (!idx)
        return 1;
    fl_core_init();
    printf("random row reads over %zu MB, ns per row (thread CPU, best of 3 x %d reads)\n",
           TOTAL >> 20, READS);
    printf("  %-10s %12s %12s\n", "row bytes", "4 KiB pages", "2 MiB pages");
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        double best[2] = {1e30, 1e30};
        uint64_t x = 88172645463325252u;
        for (int i = 0; i < READS; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            idx[i] = (uint32_t)(x % (TOTAL / rows[r]));
        }
        for (int huge = 0; huge < 2; huge++) {
            unsigned char *a = fl_malloc_aligned(TOTAL, (size_t)2 << 20);
            if (!a)
                return 1;
            if (huge)
                fl_advise_huge(a, TOTAL);
            memset(a, 1, TOTAL);
            for (int k = 0; k < 3; k++) {
                double ns = pass(a, rows[r], idx);
                best[huge] = ns < best[huge] ? ns : best[huge];
            }
            fl_free_aligned(a);
        }
        printf("  %-10zu %12.1f %12.1f\n", rows[r], best[0], best[1]);
    }
    free(idx);
    return 0;
}
