/*
 * quant.c: the int8 codes the graph search steps through (see index_int.h).
 *
 * Why. A graph search at efSearch ~200 computes a few thousand distances to
 * rows scattered over the whole collection: at 100,000 x 320 floats (128 MB)
 * nearly every row is a cache miss, and the search waits on memory, not on
 * arithmetic (perf on the SearchFaces benchmark: most of the time on the
 * prefetches of the next rows). An int8 code is a quarter of the bytes, so
 * the same walk touches a quarter of the cache lines. The walk only has to
 * rank candidates; the best ones are re-scored with the float rows (hnsw.c),
 * so what a search returns keeps its exact distance.
 *
 * How. One symmetric scale per row, s = max|x_i| / 127, c_i = round(x_i / s)
 * in -127..127: the largest component is exact and each is off by at most
 * s / 2. For a unit vector of 320 components the dot product with a unit
 * query is then off by about 1e-3 (measured in test_index_dist), well below
 * the gaps between a face's nearest neighbours. Per-dimension ranges (FAISS's
 * SQ8) would be finer but need training data and a rule for values that
 * arrive outside the trained range; a per-row scale needs neither, and the
 * row's own floats are always there to re-score.
 *
 * The code row keeps s and |s c|^2 after the codes, so the squared L2
 * distance |q|^2 - 2 s (q . c) + |s c|^2 needs nothing but the row itself.
 *
 * Threading: a pure function.
 */
#include "index/index_int.h"

#include <math.h>

void fl__index_quantize(const float *x, size_t dim, int8_t *code)
{
    size_t cstride = fl__index_code_stride(dim);
    float m = 0.0f, inv, meta[2];
    double sq = 0.0;
    for (size_t i = 0; i < dim; i++)
        m = fmaxf(m, fabsf(x[i]));
    inv = 127.0f / m;
    if (m == 0.0f || !isfinite(inv)) {
        /* A zero (or denormal-tiny) row: codes 0, scale 0. The graph ranks it
         * as the origin; the re-scoring with its floats is exact anyway. */
        memset(code, 0, cstride);
        return;
    }
    for (size_t i = 0; i < dim; i++) {
        float c = rintf(x[i] * inv);
        c = fminf(127.0f, fmaxf(-127.0f, c));
        code[i] = (int8_t)c;
        sq += (double)c * c;
    }
    memset(code + dim, 0, cstride - dim - FL__INDEX_CODE_META);
    meta[0] = m / 127.0f;
    meta[1] = (float)((double)meta[0] * meta[0] * sq);
    memcpy(code + cstride - FL__INDEX_CODE_META, meta, sizeof(meta));
}
