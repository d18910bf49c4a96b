/*
 * index.c: the per-collection vector index: storage, exact scan, and the
 * switch to the HNSW graph (hnsw.c) above a size threshold; snapshots.
 *
 * What. A set of (id, vector) pairs with one dimension and one metric, and an
 * exact k-nearest search by a linear SIMD scan. At face-collection sizes (up
 * to a few million vectors of 128-512 floats) an exact scan streams memory at
 * close to the machine's bandwidth and needs no tuning, gives exact answers
 * and costs nothing to update; but it is O(N) per query. From a configurable
 * count (default 20,000) the index also keeps an HNSW graph over the same
 * rows and answers from it (approximate, ~20x fewer bytes touched at 200k);
 * the exact scan stays available per search (FL_INDEX_SEARCH_EXACT) and is
 * the graph's recall reference in the tests.
 *
 * Graph. Node s of the graph is slot s, so the graph reads the rows in place
 * (no second copy of the vectors). add appends a node (its level drawn and
 * its upper lists allocated first, with the rows, so an add is still all or
 * nothing), replace unlinks and relinks the slot, remove unlinks it with
 * neighbour repair and relabels the last node into the hole, mirroring the
 * swap-remove of the rows. The graph is built in one go when the count first
 * reaches the threshold (under the write lock: the start-up rebuild holds it
 * for the build; a snapshot avoids that) and freed when the count drops
 * below half of it (hysteresis, so a count hovering at the threshold does not
 * rebuild over and over). Search results from the graph are re-scored with
 * the scan's own formula, so their distances are bit-identical to the exact
 * scan's.
 *
 * Snapshots. fl_index_save writes ids, rows and graph with the caller's
 * generation and a SHA-256; fl_index_load checks everything (checksum,
 * header, ids unique, values finite, cosine rows unit, every graph invariant)
 * and answers FL_ERR_CORRUPT otherwise, so a damaged or stale file costs a
 * rebuild, never a wrong answer.
 *
 * Storage. Vectors live in chunks of CHUNK_ROWS rows. Each chunk is one
 * 64-byte aligned allocation: CHUNK_ROWS rows of `stride` floats (dim rounded
 * up to 16 floats, one cache line, zero-padded) followed by the CHUNK_ROWS ids
 * of those rows and their CHUNK_ROWS int8 codes (quant.c: a quarter of the
 * bytes, for the graph search to step through; written with every row).
 * Slots 0..n-1 are dense: slot s is row s % CHUNK_ROWS of chunk
 * s / CHUNK_ROWS. Dense slots make the scan a pure forward stream (the
 * hardware prefetcher's best case), and chunking means growth never copies
 * the vectors (a single realloc'd array of 1M x 512 B would copy 512 MB and
 * need twice the memory during the copy) and never moves a row under a
 * reader. Removal is a swap-remove: the last slot's row, code and id move into the
 * hole, so slots stay dense without a free list or tombstones to skip.
 *
 * An open-addressing hash map (linear probing, load <= 1/2, backward-shift
 * deletion so there are no tombstones) maps id -> slot for replace, remove and
 * get. It is our own because ids are arbitrary uint64 (0 and UINT64_MAX are
 * valid ids too), so emptiness is marked by slot1 == 0, where slot1 = slot + 1.
 *
 * Invariants (checked by the tests through the public API):
 *   - n <= n_chunks * CHUNK_ROWS, and at most one chunk past the last used
 *     one is kept (the spare avoids alloc/free thrash at a chunk boundary);
 *   - for every slot s < n: map[ids[s]] == s, and the map holds exactly n ids;
 *   - the padding floats of every used row are zero (kernels see only dim, but
 *     a future kernel may read whole cache lines);
 *   - under FL_INDEX_COSINE every stored row has unit norm (up to rounding).
 *
 * Failure. Every allocation an add needs (map growth, new chunk, graph room
 * and prepared graph nodes) happens before the first change, so FL_ERR_NOMEM
 * leaves the index as it was. remove never allocates. The exact search never
 * allocates: its heap lives in the caller's output array and its distance
 * block on the stack; a graph search takes a pooled scratch and scans exactly
 * if it cannot get one.
 *
 * Threading model. One pthread rwlock per index:
 *   - search, get, count, foreach, memory_bytes take the read side and run in
 *     parallel with each other;
 *   - add, add_batch, remove take the write side: a writer waits for running
 *     searches to end and blocks new ones while it works (microseconds: a copy
 *     of one row and a few hash probes; a batch holds it for the batch);
 *   - the lock prefers writers (glibc's PREFER_WRITER_NONRECURSIVE kind) so a
 *     steady stream of searches cannot starve IndexFaces/DeleteFaces. The
 *     price: a thread must not take the read lock twice (we never do).
 *   - dim, metric and the kernel table are immutable after fl_index_new and
 *     read without the lock.
 * Validation and cosine normalisation of inputs happen before the lock.
 * Rejected alternatives: a single mutex (serialises searches, which are the
 * common, long operation); RCU or copy-on-write snapshots (a whole-index copy
 * per write at 512 MB is too costly, and per-chunk versioning would make the
 * scan pay for writes that are rare); Redis vset's approach of running every
 * write on one thread works there because Redis has one main thread, we do
 * not. A search therefore sees the index as it was between two writes: every
 * hit it returns was present, with that vector, at one moment.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */

