/*
 * index_int.h: internals of the index module shared between its files and its
 * unit tests: the distance kernel table (dist.c and the per-ISA files) and the
 * bounded top-k selector (topk.c). Not part of any public API.
 */
#ifndef FL_INDEX_INT_H
#define FL_INDEX_INT_H

#include "core/core.h"
#include "index/index.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ============================ Distance kernels ============================ */

/* One-to-one kernel: squared Euclidean distance or dot product of a[0..dim)
 * and b[0..dim). No alignment required. Pure function, thread-safe. */
typedef float (*fl_dist_fn)(const float *a, const float *b, size_t dim);

/* Batched scan kernel (the hot path): out[i] = dist(q, base + i * stride) for
 * i in [0, n). stride is in floats (>= dim); rows need no alignment, but the
 * index passes 64-byte aligned rows. For every row the result is bit-identical
 * to the one-to-one kernel of the same table on the same inputs, so a search
 * and a later fl_index_get + one-to-one distance agree exactly. */
typedef void (*fl_dist_batch_fn)(const float *q, const float *base, size_t n, size_t dim,
                                 size_t stride, float *out);

/* Quantised kernel (the graph search's hot path): sum q_i * c_i of a float
 * query and a row's int8 codes, c[0..dim). No alignment required. Pure. */
typedef float (*fl_qdot_fn)(const float *q, const int8_t *c, size_t dim);

struct fl__index_dist {
    const char *name;           /* "scalar", "avx2", "avx512" */
    enum fl_isa isa;            /* the ISA these kernels need */
    fl_dist_fn l2;              /* sum (a_i - b_i)^2 */
    fl_dist_fn dot;             /* sum a_i * b_i */
    fl_dist_batch_fn l2_batch;  /* l2 of q against n rows */
    fl_dist_batch_fn dot_batch; /* dot of q against n rows */
    fl_qdot_fn qdot;            /* sum q_i * c_i, int8 codes */
};

/* ============================ Int8 row codes ============================ */

/* Each row also has an int8 code (src/index/quant.c): c_i = round(x_i / s)
 * with s = max|x_i| / 127 (one scale per row, symmetric), stored as dim
 * int8 then, at the end of the code row, two floats: s and |s c|^2. The graph
 * search steps through the codes (a quarter of the bytes of the floats) and
 * re-scores its best candidates with the float rows, so results keep their
 * exact distances. FL__INDEX_CODE_META is the byte offset of the floats from
 * the end of the code row. */
#define FL__INDEX_CODE_META 8

/* Bytes of one code row for dim: codes and the two floats, rounded up to a
 * cache line. */
static inline size_t fl__index_code_stride(size_t dim)
{
    return (dim + FL__INDEX_CODE_META + 63) / 64 * 64;
}

/* Encode x[0..dim) into code[0..fl__index_code_stride(dim)) (padding zeroed). */
void fl__index_quantize(const float *x, size_t dim, int8_t *code);

/* The scale s and squared norm |s c|^2 stored in a code row of cstride bytes. */
static inline void fl__index_code_meta(const int8_t *code, size_t cstride, float *scale,
                                       float *sqnorm)
{
    float m[2];
    memcpy(m, code + cstride - FL__INDEX_CODE_META, sizeof(m));
    *scale = m[0];
    *sqnorm = m[1];
}

/* Software prefetch for the scan: hint the cache lines of the row
 * FL_INDEX_PREFETCH_BYTES ahead of `row` (one row of stride floats), but none
 * at or past `end` (the end of the block being scanned). Measured on the
 * 1M x 128 benchmark: the hardware prefetcher alone leaves the scan about 15%
 * slower than a plain streaming sum; with this hint it matches it (see
 * docs/internals/index.md). Addresses are compared as integers so no pointer
 * past the block is ever formed. */
#define FL_INDEX_PREFETCH_BYTES 4096

static inline void fl__index_prefetch_row(const float *row, const float *end, size_t stride)
{
    uintptr_t a = (uintptr_t)row + FL_INDEX_PREFETCH_BYTES;
    uintptr_t e = (uintptr_t)end;
    for (size_t b = 0; b < stride * sizeof(float); b += 64) {
        if (a + b >= e)
            break;
        __builtin_prefetch((const void *)(a + b), 0, 3);
    }
}

/* The table for one ISA, or NULL when this build has no kernels for it or the
 * CPU cannot run them (checked with __builtin_cpu_supports, including every
 * AVX-512 subset the Makefile enables for *_avx512.c). FL_ISA_SCALAR never
 * returns NULL. Tests use this to compare every ISA to the scalar reference. */
const struct fl__index_dist *fl__index_dist_for(enum fl_isa isa);

/* The table the index uses: the best of fl__index_dist_for() not above
 * fl_cpu_isa() (which honours FL_FORCE_ISA). Chosen once, thread-safe. */
const struct fl__index_dist *fl__index_dist_active(void);

/* Per-ISA tables, defined in dist_avx2.c / dist_avx512.c. They return NULL if
 * the file was compiled without the ISA (non-x86 builds); they do not check
 * the CPU: that is fl__index_dist_for()'s job. */
const struct fl__index_dist *fl__index_dist_avx2(void);
const struct fl__index_dist *fl__index_dist_avx512(void);

/* ================================ Top-k ================================ */

/* Bounded selection of the k best (distance, id) pairs, best = smallest
 * distance, ties broken by the smaller id so results are deterministic. The
 * hits array (caller-owned, k entries) is used as a max-heap keyed on
 * (distance, id) while selecting; fl__index_topk_finish() sorts it best
 * first. Candidates with distance > max_distance (or NaN) are rejected. Not
 * thread-safe: one selector per search. */
struct fl__index_topk {
    struct fl_index_hit *hits; /* borrowed; k entries */
    size_t k;                  /* capacity, >= 1 */
    size_t n;                  /* entries held, <= k */
    float max_distance;        /* accept only distance <= this */
};

void fl__index_topk_init(struct fl__index_topk *t, struct fl_index_hit *hits, size_t k,
                         float max_distance);

/* Current acceptance bound: a candidate with distance > this can never enter.
 * Equal to max_distance until the heap is full, then the worst held distance.
 * Lets the scan reject most rows with one compare. */
static inline float fl__index_topk_bound(const struct fl__index_topk *t)
{
    return t->n < t->k ? t->max_distance : t->hits[0].distance;
}

/* Offer one candidate; keeps it if it is among the k best so far. */
void fl__index_topk_push(struct fl__index_topk *t, uint64_t id, float distance);

/* Sort the held hits best first in place; returns how many there are. */
size_t fl__index_topk_finish(struct fl__index_topk *t);

/* ============================== Graph (tests) ============================== */

/* Check the index's graph, if it has one: one node per vector and every
 * invariant of fl__hnsw_check (with `reachable`, also that every node is
 * reachable from the entry point). FL_OK without a graph. Read lock. */
enum fl_status fl__index_check_graph(struct fl_index *ix, bool reachable, struct fl_err *err);

#endif /* FL_INDEX_INT_H */
