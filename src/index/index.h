/*
 * index.h: exact nearest-neighbour search over one collection's vectors
 * (library-internal; used by api/ and store/ glue).
 *
 * An fl_index holds (id, vector) pairs of one fixed dimension and one metric
 * and answers "the k nearest vectors to q, no farther than a threshold" by an
 * exact SIMD scan. It knows nothing about faces: ids are opaque 64-bit
 * integers chosen by the caller (any value, including 0 and UINT64_MAX), and
 * vectors are float32.
 *
 * Distances are "smaller is better" for every metric:
 *   FL_INDEX_L2      squared Euclidean distance, sum (a_i - b_i)^2 (dlib's
 *                    metric, without the square root).
 *   FL_INDEX_IP      negative inner product, -sum a_i b_i.
 *   FL_INDEX_COSINE  1 - cos(a, b), in [0, 2]. Vectors are normalised to unit
 *                    length on insert (fl_index_get returns the normalised
 *                    copy); queries need not be normalised.
 * A caller holding a similarity threshold converts it once: for cosine
 * max_distance = 1 - min_similarity, for IP max_distance = -min_similarity.
 *
 * The index is a rebuildable cache: the store is the source of truth. At
 * start-up the caller rebuilds it with fl_index_add_batch() from the store,
 * then applies every committed write with fl_index_add()/fl_index_remove().
 *
 * Threading: every function is safe to call concurrently on the same index
 * from any number of threads. Searches, gets, counts and iteration share a
 * per-index read lock; adds and removes take it exclusively (writers are
 * preferred, so a stream of searches cannot starve IndexFaces). See the essay
 * in index.c and docs/internals/index.md.
 *
 * Above a configurable size the index also keeps an HNSW graph and answers
 * approximately (fl_index_set_hnsw, fl_index_search_opt), and it can be saved
 * to and loaded from a checksummed snapshot (fl_index_save, fl_index_load).
 */
#ifndef FL_INDEX_H
#define FL_INDEX_H

#include "facelink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Persisted in the store and export manifest: append-only, explicit numbers. */
enum fl_index_metric {
    FL_INDEX_L2 = 0,     /* squared Euclidean */
    FL_INDEX_IP = 1,     /* negative inner product */
    FL_INDEX_COSINE = 2, /* 1 - cosine similarity; vectors normalised on insert */
};

#define FL_INDEX_DIM_MAX 4096 /* largest accepted dimension */
#define FL_INDEX_K_MAX   4096 /* largest accepted k in fl_index_search */

/* One search result. */
struct fl_index_hit {
    uint64_t id;    /* the caller's id */
    float distance; /* metric distance as above; smaller is better */
};

struct fl_index;

/* Create an empty index for vectors of dim floats (1..FL_INDEX_DIM_MAX).
 * Returns the index (caller frees with fl_index_free), or NULL with err set:
 * FL_ERR_INVALID_ARG for a bad dim or metric, FL_ERR_NOMEM. */
struct fl_index *fl_index_new(size_t dim, enum fl_index_metric metric, struct fl_err *err);

/* Free the index and every vector in it. NULL is a no-op. The caller must
 * ensure no other thread is using the index. */
void fl_index_free(struct fl_index *ix);

/* Dimension and metric given to fl_index_new. Thread-safe, lock-free. */
size_t fl_index_dim(const struct fl_index *ix);
enum fl_index_metric fl_index_metric(const struct fl_index *ix);

/* Insert vec (dim floats, borrowed, copied) under id, replacing the vector if
 * id is already present. Returns FL_OK; FL_ERR_INVALID_ARG if vec has a NaN or
 * infinity, or is all zeros under FL_INDEX_COSINE; FL_ERR_LIMIT past 2^32-2
 * vectors; FL_ERR_NOMEM. On any error the index is unchanged. Takes the write
 * lock. */
enum fl_status fl_index_add(struct fl_index *ix, uint64_t id, const float *vec, struct fl_err *err);

/* Insert n vectors (vecs: n * dim floats, row-major, borrowed) under ids[i];
 * the start-up rebuild path. Same rules as fl_index_add; a repeated id keeps
 * the last vector. All or nothing: on error the index is unchanged (every
 * vector is validated and all memory reserved before the first insert). One
 * write-lock hold for the whole batch. */
enum fl_status fl_index_add_batch(struct fl_index *ix, const uint64_t *ids, const float *vecs,
                                  size_t n, struct fl_err *err);