#include "index/hnsw.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define CHUNK_SHIFT 10
#define CHUNK_ROWS  ((size_t)1 << CHUNK_SHIFT) /* rows per chunk */
#define BLOCK_ROWS  256                        /* rows per kernel call: out[] stays in L1 */
#define ROW_ALIGN   16                         /* floats: 64 bytes */
#define SLOTS_MAX   ((size_t)UINT32_MAX - 1)   /* slot + 1 must fit the map's uint32 */
#define RERANK_EXTRA 16                        /* graph candidates re-scored beyond 2k */

/* ============================== Id -> slot map ============================== */

struct map_entry {
    uint64_t id;    /* valid when slot1 != 0 */
    uint32_t slot1; /* slot + 1; 0 = empty */
};

struct idmap {
    struct map_entry *e; /* owned; cap entries, or NULL while cap == 0 */
    size_t cap;          /* 0 or a power of two */
    size_t n;            /* live entries, <= cap / 2 */
};

/* splitmix64's finaliser: ids may be sequential or clustered. */
static inline size_t map_home(const struct idmap *m, uint64_t id)
{
    uint64_t z = id + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (size_t)z & (m->cap - 1);
}

/* The entry for id, or NULL. */
static struct map_entry *map_find(const struct idmap *m, uint64_t id)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = map_home(m, id);; i = (i + 1) & (m->cap - 1)) {
        struct map_entry *e = &m->e[i];
        if (e->slot1 == 0)
            return NULL;
        if (e->id == id)
            return e;
    }
}

/* Insert id (absent) -> slot; the caller has reserved room. */
static void map_insert(struct idmap *m, uint64_t id, size_t slot)
{
    FL_ASSERT(m->cap != 0 && (m->n + 1) * 2 <= m->cap);
    size_t i = map_home(m, id);
    while (m->e[i].slot1 != 0)
        i = (i + 1) & (m->cap - 1);
    m->e[i].id = id;
    m->e[i].slot1 = (uint32_t)(slot + 1);
    m->n++;
}

/* Delete the entry e points at, shifting later entries of its probe run back
 * so lookups never need tombstones. */
static void map_delete(struct idmap *m, struct map_entry *e)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)(e - m->e);
    size_t j = i;
    m->e[i].slot1 = 0;
    m->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (m->e[j].slot1 == 0)
            return;
        size_t h = map_home(m, m->e[j].id);
        /* Entry j may stay if its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (stays)
            continue;
        m->e[i] = m->e[j];
        m->e[j].slot1 = 0;
        i = j;
    }
}

/* Make room for n_total entries at load <= 1/2. FL_ERR_NOMEM leaves m as it
 * was. */
static enum fl_status map_reserve(struct idmap *m, size_t n_total, struct fl_err *err)
{
    size_t want, cap = 16, bytes;
    struct map_entry *e;
    if (!fl_size_mul(n_total, 2, &want))
        return fl_err_set(err, FL_ERR_LIMIT, "index: too many vectors");
    if (want <= m->cap)
        return FL_OK;
    while (cap < want)
        cap *= 2; /* want <= 2 * SLOTS_MAX, so this cannot overflow */
    if (!fl_size_mul(cap, sizeof(*e), &bytes))
        return fl_err_set(err, FL_ERR_LIMIT, "index: hash map too large");
    e = fl_calloc(cap, sizeof(*e));
    if (!e)
        return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory growing the id map");
    struct idmap nm = {.e = e, .cap = cap, .n = 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].slot1 != 0)
            map_insert(&nm, m->e[i].id, m->e[i].slot1 - 1);
    }
    fl_free(m->e);
    *m = nm;
    return FL_OK;
}

/* ================================ The index ================================ */

struct fl_index {
    pthread_rwlock_t lock;
    size_t dim;                        /* floats per vector, 1..FL_INDEX_DIM_MAX */
    size_t stride;                     /* floats per stored row: dim rounded up to 16 */
    size_t cstride;                    /* bytes per int8 code row (fl__index_code_stride) */
    size_t code_off;                   /* byte offset of the code rows in a chunk */
    size_t chunk_bytes;                /* bytes of one chunk: rows, ids, code rows */
    size_t chunk_alloc;                /* bytes allocated per chunk (chunk_alloc()) */
    enum fl_index_metric metric;       /* immutable */
    const struct fl__index_dist *kern; /* immutable; chosen at run time */
    size_t n;                          /* vectors held; slots 0..n-1 are used */
    float **chunks;                    /* owned; n_chunks live, each fl_free_aligned */
    size_t n_chunks;                   /* allocated chunks */
    size_t cap_chunks;                 /* room in chunks[] */
    struct idmap map;                  /* id -> slot */
    struct fl_index_hnsw_params hp;    /* graph parameters */
    struct fl__hnsw *g;                /* owned; the graph, or NULL (below the threshold) */
};

_Static_assert(CHUNK_SHIFT == FL__HNSW_CHUNK_SHIFT, "graph and rows must chunk alike");

/* The graph's view of the rows (rebuilt per call: chunks may move). */
static struct fl__hnsw_vecs vecs_view(const struct fl_index *ix)
{
    return (struct fl__hnsw_vecs){
        .chunks = ix->chunks,
        .stride = ix->stride,
        .dim = ix->dim,
        .dist = ix->metric == FL_INDEX_L2 ? ix->kern->l2 : ix->kern->dot,
        .neg = ix->metric != FL_INDEX_L2,
        .code_off = ix->code_off,
        .cstride = ix->cstride,
        .qdot = ix->kern->qdot,
    };
}

