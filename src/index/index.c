/*
 * index.c: the per-collection exact vector index.
 *
 * What. A set of (id, vector) pairs with one dimension and one metric, and an
 * exact k-nearest search by a linear SIMD scan. At face-collection sizes (up
 * to a few million vectors of 128-512 floats) an exact scan streams memory at
 * close to the machine's bandwidth and needs no tuning, gives exact answers
 * and costs nothing to update; an approximate graph (HNSW) is the later step
 * for collections where the scan's O(N) per query is too slow.
 *
 * Storage. Vectors live in chunks of CHUNK_ROWS rows. Each chunk is one
 * 64-byte aligned allocation: CHUNK_ROWS rows of `stride` floats (dim rounded
 * up to 16 floats, one cache line, zero-padded) followed by the CHUNK_ROWS ids
 * of those rows. Slots 0..n-1 are dense: slot s is row s % CHUNK_ROWS of chunk
 * s / CHUNK_ROWS. Dense slots make the scan a pure forward stream (the
 * hardware prefetcher's best case), and chunking means growth never copies
 * the vectors (a single realloc'd array of 1M x 512 B would copy 512 MB and
 * need twice the memory during the copy) and never moves a row under a
 * reader. Removal is a swap-remove: the last slot's row and id move into the
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
 * Failure. Every allocation an add needs (map growth, new chunk) happens
 * before the first change, so FL_ERR_NOMEM leaves the index as it was. remove
 * never allocates. search never allocates: its heap lives in the caller's
 * output array and its distance block on the stack.
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

#include "index/index_int.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define CHUNK_SHIFT 10
#define CHUNK_ROWS  ((size_t)1 << CHUNK_SHIFT) /* rows per chunk */
#define BLOCK_ROWS  256                        /* rows per kernel call: out[] stays in L1 */
#define ROW_ALIGN   16                         /* floats: 64 bytes */
#define SLOTS_MAX   ((size_t)UINT32_MAX - 1)   /* slot + 1 must fit the map's uint32 */

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
    size_t chunk_bytes;                /* bytes of one chunk: rows then ids */
    enum fl_index_metric metric;       /* immutable */
    const struct fl__index_dist *kern; /* immutable; chosen at run time */
    size_t n;                          /* vectors held; slots 0..n-1 are used */
    float **chunks;                    /* owned; n_chunks live, each fl_free_aligned */
    size_t n_chunks;                   /* allocated chunks */
    size_t cap_chunks;                 /* room in chunks[] */
    struct idmap map;                  /* id -> slot */
};

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
    /* dim <= 4096, so these products are small: no overflow possible. */
    ix->chunk_bytes = CHUNK_ROWS * ix->stride * sizeof(float) + CHUNK_ROWS * sizeof(uint64_t);
    ix->metric = metric;
    ix->kern = fl__index_dist_active();
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

/* Write v (times scale) into slot's row, zeroing the padding. */
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
        float *c = fl_malloc_aligned(ix->chunk_bytes, 64);
        if (!c)
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for vectors");
        ix->chunks[ix->n_chunks++] = c;
    }
    rc = map_reserve(&ix->map, n_total, err);
    return rc;
}

/* Insert or replace one validated vector. Room reserved; write lock held. */
static void put(struct fl_index *ix, uint64_t id, const float *v, float scale)
{
    struct map_entry *e = map_find(&ix->map, id);
    if (e) {
        write_row(ix, e->slot1 - 1, v, scale);
        return;
    }
    FL_ASSERT(ix->n < ix->n_chunks * CHUNK_ROWS);
    write_row(ix, ix->n, v, scale);
    *slot_id(ix, ix->n) = id;
    map_insert(&ix->map, id, ix->n);
    ix->n++;
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
        if (rc != FL_OK)
            goto out;
    }
    put(ix, id, vec, scale);
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
    if (rc != FL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * ix->dim;
        (void)check_vec(ix, v, &scale, NULL);
        put(ix, ids[i], v, scale);
    }
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
    map_delete(&ix->map, e);
    if (slot != last) {
        uint64_t moved = *slot_id(ix, last);
        struct map_entry *me;
        memcpy(slot_row(ix, slot), slot_row(ix, last), ix->stride * sizeof(float));
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

enum fl_status fl_index_search(struct fl_index *ix, const float *q, size_t k, float max_distance,
                               const uint64_t *exclude_id, struct fl_index_hit *out_hits,
                               size_t *out_n, struct fl_err *err)
{
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
    fl__index_topk_init(&t, out_hits, k, max_distance);
    rdlock(ix);
    for (size_t c = 0; c * CHUNK_ROWS < ix->n; c++) {
        size_t rows = FL_MIN(CHUNK_ROWS, ix->n - c * CHUNK_ROWS);
        scan_chunk(ix, ix->chunks[c], rows, q, offset, scale, exclude_id, &t);
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
    b = sizeof(*ix) + ix->n_chunks * ix->chunk_bytes + ix->cap_chunks * sizeof(float *) +
        ix->map.cap * sizeof(struct map_entry);
    unlock(ix);
    return b;
}
