/*
 * snapshot.c: index snapshots, so that a restart skips the HNSW graph build.
 *
 * What: when the service closes, every collection whose index holds a graph
 * (collections above the HNSW threshold, index.h) is written with
 * fl_index_save() to <data_dir>/index/<sha256 of the CollectionId>.flix,
 * tagged with the store's change sequence. At open, load_collections()
 * (service.c) tries the file first and, instead of building the graph again
 * (about 30 s for 100,000 faces), only reads the store's rows for the key
 * map.
 *
 * Why it cannot serve stale data: a snapshot is a cache, never a source of
 * truth. The loader rejects a damaged file (SHA-256), another dimension or
 * metric, and another change sequence (any write since the snapshot). And even
 * a file that passes is reconciled with the store row by row while the key
 * map is read (fl__api_index_reconcile): every stored face must be in the
 * index with the same vector (bit for bit; for cosine models the unit vector
 * the index keeps, to 1e-6), else it is added or replaced, and vectors the
 * store no longer has are removed, with a log line saying how many. Files
 * are named by a hash because a CollectionId may be "..".
 *
 * The same reconciliation serves the re-index switch (reindex.c): the job
 * builds the new index while it embeds, outside the service lock, and under
 * the lock only the rows that changed meanwhile are fixed, instead of building
 * the whole graph while every call waits.
 *
 * Threading: save runs in fl_service_close() after the background jobs have
 * stopped; load in fl_service_open() before any call: both single-threaded.
 */
#include "api/api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void snapshot_path(const struct fl_service *svc, const char *coll_id, char *out,
                          size_t cap)
{
    char h[65];
    fl_sha256_hex(coll_id, strlen(coll_id), h);
    snprintf(out, cap, "%s/index/%s.flix", svc->data_dir, h);
}

void fl__api_snapshots_save(struct fl_service *svc)
{
    char dir[4096], path[4200];
    uint64_t gen;
    struct fl_err e;
    if (svc->n_stores == 0 || !svc->colls)
        return;
    if (fl_store_change_seq(svc->stores[0], &gen, &e) != FL_OK) {
        FL_LOG_W("index snapshots not written: %s", e.msg);
        return;
    }
    snprintf(dir, sizeof(dir), "%s/index", svc->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        FL_LOG_W("index snapshots not written: %s: %s", dir, strerror(errno));
        return;
    }
    for (struct fl__api_coll *c = svc->colls; c; c = c->next) {
        snapshot_path(svc, c->id, path, sizeof(path));
        if (!fl_index_has_graph(c->ix)) {
            remove(path); /* a small collection rebuilds fast; drop an old file */
            continue;
        }
        if (fl_index_save(c->ix, path, gen, &e) != FL_OK)
            FL_LOG_W("index snapshot of %s not written: %s", c->id, e.msg);
    }
}

struct fl_index *fl__api_snapshot_load(struct fl_service *svc, const char *coll_id,
                                       const struct fl__api_model *m, uint64_t gen)
{
    char path[4200];
    struct fl_err e;
    struct fl_index *ix;
    snapshot_path(svc, coll_id, path, sizeof(path));
    ix = fl_index_load(path, m->dim, m->metric, gen, NULL, &e);
    if (!ix && e.code != FL_ERR_NOT_FOUND)
        FL_LOG_I("index snapshot of %s not used (%s); rebuilding from the store", coll_id, e.msg);
    return ix;
}

enum fl_status fl__api_snapshot_verify(struct fl_index *ix, int64_t key, const float *embedding,
                                       uint32_t dim)
{
    float v[FL_FACE_MAX_DIM];
    double n2 = 0, scale = 1;
    if (dim > FL_FACE_MAX_DIM || fl_index_get(ix, (uint64_t)key, v, NULL) != FL_OK)
        return FL_ERR_CORRUPT;
    if (fl_index_metric(ix) == FL_INDEX_L2)
        return memcmp(v, embedding, sizeof(float) * dim) == 0 ? FL_OK : FL_ERR_CORRUPT;
    /* cosine: the index keeps the unit vector; equal up to that rounding */
    for (uint32_t k = 0; k < dim; k++)
        n2 += (double)embedding[k] * embedding[k];
    if (n2 > 0)
        scale = 1 / sqrt(n2);
    for (uint32_t k = 0; k < dim; k++)
        if (fabs(v[k] - embedding[k] * scale) > 1e-6)
            return FL_ERR_CORRUPT;
    return FL_OK;
}

struct reconcile_ud {
    struct fl_index *ix;
    struct fl__api_keymap *keys;
    uint32_t dim;
    size_t n_fixed;
};

static enum fl_status reconcile_row(void *ud, int64_t key, const char *face_id,
                                    const float *embedding, uint32_t dim)
{
    struct reconcile_ud *u = ud;
    enum fl_status rc;
    if (dim != u->dim)
        return FL_ERR_CORRUPT;
    if (fl__api_snapshot_verify(u->ix, key, embedding, dim) != FL_OK) {
        rc = fl_index_add(u->ix, (uint64_t)key, embedding, NULL); /* adds or replaces */
        if (rc != FL_OK)
            return rc;
        u->n_fixed++;
    }
    return fl__api_keymap_put(u->keys, key, face_id, NULL);
}

struct stale_ud {
    const struct fl__api_keymap *keys;
    uint64_t *ids;
    size_t n, cap;
};

static bool collect_stale(void *ctx, uint64_t id, const float *vec)
{
    struct stale_ud *u = ctx;
    (void)vec;
    if (!fl__api_keymap_get(u->keys, (int64_t)id) && u->n < u->cap)
        u->ids[u->n++] = id;
    return true;
}

enum fl_status fl__api_index_reconcile(struct fl_store *st, const char *id, uint32_t dim,
                                       struct fl_index *ix, struct fl__api_keymap *keys,
                                       size_t *n_fixed, struct fl_err *err)
{
    struct reconcile_ud u = {ix, keys, dim, 0};
    struct stale_ud s = {keys, NULL, 0, 0};
    size_t n_ix;
    enum fl_status rc = fl_store_faces_scan(st, id, reconcile_row, &u, err);
    if (rc != FL_OK)
        return rc;
    /* keys started empty, so it holds exactly the store's rows now; what
     * else the index holds was deleted since it was made */
    n_ix = fl_index_count(ix);
    if (n_ix > keys->n) {
        s.cap = n_ix - keys->n;
        s.ids = fl_malloc(sizeof(*s.ids) * s.cap);
        if (!s.ids)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory (index reconcile)");
        fl_index_foreach(ix, collect_stale, &s);
        for (size_t i = 0; i < s.n; i++)
            fl_index_remove(ix, s.ids[i], NULL);
        u.n_fixed += s.n;
        fl_free(s.ids);
    }
    *n_fixed = u.n_fixed;
    return FL_OK;
}