static inline float *slot_row(const struct fl_index *ix, size_t slot)
{
    return ix->chunks[slot >> CHUNK_SHIFT] + (slot & (CHUNK_ROWS - 1)) * ix->stride;
}

static inline uint64_t *chunk_ids(const struct fl_index *ix, const float *chunk)
{
    return (uint64_t *)(void *)(chunk + CHUNK_ROWS * ix->stride);
}

static inline uint64_t *slot_id(const struct fl_index *ix, size_t slot)
{
    return chunk_ids(ix, ix->chunks[slot >> CHUNK_SHIFT]) + (slot & (CHUNK_ROWS - 1));
}

static inline int8_t *slot_code(const struct fl_index *ix, size_t slot)
{
    return (int8_t *)ix->chunks[slot >> CHUNK_SHIFT] + ix->code_off +
           (slot & (CHUNK_ROWS - 1)) * ix->cstride;
}

static void rdlock(struct fl_index *ix)
{
    int rc = pthread_rwlock_rdlock(&ix->lock);
    FL_ASSERT(rc == 0);
}

static void wrlock(struct fl_index *ix)
{
    int rc = pthread_rwlock_wrlock(&ix->lock);
    FL_ASSERT(rc == 0);
}

static void unlock(struct fl_index *ix)
{
    int rc = pthread_rwlock_unlock(&ix->lock);
    FL_ASSERT(rc == 0);
}

/* One chunk. A graph search reads rows and codes at random, and with 4 KiB
 * pages nearly every one of those reads is a TLB miss (a page walk, costly
 * in a VM) on top of the cache miss. So a chunk is put on 2 MiB pages when
 * rounding it up to whole 2 MiB costs at most a quarter more memory (320
 * floats a row: 1.67 MiB -> 2 MiB); measured on 100,000 x 320, the int8
 * codes on huge pages make a search 1.1-1.4x faster (bench/random_read.c,
 * bench/range_recall.c: docs/internals/index.md). Other sizes get plain
 * memory. */
#define HUGE_PAGE ((size_t)2 << 20)

static size_t chunk_alloc_bytes(size_t chunk_bytes)
{
    size_t rounded = (chunk_bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    return rounded - chunk_bytes > chunk_bytes / 4 ? chunk_bytes : rounded;
}

static float *chunk_alloc(const struct fl_index *ix)
{
    if (ix->chunk_alloc == ix->chunk_bytes)
        return fl_malloc_aligned(ix->chunk_bytes, 64);
    float *c = fl_malloc_aligned(ix->chunk_alloc, HUGE_PAGE);
    if (c)
        fl_advise_huge(c, ix->chunk_alloc);
    return c;
}

struct fl_index *fl_index_new(size_t dim, enum fl_index_metric metric, struct fl_err *err)
{
    struct fl_index *ix = NULL;
    pthread_rwlockattr_t attr;
    if (dim < 1 || dim > FL_INDEX_DIM_MAX) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "index: dimension %zu outside 1..%d", dim,
                   FL_INDEX_DIM_MAX);
        return NULL;
    }
    if (metric != FL_INDEX_L2 && metric != FL_INDEX_IP && metric != FL_INDEX_COSINE) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "index: unknown metric %d", (int)metric);
        return NULL;
    }
    ix = fl_calloc(1, sizeof(*ix));
    if (!ix) {
        fl_err_set(err, FL_ERR_NOMEM, "index: out of memory");
        return NULL;
    }
    ix->dim = dim;
    ix->stride = (dim + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    ix->cstride = fl__index_code_stride(dim);
    /* dim <= 4096, so these products are small: no overflow possible. Every
     * part is a multiple of 64 bytes, so the code rows stay line-aligned. */
    ix->code_off = CHUNK_ROWS * ix->stride * sizeof(float) + CHUNK_ROWS * sizeof(uint64_t);
    ix->chunk_bytes = ix->code_off + CHUNK_ROWS * ix->cstride;
    ix->chunk_alloc = chunk_alloc_bytes(ix->chunk_bytes);
    ix->metric = metric;
    ix->kern = fl__index_dist_active();
    fl_index_hnsw_defaults(&ix->hp);
    if (pthread_rwlockattr_init(&attr) != 0) {
        fl_free(ix);
        fl_err_set(err, FL_ERR_NOMEM, "index: cannot create lock attributes");
        return NULL;
    }
#if defined(__GLIBC__)
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    if (pthread_rwlock_init(&ix->lock, &attr) != 0) {
        pthread_rwlockattr_destroy(&attr);
        fl_free(ix);
        fl_err_set(err, FL_ERR_NOMEM, "index: cannot create lock");
        return NULL;
    }
    pthread_rwlockattr_destroy(&attr);
    return ix;
}

void fl_index_free(struct fl_index *ix)
{
    if (!ix)
        return;
    for (size_t c = 0; c < ix->n_chunks; c++)
        fl_free_aligned(ix->chunks[c]);
    fl_free(ix->chunks);
    fl_free(ix->map.e);
    fl__hnsw_free(ix->g);
    pthread_rwlock_destroy(&ix->lock);
    fl_free(ix);
}

size_t fl_index_dim(const struct fl_index *ix)
{
    return ix->dim;
}

enum fl_index_metric fl_index_metric(const struct fl_index *ix)
{
    return ix->metric;
}