/* Remove id. Returns FL_OK or FL_ERR_NOT_FOUND. Never allocates, so it cannot
 * fail for lack of memory. Takes the write lock. */
enum fl_status fl_index_remove(struct fl_index *ix, uint64_t id, struct fl_err *err);

/* Number of vectors. Takes the read lock. */
size_t fl_index_count(struct fl_index *ix);

/* Copy id's stored vector (dim floats; normalised under cosine) into out_vec.
 * Returns FL_OK or FL_ERR_NOT_FOUND (out_vec untouched). Takes the read lock. */
enum fl_status fl_index_get(struct fl_index *ix, uint64_t id, float *out_vec, struct fl_err *err);

/* k-nearest search: exact below the HNSW threshold, from the graph above it
 * (fl_index_search_opt with NULL options; see there). q: dim floats (borrowed; any norm for cosine
 * but not zero). Returns in out_hits (caller-owned, room for k) the up to k vectors with distance
 * <= max_distance (INFINITY: no threshold), best first, ties broken by the smaller id; *out_n is
 * their count (0 is a success). exclude_id, if not NULL, names one id never to return (search by an
 * indexed face without finding itself). k is 1..FL_INDEX_K_MAX.
 * Returns FL_OK; FL_ERR_INVALID_ARG for a bad k, a NaN/infinite query, a zero
 * query under cosine, or a NaN max_distance. The exact scan never allocates;
 * a graph search may (its pooled scratch) and falls back to the scan if it
 * cannot. Takes the read lock: runs concurrently with other searches, waits
 * for writers. */
enum fl_status fl_index_search(struct fl_index *ix, const float *q, size_t k, float max_distance,
                               const uint64_t *exclude_id, struct fl_index_hit *out_hits,
                               size_t *out_n, struct fl_err *err);

/* ================================ HNSW ================================ */

/* Approximate search. Above a size threshold an index also keeps an HNSW
 * graph (src/index/hnsw.c) and fl_index_search answers from it; below it, and
 * whenever asked for, the exact scan. The graph is built (single-threaded,
 * under the write lock) when the count first reaches the threshold, kept
 * current by every add/replace/remove, and dropped when the count falls
 * below half the threshold. Defaults (fl_index_hnsw_defaults):
 *   threshold        20000 vectors (below it the exact scan takes < ~1 ms at
 *                    dim 128, and its answers are exact);
 *   m                16 links per node per level (32 on level 0);
 *   ef_construction  200;
 *   ef_search        see FL_INDEX_EF_SEARCH_DEFAULT (chosen so recall@10 >=
 *                    0.99 on the bench data, see docs/internals/index.md);
 *   ef_range         the starting ef of a search with a finite max_distance
 *                    (FL_INDEX_EF_RANGE_DEFAULT): the vectors within a range
 *                    are the near ones, which a narrower beam already finds
 *                    (the far end of a top-k is what needs ef_search);
 *                    measured on LFW's faces in docs/internals/index.md;
 *   seed             level draws (reproducible graphs). */
#define FL_INDEX_HNSW_THRESHOLD_DEFAULT 20000
#define FL_INDEX_EF_SEARCH_DEFAULT      192
#define FL_INDEX_EF_RANGE_DEFAULT       64
#define FL_INDEX_EF_MAX                 100000 /* largest ef_construction / ef_search / ef */

struct fl_index_hnsw_params {
    size_t threshold;         /* graph when count >= threshold; SIZE_MAX: never */
    unsigned m;               /* 2..64 */
    unsigned ef_construction; /* 1..FL_INDEX_EF_MAX */
    unsigned ef_search;       /* 1..FL_INDEX_EF_MAX; raised to k per search */
    unsigned ef_range;        /* 1..FL_INDEX_EF_MAX; ef_search's part for range searches */
    uint64_t seed;            /* level-draw seed */
};

/* Fill p with the defaults above. */
void fl_index_hnsw_defaults(struct fl_index_hnsw_params *p);

/* Set the graph parameters (copied). threshold, ef_search and ef_range apply at once;
 * a change of m, ef_construction or seed drops the graph and rebuilds it with
 * the new values if the count is at or above the threshold. Returns FL_OK,
 * FL_ERR_INVALID_ARG for values out of range, or FL_ERR_NOMEM (building the
 * graph; the index then answers exactly until the next write retries). Takes
 * the write lock. */
enum fl_status fl_index_set_hnsw(struct fl_index *ix, const struct fl_index_hnsw_params *p,
                                 struct fl_err *err);

/* True if the index currently holds a graph. Takes the read lock. */
bool fl_index_has_graph(struct fl_index *ix);

