/*
 * hnsw.h: the HNSW graph behind fl_index's approximate search (module
 * internal; index.c is its only user, the unit tests look inside).
 *
 * The graph does not own vectors: node s is slot s of the index's chunked row
 * storage, reached through a struct fl__hnsw_vecs view that index.c builds
 * for each call (the chunk table may move when the index grows). Slots
 * 0..n-1 are the graph's nodes, the same dense slots as the index's rows, so a
 * swap-remove in the index is a node relabelling in the graph.
 *
 * Every function here is called with the index's lock held: searches (and
 * the scratch pool) under the read side, everything that changes the graph
 * under the write side. See the essay in hnsw.c.
 */
#ifndef FL_INDEX_HNSW_H
#define FL_INDEX_HNSW_H

#include "index/index_int.h"

/* Row access for the graph: node s's vector is
 * chunks[s >> 10] + (s & 1023) * stride, and its int8 code (index_int.h) is
 * (int8_t *)chunks[s >> 10] + code_off + (s & 1023) * cstride. `neg` makes
 * the graph distance -dist (IP and cosine use -dot so that smaller is
 * better). Inserts measure with the floats; searches step through the codes
 * (when qdot is set) and re-score their best candidates with the floats. */
struct fl__hnsw_vecs {
    float *const *chunks; /* borrowed: the index's chunk table */
    size_t stride;        /* floats per row */
    size_t dim;           /* floats compared */
    fl_dist_fn dist;      /* one-to-one kernel: l2 or dot */
    bool neg;             /* graph distance = -dist */
    size_t code_off;      /* byte offset of the code rows in a chunk */
    size_t cstride;       /* bytes per code row */
    fl_qdot_fn qdot;      /* int8 kernel; NULL: searches use the floats too */
};

#define FL__HNSW_CHUNK_SHIFT 10 /* must equal index.c's CHUNK_SHIFT */
#define FL__HNSW_MAX_LEVEL   15 /* level draws are capped here */
#define FL__HNSW_M_MAX       64 /* largest accepted M (level 0 keeps 2M) */

static inline const float *fl__hnsw_row(const struct fl__hnsw_vecs *v, uint32_t s)
{
    return v->chunks[s >> FL__HNSW_CHUNK_SHIFT] +
           (size_t)(s & ((1u << FL__HNSW_CHUNK_SHIFT) - 1)) * v->stride;
}

static inline const int8_t *fl__hnsw_code(const struct fl__hnsw_vecs *v, uint32_t s)
{
    return (const int8_t *)v->chunks[s >> FL__HNSW_CHUNK_SHIFT] + v->code_off +
           (size_t)(s & ((1u << FL__HNSW_CHUNK_SHIFT) - 1)) * v->cstride;
}

/* One graph search candidate: slot and graph distance. */
struct fl__hnsw_cand {
    float d;
    uint32_t s;
};

struct fl__hnsw;
struct fl__hnsw_scratch;

/* New empty graph with M links per upper level (2M at level 0),
 * efConstruction and the level-draw seed. NULL with err on FL_ERR_NOMEM. */
struct fl__hnsw *fl__hnsw_new(unsigned m, unsigned ef_construction, uint64_t seed,
                              struct fl_err *err);
/* Free the graph, its links and every pooled scratch. NULL is a no-op. */
void fl__hnsw_free(struct fl__hnsw *g);

/* Nodes in the graph (slots 0..n-1). */
size_t fl__hnsw_count(const struct fl__hnsw *g);
/* Heap bytes held (links, node table, scratch). */
size_t fl__hnsw_memory_bytes(struct fl__hnsw *g);

/* Make room for n_total nodes (link storage and the writer's scratch). On
 * FL_ERR_NOMEM the graph is unchanged in content (capacity may have grown). */
enum fl_status fl__hnsw_reserve(struct fl__hnsw *g, size_t n_total, struct fl_err *err);

/* Prepare the next `count` new nodes (slots n..n+count-1): draw their levels
 * and allocate their upper-level link lists, so that fl__hnsw_append cannot
 * fail. Capacity must have been reserved. On FL_ERR_NOMEM every prepared node
 * is released and the level RNG restored: the graph is as before. */
enum fl_status fl__hnsw_prepare(struct fl__hnsw *g, size_t count, struct fl_err *err);

/* Release prepared nodes that will not be appended (slots >= n). */
void fl__hnsw_unprepare(struct fl__hnsw *g);

/* Link prepared node slot n into the graph (its vector already written);
 * n grows by one. Never allocates. */
void fl__hnsw_append(struct fl__hnsw *g, const struct fl__hnsw_vecs *v);

/* Replace: slot s (< n) is unlinked with neighbour repair, the caller writes
 * its new vector, then fl__hnsw_relink links it again at the same level. */
void fl__hnsw_unlink(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s);
void fl__hnsw_relink(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s);

/* Remove slot s: unlink with neighbour repair, then relabel node n-1 as s
 * (the index moves row n-1 into row s right after this call). n shrinks by
 * one. Never allocates. Must be called before the row is overwritten. */
void fl__hnsw_remove(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s);

/* Take a search scratch from the pool (allocating one, or growing its
 * visited set to the graph's size, if needed) and give it back. Returns NULL
 * on FL_ERR_NOMEM (the caller falls back to the exact scan). Read lock held. */
struct fl__hnsw_scratch *fl__hnsw_scratch_get(struct fl__hnsw *g, size_t ef);
void fl__hnsw_scratch_put(struct fl__hnsw *g, struct fl__hnsw_scratch *sc);

/* Approximate search: the graph walks with beam width ef (through the int8
 * codes when v->qdot is set), then the best `rerank` nodes it found get
 * their float distances; those, best first, go to *out (owned by sc, valid
 * until the scratch is put back), and their count (<= rerank, <= ef) is
 * returned. ef must be <= the ef given to fl__hnsw_scratch_get; rerank >= 1.
 * Read lock held; concurrent searches each use their own scratch. */
size_t fl__hnsw_search(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v,
                       struct fl__hnsw_scratch *sc, const float *q, size_t ef, size_t rerank,
                       const struct fl__hnsw_cand **out);

/* Check the graph's invariants: link counts within M (2M at level 0), links
 * in range, no self or repeated links, every link has its reverse at the same
 * level, links only between nodes that have that level, the entry point on
 * the top level. With `reachable`, also that every node is reachable from the
 * entry point. FL_OK or FL_ERR_CORRUPT with the first violation in err. */
enum fl_status fl__hnsw_check(const struct fl__hnsw *g, bool reachable, struct fl_err *err);

/* Snapshot support. Serialise the graph (parameters, rng, entry point, per
 * node level and links) by appending to b; parse it back from p[0..n) for a
 * graph of n_nodes nodes (advancing *off), validating everything. */
enum fl_status fl__hnsw_serialize(const struct fl__hnsw *g, struct fl_buf *b, struct fl_err *err);
struct fl__hnsw *fl__hnsw_deserialize(const uint8_t *p, size_t n, size_t *off, size_t n_nodes,
                                      struct fl_err *err);

/* Parameters the graph was built with. */
unsigned fl__hnsw_m(const struct fl__hnsw *g);
unsigned fl__hnsw_ef_construction(const struct fl__hnsw *g);

#endif /* FL_INDEX_HNSW_H */