/* Check one input vector: finite, and not zero (or denormal-tiny) under cosine. On success
 * *out_scale is what to multiply it by before storing (1, or 1/norm under
 * cosine; the norm is summed in double so huge floats cannot overflow it). */
static enum fl_status check_vec(const struct fl_index *ix, const float *v, float *out_scale,
                                struct fl_err *err)
{
    double ss = 0.0;
    for (size_t i = 0; i < ix->dim; i++) {
        if (!isfinite(v[i]))
            return fl_err_set(err, FL_ERR_INVALID_ARG, "index: vector element %zu is not finite",
                              i);
        ss += (double)v[i] * (double)v[i];
    }
    *out_scale = 1.0f;
    if (ix->metric == FL_INDEX_COSINE) {
        float inv = (float)(1.0 / sqrt(ss));
        if (ss == 0.0)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "index: zero vector has no direction");
        /* Norms below ~3e-39 have no float inverse: such a vector cannot be
         * scaled to unit length (nor used as a query) without overflow. */
        if (!isfinite(inv))
            return fl_err_set(err, FL_ERR_INVALID_ARG, "index: vector norm too small to normalise");
        *out_scale = inv;
    }
    return FL_OK;
}

/* Write v (times scale) into slot's row, zeroing the padding, and its code. */
static void write_row(struct fl_index *ix, size_t slot, const float *v, float scale)
{
    float *row = slot_row(ix, slot);
    if (scale == 1.0f) {
        memcpy(row, v, ix->dim * sizeof(float));
    } else {
        for (size_t i = 0; i < ix->dim; i++)
            row[i] = v[i] * scale;
    }
    memset(row + ix->dim, 0, (ix->stride - ix->dim) * sizeof(float));
    fl__index_quantize(row, ix->dim, slot_code(ix, slot));
}

/* Make room for n_total vectors: map capacity and chunks. Write lock held.
 * On failure nothing observable changes (chunks already allocated stay as
 * spares, owned by the index). */
static enum fl_status reserve(struct fl_index *ix, size_t n_total, struct fl_err *err)
{
    enum fl_status rc;
    size_t need;
    if (n_total > SLOTS_MAX)
        return fl_err_set(err, FL_ERR_LIMIT, "index: more than %zu vectors", SLOTS_MAX);
    need = (n_total + CHUNK_ROWS - 1) / CHUNK_ROWS;
    if (need > ix->cap_chunks) {
        size_t cap = ix->cap_chunks ? ix->cap_chunks : 4;
        float **nc;
        while (cap < need)
            cap *= 2;
        nc = fl_realloc(ix->chunks, cap * sizeof(*nc));
        if (!nc)
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory growing chunk table");
        ix->chunks = nc;
        ix->cap_chunks = cap;
    }
    while (ix->n_chunks < need) {
        float *c = chunk_alloc(ix);
        if (!c)
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for vectors");
        ix->chunks[ix->n_chunks++] = c;
    }
    rc = map_reserve(&ix->map, n_total, err);
    return rc;
}

/* Insert or replace one validated vector. Room reserved (and, with a graph,
 * a prepared graph node for a new id); write lock held. */
static void put(struct fl_index *ix, uint64_t id, const float *v, float scale)
{
    struct map_entry *e = map_find(&ix->map, id);
    struct fl__hnsw_vecs vv;
    if (e) {
        uint32_t slot = e->slot1 - 1;
        if (ix->g) {
            vv = vecs_view(ix);
            fl__hnsw_unlink(ix->g, &vv, slot);
        }
        write_row(ix, slot, v, scale);
        if (ix->g)
            fl__hnsw_relink(ix->g, &vv, slot);
        return;
    }
    FL_ASSERT(ix->n < ix->n_chunks * CHUNK_ROWS);
    write_row(ix, ix->n, v, scale);
    *slot_id(ix, ix->n) = id;
    map_insert(&ix->map, id, ix->n);
    ix->n++;
    if (ix->g) {
        vv = vecs_view(ix);
        fl__hnsw_append(ix->g, &vv);
    }
}

/* Build the graph over every stored vector (write lock held). On failure
 * there is no graph and searches stay exact. */
static enum fl_status build_graph(struct fl_index *ix, struct fl_err *err)
{
    enum fl_status rc;
    struct fl__hnsw_vecs vv = vecs_view(ix);
    struct fl__hnsw *g = fl__hnsw_new(ix->hp.m, ix->hp.ef_construction, ix->hp.seed, err);
    if (!g)
        return err ? err->code : FL_ERR_NOMEM;
    rc = fl__hnsw_reserve(g, ix->n, err);
    if (rc == FL_OK)
        rc = fl__hnsw_prepare(g, ix->n, err);
    if (rc != FL_OK) {
        fl__hnsw_free(g);
        return rc;
    }
    for (size_t s = 0; s < ix->n; s++)
        fl__hnsw_append(g, &vv);
    ix->g = g;
    return FL_OK;
}

/* After a write: build the graph when the count reached the threshold, drop
 * it when the count fell below half of it. Write lock held. A failed build
 * is logged; the write itself has succeeded and searches stay exact. */
static void graph_follow_count(struct fl_index *ix)
{
    if (!ix->g && ix->hp.threshold != SIZE_MAX && ix->n >= ix->hp.threshold && ix->n > 0) {
        struct fl_err e = {0};
        if (build_graph(ix, &e) != FL_OK)
            FL_LOG_W("index: cannot build the graph (%s); searching exactly", e.msg);
    } else if (ix->g && ix->n < ix->hp.threshold / 2) {
        fl__hnsw_free(ix->g);
        ix->g = NULL;
    }
}