enum fl_index_search_mode {
    FL_INDEX_SEARCH_AUTO = 0,   /* graph if present and count >= threshold, else exact */
    FL_INDEX_SEARCH_EXACT = 1,  /* always the exact scan */
    FL_INDEX_SEARCH_APPROX = 2, /* graph whenever one exists, else exact */
};

struct fl_index_search_opts {
    enum fl_index_search_mode mode;
    size_t ef; /* beam width; 0: the index's ef_search (ef_range when max_distance is
                  finite). Capped at FL_INDEX_EF_MAX, then raised to k (+1 with exclude). */
};

/* fl_index_search with options (NULL opts: AUTO, default ef). Same contract,
 * except that a graph search returns approximate neighbours: every hit is a
 * stored vector with its exact distance (bit-identical to the exact scan's),
 * but some true neighbours may be missed. A graph search takes a search
 * scratch from the index's pool, allocating one the first time a thread
 * count is reached; if that allocation fails it falls back to the exact
 * scan, so it never fails for memory. */
enum fl_status fl_index_search_opt(struct fl_index *ix, const float *q, size_t k,
                                   float max_distance, const uint64_t *exclude_id,
                                   const struct fl_index_search_opts *opts,
                                   struct fl_index_hit *out_hits, size_t *out_n,
                                   struct fl_err *err);

/* ============================== Snapshots ============================== */

/* A snapshot holds every (id, vector) and the graph if there is one, so a
 * restart can skip both the store read and the graph build. The caller
 * supplies `generation` (the store's change sequence at the time) and gives
 * the expected one to the loader, which rejects a stale file.
 *
 * Format (little-endian): magic "FLIXSNAP", u32 version (1), u32 dim,
 * u32 metric, u32 flags (bit 0: graph present), u64 count, u64 generation,
 * count x (u64 id, dim x f32), the graph section if present (hnsw.c), then
 * SHA-256 of everything before it (32 bytes). */

/* Serialise ix into a fresh buffer (*out, *out_len; caller fl_free()s).
 * Takes the read lock. FL_ERR_NOMEM. */
enum fl_status fl_index_save_mem(struct fl_index *ix, uint64_t generation, uint8_t **out,
                                 size_t *out_len, struct fl_err *err);
/* The same, written atomically to path (FL_ERR_IO). */
enum fl_status fl_index_save(struct fl_index *ix, const char *path, uint64_t generation,
                             struct fl_err *err);

/* Build a new index from a snapshot (p borrowed). params (NULL: defaults)
 * gives threshold and ef_search; m and ef_construction come from the file
 * when it has a graph. Any damage, a checksum mismatch, a different dim,
 * metric or generation, duplicate ids, non-finite values, or a graph that
 * breaks an invariant (fl__hnsw_check) gives NULL with FL_ERR_CORRUPT: the
 * caller then rebuilds from the store. FL_ERR_NOMEM. */
struct fl_index *fl_index_load_mem(const uint8_t *p, size_t n, size_t dim,
                                   enum fl_index_metric metric, uint64_t generation,
                                   const struct fl_index_hnsw_params *params, struct fl_err *err);
/* The same from a file: FL_ERR_NOT_FOUND if absent, FL_ERR_IO. */
struct fl_index *fl_index_load(const char *path, size_t dim, enum fl_index_metric metric,
                               uint64_t generation, const struct fl_index_hnsw_params *params,
                               struct fl_err *err);

/* Iteration callback: id and its stored vector (dim floats, borrowed for the
 * duration of the call only). Return true to continue, false to stop. */
typedef bool (*fl_index_visit_fn)(void *ctx, uint64_t id, const float *vec);

/* Call fn for every vector, in storage order (unspecified, not stable across
 * writes). Holds the read lock for the whole walk: fn must not call any
 * locking fl_index_* function on the same index (a write would deadlock, and
 * so can a second read lock once a writer is queued, since writers are
 * preferred) and should be quick, since writers wait. Returns the number of
 * vectors visited (including the one for which fn returned false). */
size_t fl_index_foreach(struct fl_index *ix, fl_index_visit_fn fn, void *ctx);

/* Bytes of heap the index holds (vectors, ids, hash table). Read lock. */
size_t fl_index_memory_bytes(struct fl_index *ix);

/* Name of the distance kernels in use: "scalar", "avx2" or "avx512". */
const char *fl_index_isa_name(void);

#ifdef __cplusplus
}
#endif

#endif /* FL_INDEX_H */