/* Reserve graph room and prepare up to `count` new nodes, when there is a
 * graph. Write lock held; on failure the graph is unchanged. */
static enum fl_status graph_reserve(struct fl_index *ix, size_t n_total, size_t count,
                                    struct fl_err *err)
{
    enum fl_status rc;
    if (!ix->g || count == 0)
        return FL_OK;
    rc = fl__hnsw_reserve(ix->g, n_total, err);
    if (rc == FL_OK)
        rc = fl__hnsw_prepare(ix->g, count, err);
    return rc;
}

enum fl_status fl_index_add(struct fl_index *ix, uint64_t id, const float *vec, struct fl_err *err)
{
    enum fl_status rc;
    float scale;
    rc = check_vec(ix, vec, &scale, err);
    if (rc != FL_OK)
        return rc;
    wrlock(ix);
    if (!map_find(&ix->map, id)) {
        rc = reserve(ix, ix->n + 1, err);
        if (rc == FL_OK)
            rc = graph_reserve(ix, ix->n + 1, 1, err);
        if (rc != FL_OK)
            goto out;
    }
    put(ix, id, vec, scale);
    graph_follow_count(ix);
out:
    unlock(ix);
    return rc;
}

enum fl_status fl_index_add_batch(struct fl_index *ix, const uint64_t *ids, const float *vecs,
                                  size_t n, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    size_t total;
    float scale;
    if (n == 0)
        return FL_OK;
    for (size_t i = 0; i < n; i++) {
        rc = check_vec(ix, vecs + i * ix->dim, &scale, err);
        if (rc != FL_OK)
            return rc;
    }
    wrlock(ix);
    /* ix->n + n is an upper bound on the slots needed (ids already present or
     * repeated need none). Only near the limit is it worth counting exactly. */
    if (!fl_size_add(ix->n, n, &total) || total > SLOTS_MAX) {
        size_t n_new = 0;
        for (size_t i = 0; i < n; i++)
            n_new += map_find(&ix->map, ids[i]) == NULL;
        total = ix->n + n_new; /* repeats within the batch still over-count: safe */
    }
    rc = reserve(ix, total, err);
    if (rc == FL_OK)
        rc = graph_reserve(ix, total, total - ix->n, err);
    if (rc != FL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * ix->dim;
        (void)check_vec(ix, v, &scale, NULL);
        put(ix, ids[i], v, scale);
    }
    if (ix->g)
        fl__hnsw_unprepare(ix->g); /* nodes prepared for ids that were replaced */
    graph_follow_count(ix);
out:
    unlock(ix);
    return rc;
}

enum fl_status fl_index_remove(struct fl_index *ix, uint64_t id, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct map_entry *e;
    size_t slot, last, need;
    wrlock(ix);
    e = map_find(&ix->map, id);
    if (!e) {
        rc =
            fl_err_set(err, FL_ERR_NOT_FOUND, "index: id %llu not present", (unsigned long long)id);
        goto out;
    }
    slot = e->slot1 - 1;
    last = ix->n - 1;
    if (ix->g) {
        struct fl__hnsw_vecs vv = vecs_view(ix);
        fl__hnsw_remove(ix->g, &vv, (uint32_t)slot); /* before the rows move */
    }
    map_delete(&ix->map, e);
    if (slot != last) {
        uint64_t moved = *slot_id(ix, last);
        struct map_entry *me;
        memcpy(slot_row(ix, slot), slot_row(ix, last), ix->stride * sizeof(float));
        memcpy(slot_code(ix, slot), slot_code(ix, last), ix->cstride);
        *slot_id(ix, slot) = moved;
        me = map_find(&ix->map, moved);
        FL_ASSERT(me != NULL);
        me->slot1 = (uint32_t)(slot + 1);
    }
    ix->n--;
    /* Keep one spare chunk past the last used one, free the rest. */
    need = (ix->n + CHUNK_ROWS - 1) / CHUNK_ROWS;
    while (ix->n_chunks > need + 1)
        fl_free_aligned(ix->chunks[--ix->n_chunks]);
    graph_follow_count(ix);
out:
    unlock(ix);
    return rc;
}

size_t fl_index_count(struct fl_index *ix)
{
    size_t n;
    rdlock(ix);
    n = ix->n;
    unlock(ix);
    return n;
}

enum fl_status fl_index_get(struct fl_index *ix, uint64_t id, float *out_vec, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct map_entry *e;
    rdlock(ix);
    e = map_find(&ix->map, id);
    if (!e) {
        rc =
            fl_err_set(err, FL_ERR_NOT_FOUND, "index: id %llu not present", (unsigned long long)id);
        goto out;
    }
    memcpy(out_vec, slot_row(ix, e->slot1 - 1), ix->dim * sizeof(float));
out:
    unlock(ix);
    return rc;
}

/* Scan rows [0, n) of one chunk into the selector. raw distances come from
 * the batched kernel BLOCK_ROWS at a time; `sign`/`offset` turn them into
 * metric distances (L2: 0 + 1*raw; IP: 0 - raw; cosine: 1 - raw/|q|). */
static void scan_chunk(const struct fl_index *ix, const float *chunk, size_t n, const float *q,
                       float offset, float scale, const uint64_t *exclude_id,
                       struct fl__index_topk *t)
{
    float raw[BLOCK_ROWS];
    const uint64_t *ids = chunk_ids(ix, chunk);
    fl_dist_batch_fn batch = ix->metric == FL_INDEX_L2 ? ix->kern->l2_batch : ix->kern->dot_batch;
    float bound = fl__index_topk_bound(t);
    for (size_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
        size_t nb = FL_MIN((size_t)BLOCK_ROWS, n - r0);
        batch(q, chunk + r0 * ix->stride, nb, ix->dim, ix->stride, raw);
        for (size_t r = 0; r < nb; r++) {
            float d = offset + scale * raw[r];
            if (!(d <= bound))
                continue;
            if (exclude_id && ids[r0 + r] == *exclude_id)
                continue;
            fl__index_topk_push(t, ids[r0 + r], d);
            bound = fl__index_topk_bound(t);
        }
    }
}

/* Graph search into the selector. Read lock held. Returns false if no
 * scratch could be had (the caller scans exactly instead). */
static bool search_graph(struct fl_index *ix, const float *q, size_t ef, float offset, float scale,
                         const uint64_t *exclude_id, struct fl__index_topk *t)
{
    const struct fl__hnsw_cand *c;
    struct fl__hnsw_vecs vv = vecs_view(ix);
    struct fl__hnsw_scratch *sc = fl__hnsw_scratch_get(ix->g, ef);
    /* The walk ranks by int8 codes; its best 2k + 16 are re-scored with the
     * floats. The codes' error (under 1e-3 of a cosine, test_index_dist)
     * only reorders candidates about that close, so the exact top k is
     * among them: recall@10 on 100,000 x 320 is the same as walking the
     * floats (0.982 at ef 192). */
    size_t want = t->k + (exclude_id != NULL), rerank = FL_MIN(ef, 2 * want + RERANK_EXTRA);
    if (!sc)
        return false;
    size_t nc = fl__hnsw_search(ix->g, &vv, sc, q, ef, rerank, &c);
    for (size_t i = 0; i < nc; i++) {
        uint64_t id = *slot_id(ix, c[i].s);
        /* The graph distance is l2 or -dot; turn it into the metric's
         * distance exactly as the scan does (offset + scale * raw). */
        float raw = ix->metric == FL_INDEX_L2 ? c[i].d : -c[i].d;
        if (exclude_id && id == *exclude_id)
            continue;
        fl__index_topk_push(t, id, offset + scale * raw);
    }
    fl__hnsw_scratch_put(ix->g, sc);
    return true;
}

enum fl_status fl_index_search(struct fl_index *ix, const float *q, size_t k, float max_distance,
                               const uint64_t *exclude_id, struct fl_index_hit *out_hits,
                               size_t *out_n, struct fl_err *err)
{
    return fl_index_search_opt(ix, q, k, max_distance, exclude_id, NULL, out_hits, out_n, err);
}

enum fl_status fl_index_search_opt(struct fl_index *ix, const float *q, size_t k,
                                   float max_distance, const uint64_t *exclude_id,
                                   const struct fl_index_search_opts *opts,
                                   struct fl_index_hit *out_hits, size_t *out_n, struct fl_err *err)
{
    enum fl_index_search_mode mode = opts ? opts->mode : FL_INDEX_SEARCH_AUTO;
    size_t ef;
    bool graph;
    struct fl__index_topk t;
    float offset = 0.0f, scale = 1.0f, unused;
    enum fl_status rc;
    if (k < 1 || k > FL_INDEX_K_MAX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "index: k %zu outside 1..%d", k, FL_INDEX_K_MAX);
    if (isnan(max_distance))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "index: threshold is NaN");
    rc = check_vec(ix, q, &unused, err);
    if (rc != FL_OK)
        return rc;
    if (ix->metric == FL_INDEX_IP) {
        scale = -1.0f;
    } else if (ix->metric == FL_INDEX_COSINE) {
        offset = 1.0f;
        scale = -unused; /* 1 - dot(q, v) / |q| */
    }
    if (mode != FL_INDEX_SEARCH_AUTO && mode != FL_INDEX_SEARCH_EXACT &&
        mode != FL_INDEX_SEARCH_APPROX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "index: unknown search mode %d", (int)mode);
    fl__index_topk_init(&t, out_hits, k, max_distance);
    rdlock(ix);
    if (opts && opts->ef)
        ef = FL_MIN(opts->ef, (size_t)FL_INDEX_EF_MAX);
    else
        ef = isfinite(max_distance) ? ix->hp.ef_range : ix->hp.ef_search;
    graph = ix->g && (mode == FL_INDEX_SEARCH_APPROX ||
                      (mode == FL_INDEX_SEARCH_AUTO && ix->n >= ix->hp.threshold));
    /* A range search asking for more than ef (Rekognition's MaxFaces defaults
     * to 4096, with a threshold) widens ef (x4 up to k) only while the
     * candidate list is all within range: once it holds a farther candidate,
     * a wider search would only add what the graph's recall at this ef misses
     * anyway. */
    if (graph && isfinite(max_distance)) {
        size_t want = k + (exclude_id != NULL);
        for (;;) {
            size_t n_in;
            if (!search_graph(ix, q, ef, offset, scale, exclude_id, &t)) {
                graph = false; /* no scratch memory: the exact scan below */
                break;
            }
            n_in = fl__index_topk_finish(&t);
            if (ef >= want || n_in + (exclude_id != NULL) < ef) {
                unlock(ix);
                *out_n = n_in;
                return FL_OK;
            }
            ef = FL_MIN(4 * ef, want);
            fl__index_topk_init(&t, out_hits, k, max_distance);
        }
    }
    ef = FL_MAX(ef, k + (exclude_id != NULL));
    if (!graph || !search_graph(ix, q, ef, offset, scale, exclude_id, &t)) {
        for (size_t c = 0; c * CHUNK_ROWS < ix->n; c++) {
            size_t rows = FL_MIN(CHUNK_ROWS, ix->n - c * CHUNK_ROWS);
            scan_chunk(ix, ix->chunks[c], rows, q, offset, scale, exclude_id, &t);
        }
    }
    unlock(ix);
    *out_n = fl__index_topk_finish(&t);
    return FL_OK;
}

size_t fl_index_foreach(struct fl_index *ix, fl_index_visit_fn fn, void *ctx)
{
    size_t s;
    rdlock(ix);
    for (s = 0; s < ix->n; s++) {
        if (!fn(ctx, *slot_id(ix, s), slot_row(ix, s))) {
            s++;
            break;
        }
    }
    unlock(ix);
    return s;
}

size_t fl_index_memory_bytes(struct fl_index *ix)
{
    size_t b;
    rdlock(ix);
    b = sizeof(*ix) + ix->n_chunks * ix->chunk_alloc + ix->cap_chunks * sizeof(float *) +
        ix->map.cap * sizeof(struct map_entry) + (ix->g ? fl__hnsw_memory_bytes(ix->g) : 0);
    unlock(ix);
    return b;
}

/* ================================ HNSW control ================================ */

void fl_index_hnsw_defaults(struct fl_index_hnsw_params *p)
{
    p->threshold = FL_INDEX_HNSW_THRESHOLD_DEFAULT;
    p->m = 16;
    p->ef_construction = 200;
    p->ef_search = FL_INDEX_EF_SEARCH_DEFAULT;
    p->ef_range = FL_INDEX_EF_RANGE_DEFAULT;
    p->seed = 0x68e5f1a7c0ffee01u;
}

static enum fl_status check_params(const struct fl_index_hnsw_params *p, struct fl_err *err)
{
    if (p->m < 2 || p->m > FL__HNSW_M_MAX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "index: m %u outside 2..%d", p->m,
                          FL__HNSW_M_MAX);
    if (p->ef_construction < 1 || p->ef_construction > FL_INDEX_EF_MAX || p->ef_search < 1 ||
        p->ef_search > FL_INDEX_EF_MAX || p->ef_range < 1 || p->ef_range > FL_INDEX_EF_MAX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "index: ef outside 1..%d", FL_INDEX_EF_MAX);
    return FL_OK;
}

enum fl_status fl_index_set_hnsw(struct fl_index *ix, const struct fl_index_hnsw_params *p,
                                 struct fl_err *err)
{
    enum fl_status rc = check_params(p, err);
    if (rc != FL_OK)
        return rc;
    wrlock(ix);
    if (ix->g && (p->m != ix->hp.m || p->ef_construction != ix->hp.ef_construction ||
                  p->seed != ix->hp.seed)) {
        fl__hnsw_free(ix->g);
        ix->g = NULL;
    }
    ix->hp = *p;
    if (!ix->g && ix->hp.threshold != SIZE_MAX && ix->n >= ix->hp.threshold && ix->n > 0)
        rc = build_graph(ix, err);
    else if (ix->g && ix->n < ix->hp.threshold / 2)
        graph_follow_count(ix);
    unlock(ix);
    return rc;
}

bool fl_index_has_graph(struct fl_index *ix)
{
    bool b;
    rdlock(ix);
    b = ix->g != NULL;
    unlock(ix);
    return b;
}

enum fl_status fl__index_check_graph(struct fl_index *ix, bool reachable, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    rdlock(ix);
    if (ix->g) {
        if (fl__hnsw_count(ix->g) != ix->n)
            rc = fl_err_set(err, FL_ERR_CORRUPT, "graph: %zu nodes for %zu vectors",
                            fl__hnsw_count(ix->g), ix->n);
        else
            rc = fl__hnsw_check(ix->g, reachable, err);
    }
    unlock(ix);
    return rc;
}

/* ================================ Snapshots ================================ */

#define SNAP_MAGIC   "FLIXSNAP"
#define SNAP_VERSION 1u
#define SNAP_HEADER  (8 + 4 * 4 + 8 + 8)

static void le32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

static void le64(uint8_t *p, uint64_t x)
{
    le32(p, (uint32_t)x);
    le32(p + 4, (uint32_t)(x >> 32));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p + 4) << 32 | rd32(p);
}

enum fl_status fl_index_save_mem(struct fl_index *ix, uint64_t generation, uint8_t **out,
                                 size_t *out_len, struct fl_err *err)
{
    enum fl_status rc;
    struct fl_buf b;
    uint8_t hdr[SNAP_HEADER], sum[32];
    uint8_t *row = NULL;
    size_t row_bytes = 8 + ix->dim * 4;
    fl_buf_init(&b, SIZE_MAX);
    row = fl_malloc(row_bytes);
    if (!row)
        return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory saving");
    rdlock(ix);
    memcpy(hdr, SNAP_MAGIC, 8);
    le32(hdr + 8, SNAP_VERSION);
    le32(hdr + 12, (uint32_t)ix->dim);
    le32(hdr + 16, (uint32_t)ix->metric);
    le32(hdr + 20, ix->g ? 1u : 0u);
    le64(hdr + 24, ix->n);
    le64(hdr + 32, generation);
    rc = fl_buf_append(&b, hdr, sizeof(hdr), err);
    for (size_t s = 0; s < ix->n && rc == FL_OK; s++) {
        const float *r = slot_row(ix, s);
        le64(row, *slot_id(ix, s));
        for (size_t i = 0; i < ix->dim; i++) {
            uint32_t u;
            memcpy(&u, &r[i], 4);
            le32(row + 8 + 4 * i, u);
        }
        rc = fl_buf_append(&b, row, row_bytes, err);
    }
    if (rc == FL_OK && ix->g)
        rc = fl__hnsw_serialize(ix->g, &b, err);
    unlock(ix);
    if (rc == FL_OK) {
        fl_sha256(b.data, b.len, sum);
        rc = fl_buf_append(&b, sum, sizeof(sum), err);
    }
    fl_free(row);
    if (rc != FL_OK) {
        fl_buf_fini(&b);
        return rc;
    }
    *out = (uint8_t *)fl_buf_take(&b, out_len);
    return FL_OK;
}

enum fl_status fl_index_save(struct fl_index *ix, const char *path, uint64_t generation,
                             struct fl_err *err)
{
    uint8_t *p = NULL;
    size_t n = 0;
    enum fl_status rc = fl_index_save_mem(ix, generation, &p, &n, err);
    if (rc == FL_OK)
        rc = fl_file_write_atomic(path, p, n, err);
    fl_free(p);
    return rc;
}

struct fl_index *fl_index_load_mem(const uint8_t *p, size_t n, size_t dim,
                                   enum fl_index_metric metric, uint64_t generation,
                                   const struct fl_index_hnsw_params *params, struct fl_err *err)
{
    struct fl_index *ix = NULL;
    uint8_t sum[32];
    uint64_t count;
    uint32_t flags;
    size_t off = SNAP_HEADER, body, row_bytes;
    if (n < SNAP_HEADER + 32)
        goto corrupt;
    body = n - 32;
    fl_sha256(p, body, sum);
    if (memcmp(sum, p + body, 32) != 0) {
        fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: checksum mismatch");
        return NULL;
    }
    if (memcmp(p, SNAP_MAGIC, 8) != 0 || rd32(p + 8) != SNAP_VERSION) {
        fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: bad magic or version");
        return NULL;
    }
    if (rd32(p + 12) != dim || rd32(p + 16) != (uint32_t)metric || rd64(p + 32) != generation) {
        fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: dim, metric or generation mismatch");
        return NULL;
    }
    flags = rd32(p + 20);
    count = rd64(p + 24);
    if (flags > 1)
        goto corrupt;
    ix = fl_index_new(dim, metric, err);
    if (!ix) {
        if (err && err->code == FL_ERR_INVALID_ARG)
            fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: bad dim or metric");
        return NULL;
    }
    if (params) {
        if (check_params(params, err) != FL_OK)
            goto fail;
        ix->hp = *params;
    }
    row_bytes = 8 + dim * 4;
    if (count > SLOTS_MAX || count > (body - off) / row_bytes)
        goto corrupt;
    if (reserve(ix, (size_t)count, err) != FL_OK)
        goto fail;
    for (size_t s = 0; s < count; s++, off += row_bytes) {
        float *r = slot_row(ix, s);
        uint64_t id = rd64(p + off);
        double ss = 0.0;
        for (size_t i = 0; i < dim; i++) {
            uint32_t u = rd32(p + off + 8 + 4 * i);
            memcpy(&r[i], &u, 4);
            if (!isfinite(r[i]))
                goto corrupt;
            ss += (double)r[i] * r[i];
        }
        memset(r + dim, 0, (ix->stride - dim) * sizeof(float));
        if (metric == FL_INDEX_COSINE && fabs(ss - 1.0) > 1e-3)
            goto corrupt;
        fl__index_quantize(r, dim, slot_code(ix, s));
        if (map_find(&ix->map, id))
            goto corrupt;
        *slot_id(ix, s) = id;
        map_insert(&ix->map, id, s);
        ix->n = s + 1;
    }
    if (flags & 1) {
        struct fl__hnsw *g = fl__hnsw_deserialize(p, body, &off, ix->n, err);
        if (!g)
            goto fail;
        ix->g = g;
        ix->hp.m = fl__hnsw_m(g);
        ix->hp.ef_construction = fl__hnsw_ef_construction(g);
    }
    if (off != body)
        goto corrupt;
    if (!ix->g && ix->hp.threshold != SIZE_MAX && ix->n >= ix->hp.threshold && ix->n > 0 &&
        build_graph(ix, err) != FL_OK)
        goto fail;
    return ix;
corrupt:
    fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: malformed");
fail:
    fl_index_free(ix);
    return NULL;
}

struct fl_index *fl_index_load(const char *path, size_t dim, enum fl_index_metric metric,
                               uint64_t generation, const struct fl_index_hnsw_params *params,
                               struct fl_err *err)
{
    uint8_t *p = NULL;
    size_t n = 0;
    struct fl_index *ix = NULL;
    if (fl_file_read(path, SIZE_MAX, &p, &n, err) == FL_OK)
        ix = fl_index_load_mem(p, n, dim, metric, generation, params, err);
    fl_free(p);
    return ix;
}
