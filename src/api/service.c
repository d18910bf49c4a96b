/*
 * service.c: fl_service_open/close/call, the operation table and the helpers
 * the operation handlers share.
 *
 * What: the transport-free core of FaceLink's Rekognition API. The HTTP
 * server and the CLI hand us (X-Amz-Target, JSON body) and get back a JSON
 * body or an error status with a message.
 *
 * One call:
 *   1. the target "RekognitionService.<Op>" or "FaceLinkService.<Op>" names
 *      a row of the operation table (else UnknownOperationException);
 *   2. the body is parsed (malformed JSON or a non-object: Serialization-
 *      Exception; an empty body counts as {});
 *   3. the request is validated against the generated spec (validate.c);
 *   4. the handler runs under the service lock with a store connection from
 *      the pool and a fresh arena;
 *   5. the response object is serialised with 16 significant digits, so a
 *      float32 score prints like Rekognition's (99.97222137451172) and a
 *      timestamp keeps its milliseconds (1569444828.274).
 *
 * State: the store is the source of truth. Each collection has an in-memory
 * vector index (ids = store face keys) and a key -> FaceId map, rebuilt from
 * the store at open (fl_store_faces_scan) and updated right after every
 * committed write by the handler that made it. A handler that fails after
 * its store write undoes the write (fl__api_faces_commit), so a failed call
 * changes nothing, in the store or in memory.
 *
 * Threading model: one pthread rwlock per service. Read-only operations
 * (Describe/List/Search...) take it shared and run concurrently; writing
 * operations take it exclusively, so the store write and the index update
 * of one call are never observed half-done by another call, and the
 * collection list only changes under the exclusive lock. Store connections
 * belong to one thread at a time: a call borrows one from a pool of
 * n_workers connections (mutex + condvar). The indexes have their own
 * internal locks; searches under the shared lock use them concurrently.
 * Rejected alternative: a lock per collection. It would let writes to
 * different collections proceed in parallel, but SQLite serialises writers
 * anyway and the global lock keeps Create/DeleteCollection trivially safe.
 * Scale-out (several nodes on one PostgreSQL following the change log) is
 * not handled here yet: each service assumes it is the only writer.
 */
#include "api/api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FL_API_BODY_MAX  ((size_t)16 << 20)
#define FL_API_ARENA_CAP ((size_t)256 << 20)

enum op_kind {
    OP_STORE = 0,     /* a Rekognition operation on collections (needs the store) */
    OP_STATELESS = 1, /* a Rekognition operation on images alone */
    OP_EXT = 2,       /* a FaceLinkService extension on images alone */
    OP_EXT_STORE = 3, /* a FaceLinkService extension on collections (needs the store) */
};

struct op_row {
    const char *name;
    fl__api_handler_fn fn;
    bool writes;                 /* takes the exclusive lock */
    fl__api_prepare_fn prepare;  /* runs first, without the lock; or NULL */
    enum op_kind kind;
};

static const struct op_row op_table[] = {
    {"CreateCollection", fl__api_op_create_collection, true},
    {"DescribeCollection", fl__api_op_describe_collection, false},
    {"ListCollections", fl__api_op_list_collections, false},
    {"DeleteCollection", fl__api_op_delete_collection, true},
    {"IndexFaces", fl__api_op_index_faces, true, fl__api_prep_index_faces},
    {"ListFaces", fl__api_op_list_faces, false},
    {"DeleteFaces", fl__api_op_delete_faces, true},
    {"SearchFaces", fl__api_op_search_faces, false},
    {"SearchFacesByImage", fl__api_op_search_faces_by_image, false, fl__api_prep_search_by_image},
    {"CreateUser", fl__api_op_create_user, true},
    {"DeleteUser", fl__api_op_delete_user, true},
    {"ListUsers", fl__api_op_list_users, false},
    {"AssociateFaces", fl__api_op_associate_faces, true},
    {"DisassociateFaces", fl__api_op_disassociate_faces, true},
    {"SearchUsers", fl__api_op_search_users, false},
    {"SearchUsersByImage", fl__api_op_search_users_by_image, false, fl__api_prep_search_by_image},
    {"DetectFaces", fl__api_op_detect_faces, false, fl__api_prep_detect_faces, OP_STATELESS},
    {"CompareFaces", fl__api_op_compare_faces, false, fl__api_prep_compare_faces, OP_STATELESS},
    {"TagResource", fl__api_op_tag_resource, true},
    {"UntagResource", fl__api_op_untag_resource, true},
    {"ListTagsForResource", fl__api_op_list_tags_for_resource, false},
    /* FaceLinkService extensions (docs/internals/api.md) */
    {"EmbedFaces", fl__api_op_embed_faces, false, fl__api_prep_embed_faces, OP_EXT},
    {"GetFaceEmbeddings", fl__api_op_get_face_embeddings, false, NULL, OP_EXT_STORE},
    {"SearchFacesByEmbedding", fl__api_op_search_faces_by_embedding, false, NULL, OP_EXT_STORE},
    {"SearchAllFacesByImage", fl__api_op_search_all_faces_by_image, false,
     fl__api_prep_search_all_by_image, OP_EXT_STORE},
    {"ExportCollection", fl__api_op_export_collection, false, NULL, OP_EXT_STORE},
    {"ImportFaces", fl__api_op_import_faces, true, NULL, OP_EXT_STORE},
    {"StartImport", fl__api_op_start_import, true, NULL, OP_EXT_STORE},
    {"CommitImport", fl__api_op_commit_import, true, NULL, OP_EXT_STORE},
    {"AbortImport", fl__api_op_abort_import, true, NULL, OP_EXT_STORE},
    {"DescribeImport", fl__api_op_describe_import, false, NULL, OP_EXT_STORE},
    {"ReindexCollection", fl__api_op_reindex_collection, true, NULL, OP_EXT_STORE},
    {"DescribeJob", fl__api_op_describe_job, false, NULL, OP_EXT_STORE},
};

/* ============================== Collections ============================== */

struct fl__api_coll *fl__api_coll_find(struct fl_service *svc, const char *id)
{
    for (struct fl__api_coll *c = svc->colls; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

enum fl_status fl__api_coll_require(struct fl_service *svc, const char *id,
                                    struct fl__api_coll **out, struct fl_err *err)
{
    struct fl__api_coll *c = fl__api_coll_find(svc, id);
    if (!c)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: %s does not exist", id);
    *out = c;
    return FL_OK;
}

static void coll_free(struct fl__api_coll *c)
{
    if (!c)
        return;
    fl_index_free(c->ix);
    fl__api_keymap_fini(&c->keys);
    fl_free(c->id);
    fl_free(c);
}

enum fl_status fl__api_coll_add(struct fl_service *svc, const char *id,
                                const struct fl__api_model *model, struct fl__api_coll **out,
                                struct fl_err *err)
{
    struct fl__api_coll *c = fl_calloc(1, sizeof(*c));
    if (!c)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (collection)");
    fl__api_keymap_init(&c->keys);
    c->model = model;
    c->id = fl_strdup(id);
    if (!c->id) {
        coll_free(c);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (collection)");
    }
    c->ix = fl_index_new(model->dim, model->metric, err);
    if (!c->ix) {
        coll_free(c);
        return err ? err->code : FL_ERR_NOMEM;
    }
    c->next = svc->colls;
    svc->colls = c;
    *out = c;
    return FL_OK;
}

void fl__api_coll_drop(struct fl_service *svc, const char *id)
{
    for (struct fl__api_coll **pp = &svc->colls; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            struct fl__api_coll *c = *pp;
            *pp = c->next;
            coll_free(c);
            return;
        }
    }
}

/* ================================ Helpers ================================ */

const char *fl__api_get_str(const json_t *req, const char *name)
{
    const json_t *v = json_object_get(req, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long fl__api_get_int(const json_t *req, const char *name, long long def)
{
    const json_t *v = json_object_get(req, name);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

double fl__api_get_num(const struct fl__api_ctx *ctx, const json_t *req, const char *name,
                       double def)
{
    const json_t *v = json_object_get(req, name);
    double d;
    if (v && fl_json_number(v, &d))
        return d;
    if (ctx && ctx->spec) {
        const struct fl__api_member *m = fl__api_shape_member(ctx->spec->input, name);
        if (m && m->has_def_num)
            return m->def_num;
    }
    return def;
}

bool fl__api_set(json_t *o, const char *k, json_t *v)
{
    if (!v)
        return false;
    return json_object_set_new(o, k, v) == 0;
}

bool fl__api_push(json_t *a, json_t *v)
{
    if (!v)
        return false;
    return json_array_append_new(a, v) == 0;
}

json_t *fl__api_real(double v)
{
    return json_real((double)(float)v);
}

json_t *fl__api_face_json(const struct fl_store_face *f)
{
    json_t *o = json_object(), *bb = json_object();
    bool ok = o && bb;
    if (ok) {
        ok = fl__api_set(bb, "Width", fl__api_real(f->bbox.width)) &&
             fl__api_set(bb, "Height", fl__api_real(f->bbox.height)) &&
             fl__api_set(bb, "Left", fl__api_real(f->bbox.left)) &&
             fl__api_set(bb, "Top", fl__api_real(f->bbox.top));
    }
    ok = ok && fl__api_set(o, "FaceId", json_string(f->face_id));
    if (ok) {
        ok = fl__api_set(o, "BoundingBox", bb);
        bb = NULL;
    }
    ok = ok && fl__api_set(o, "ImageId", json_string(f->image_id));
    if (ok && f->external_image_id)
        ok = fl__api_set(o, "ExternalImageId", json_string(f->external_image_id));
    ok = ok && fl__api_set(o, "Confidence", fl__api_real(f->confidence));
    if (ok && f->model_version)
        ok = fl__api_set(o, "IndexFacesModelVersion", json_string(f->model_version));
    if (ok && f->user_id)
        ok = fl__api_set(o, "UserId", json_string(f->user_id));
    json_decref(bb);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *fl__api_collection_arn(const struct fl_service *svc, const char *id, bool with_prefix)
{
    char *s;
    json_t *v;
    size_t n = strlen(svc->region) + strlen(svc->account_id) + strlen(id) + 64;
    s = fl_malloc(n);
    if (!s)
        return NULL;
    snprintf(s, n, "%saws:rekognition:%s:%s:collection/%s", with_prefix ? "arn:" : "", svc->region,
             svc->account_id, id);
    v = json_string(s);
    fl_free(s);
    return v;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16))

enum fl_status fl__api_prepare(struct fl__api_ctx *ctx, const json_t *resp, struct fl_err *err)
{
    char *s = json_dumps(resp, DUMP_FLAGS);
    if (!s)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory serialising the response");
    fl_free(ctx->out_json);
    ctx->out_json = s;
    ctx->out_len = strlen(s);
    return FL_OK;
}

/* ============================ Face commit path ============================ */

enum fl_status fl__api_faces_commit(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    struct fl_store_face *faces, size_t n, struct fl_err *err)
{
    enum fl_status rc;
    uint64_t *ids = NULL;
    float *vecs = NULL;
    size_t nv, bytes;
    const char **face_ids = NULL;
    struct fl_store_outcome *outc = NULL;

    if (n == 0)
        return FL_OK;
    for (size_t i = 0; i < n; i++)
        if (!faces[i].embedding || faces[i].dim != c->model->dim)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "face %zu: embedding of %u floats, collection %s needs %u", i,
                              faces[i].dim, c->id, c->model->dim);
    /* everything that can fail for memory is done before the store write */
    rc = FL_ERR_NOMEM;
    if (!fl_size_mul(n, c->model->dim, &nv) || !fl_size_mul(nv, sizeof(float), &bytes)) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "too many faces");
        goto out;
    }
    ids = fl_malloc(n * sizeof(*ids));
    vecs = fl_malloc(bytes);
    face_ids = fl_malloc(n * sizeof(*face_ids));
    outc = fl_malloc(n * sizeof(*outc));
    if (!ids || !vecs || !face_ids || !outc) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (commit faces)");
        goto out;
    }
    rc = fl__api_keymap_reserve(&c->keys, n, err);
    if (rc != FL_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        memcpy(vecs + i * c->model->dim, faces[i].embedding, c->model->dim * sizeof(float));
        face_ids[i] = faces[i].face_id;
    }
    rc = fl_store_faces_put(ctx->st, c->id, faces, n, err);
    if (rc != FL_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint64_t)faces[i].key;
    rc = fl_index_add_batch(c->ix, ids, vecs, n, err);
    if (rc != FL_OK) {
        /* undo the store write so the failed call changes nothing */
        struct fl_err e2;
        if (fl_store_faces_delete(ctx->st, c->id, face_ids, n, outc, &e2) != FL_OK)
            FL_LOG_E("api: could not undo faces_put in %s after index failure: %s", c->id, e2.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        enum fl_status r2 = fl__api_keymap_put(&c->keys, faces[i].key, faces[i].face_id, NULL);
        FL_ASSERT(r2 == FL_OK); /* reserved above */
    }
out:
    fl_free(outc);
    fl_free(face_ids);
    fl_free(vecs);
    fl_free(ids);
    return rc;
}

/* =============================== Store pool =============================== */

static struct fl_store *pool_take(struct fl_service *svc)
{
    struct fl_store *st = NULL;
    pthread_mutex_lock(&svc->pool_mu);
    for (;;) {
        for (int i = 0; i < svc->n_stores; i++) {
            if (!svc->store_busy[i]) {
                svc->store_busy[i] = true;
                st = svc->stores[i];
                break;
            }
        }
        if (st)
            break;
        pthread_cond_wait(&svc->pool_cv, &svc->pool_mu);
    }
    pthread_mutex_unlock(&svc->pool_mu);
    return st;
}

static void pool_give(struct fl_service *svc, struct fl_store *st)
{
    pthread_mutex_lock(&svc->pool_mu);
    for (int i = 0; i < svc->n_stores; i++)
        if (svc->stores[i] == st)
            svc->store_busy[i] = false;
    pthread_cond_broadcast(&svc->pool_cv); /* face-worker waiters share the condvar */
    pthread_mutex_unlock(&svc->pool_mu);
}

/* ============================== Face workers ============================== */

/* Load the engine once; later callers see the same result. */
static struct fl_face_engine *engine_get(struct fl_service *svc, struct fl_err *err)
{
    struct fl_face_engine *e;
    pthread_mutex_lock(&svc->engine_mu);
    if (!svc->engine_tried) {
        struct fl_face_engine_config cfg = {svc->models_dir, FL_NN_BACKEND_XNNPACK};
        svc->engine_tried = true;
        svc->engine = fl_face_engine_new(&cfg, &svc->engine_err);
        if (!svc->engine)
            FL_LOG_E("face engine: %s", svc->engine_err.msg);
    }
    e = svc->engine;
    if (!e)
        fl_err_set(err, FL_ERR_INTERNAL, "the face models could not be loaded: %s",
                   svc->engine_err.msg);
    pthread_mutex_unlock(&svc->engine_mu);
    return e;
}

struct fl_face_worker *fl__api_face_take(struct fl_service *svc, struct fl_err *err)
{
    struct fl_face_engine *e = engine_get(svc, err);
    struct fl_face_worker *w = NULL;
    int slot = -1;
    if (!e)
        return NULL;
    pthread_mutex_lock(&svc->pool_mu);
    while (slot < 0) {
        for (int i = 0; i < svc->n_faces && slot < 0; i++)
            if (!svc->face_busy[i])
                slot = i;
        if (slot < 0)
            pthread_cond_wait(&svc->pool_cv, &svc->pool_mu);
    }
    svc->face_busy[slot] = true;
    w = svc->faces[slot];
    pthread_mutex_unlock(&svc->pool_mu);
    if (!w) {
        /* made outside the pool lock: building executors takes a while */
        w = fl_face_worker_new(e, err);
        pthread_mutex_lock(&svc->pool_mu);
        svc->faces[slot] = w;
        if (!w)
            svc->face_busy[slot] = false;
        pthread_cond_signal(&svc->pool_cv);
        pthread_mutex_unlock(&svc->pool_mu);
    }
    return w;
}

void fl__api_face_give(struct fl_service *svc, struct fl_face_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&svc->pool_mu);
    for (int i = 0; i < svc->n_faces; i++)
        if (svc->faces[i] == w)
            svc->face_busy[i] = false;
    pthread_cond_broadcast(&svc->pool_cv);
    pthread_mutex_unlock(&svc->pool_mu);
}

enum fl_status fl__api_with_ctx(struct fl_service *svc,
                                enum fl_status (*fn)(struct fl__api_ctx *ctx, void *ud,
                                                     struct fl_err *err),
                                void *ud, struct fl_err *err)
{
    struct fl__api_ctx ctx;
    enum fl_status rc;
    memset(&ctx, 0, sizeof(ctx));
    ctx.svc = svc;
    pthread_rwlock_wrlock(&svc->lock);
    ctx.st = pool_take(svc);
    fl_arena_init(&ctx.arena, FL_API_ARENA_CAP);
    rc = fn(&ctx, ud, err);
    fl_arena_fini(&ctx.arena);
    pool_give(svc, ctx.st);
    pthread_rwlock_unlock(&svc->lock);
    return rc;
}

/* ============================== Open / close ============================== */

static enum fl_status mkdir_p(const char *path, struct fl_err *err)
{
    char *p = fl_strdup(path);
    enum fl_status rc = FL_OK;
    if (!p)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rc = fl_err_set(err, FL_ERR_IO, "cannot create %s: %s", p, strerror(errno));
                if (err)
                    err->sys_errno = errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    fl_free(p);
    return rc;
}

/* Fill c's index and key map from the store, starting from its snapshot
 * when one matches (gen): reconciled with the store's rows either way, so a
 * snapshot only ever saves time (snapshot.c). */
static enum fl_status load_collection(struct fl_service *svc, struct fl__api_coll *c,
                                      uint64_t gen, struct fl_err *err)
{
    struct fl_index *snap = fl__api_snapshot_load(svc, c->id, c->model, gen);
    size_t n_fixed = 0;
    enum fl_status rc;
    if (snap) {
        fl_index_free(c->ix);
        c->ix = snap;
    }
    rc = fl__api_index_reconcile(svc->stores[0], c->id, c->model->dim, c->ix, &c->keys, &n_fixed,
                                 err);
    if (rc == FL_OK && snap) {
        svc->n_snapshots_loaded++;
        if (n_fixed > 0) {
            svc->n_snapshots_repaired++;
            FL_LOG_W("index snapshot of %s differed from the store in %zu faces; repaired", c->id,
                     n_fixed);
        }
    }
    return rc;
}

/* Load every collection of the store and rebuild its index. */
static enum fl_status load_collections(struct fl_service *svc, struct fl_err *err)
{
    enum fl_status rc;
    struct fl_arena a;
    char *after = NULL;
    uint64_t gen = 0;
    rc = fl_store_change_seq(svc->stores[0], &gen, err);
    if (rc != FL_OK)
        return rc;
    fl_arena_init(&a, 0);
    for (;;) {
        struct fl_store_collection_page page;
        fl_arena_reset(&a);
        rc = fl_store_collection_list(svc->stores[0], after, 1000, &a, &page, err);
        if (rc != FL_OK)
            break;
        for (size_t i = 0; i < page.n && rc == FL_OK; i++) {
            const struct fl__api_model *m = fl__api_model_find(page.v[i].model_id);
            struct fl__api_coll *c;
            if (!m || m->dim != page.v[i].dim) {
                rc = fl_err_set(err, FL_ERR_CORRUPT,
                                "collection %s uses model %s (dim %u), unknown to this build",
                                page.v[i].id, page.v[i].model_id, page.v[i].dim);
                break;
            }
            rc = fl__api_coll_add(svc, page.v[i].id, m, &c, err);
            if (rc != FL_OK)
                break;
            rc = load_collection(svc, c, gen, err);
            if (rc != FL_OK && err && err->msg[0] == '\0')
                fl_err_set(err, rc, "rebuilding the index of %s failed", c->id);
        }
        if (rc != FL_OK || !page.next)
            break;
        fl_free(after);
        after = fl_strdup(page.next);
        if (!after) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
            break;
        }
    }
    fl_free(after);
    fl_arena_fini(&a);
    return rc;
}

struct fl_service *fl_service_open(const struct fl_service_config *cfg, struct fl_err *err)
{
    struct fl_service *svc = NULL;
    struct fl_service_config def;
    enum fl_status rc;
    int n;

    fl_core_init();
    if (!cfg) {
        memset(&def, 0, sizeof(def));
        cfg = &def;
    }
    svc = fl_calloc(1, sizeof(*svc));
    if (!svc) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_rwlock_init(&svc->lock, NULL);
    pthread_mutex_init(&svc->pool_mu, NULL);
    pthread_cond_init(&svc->pool_cv, NULL);
    pthread_mutex_init(&svc->engine_mu, NULL);
    pthread_mutex_init(&svc->jobs_mu, NULL);
    svc->models_dir = fl_strdup(cfg->models_dir ? cfg->models_dir : "models");
    svc->data_dir = fl_strdup(cfg->data_dir ? cfg->data_dir : "data");
    svc->region = fl_strdup(cfg->region ? cfg->region : "us-east-1");
    svc->account_id = fl_strdup(cfg->account_id ? cfg->account_id : "000000000000");
    if (!svc->data_dir || !svc->region || !svc->account_id || !svc->models_dir) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    svc->default_model =
        cfg->default_model ? fl__api_model_find(cfg->default_model) : fl__api_model_default();
    if (!svc->default_model) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "unknown face model %s", cfg->default_model);
        goto fail;
    }
    {
        bool ok;
        svc->crop_mode = fl__api_crop_mode_parse(cfg->crop_retention, &ok);
        if (!ok) {
            fl_err_set(err, FL_ERR_INVALID_ARG,
                       "crop_retention must be none, crops or images, not '%s'",
                       cfg->crop_retention);
            goto fail;
        }
    }
    if (cfg->store_dsn) {
        svc->dsn = fl_strdup(cfg->store_dsn);
    } else {
        size_t len = strlen(svc->data_dir) + 32;
        svc->dsn = fl_malloc(len);
        if (svc->dsn)
            snprintf(svc->dsn, len, "%s/facelink.db", svc->data_dir);
    }
    if (!svc->dsn) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!cfg->no_store && !cfg->store_dsn && mkdir_p(svc->data_dir, err) != FL_OK)
        goto fail;
    n = cfg->n_workers > 0 ? cfg->n_workers : 1;
    if (n > 256)
        n = 256;
    svc->stores = fl_calloc((size_t)n, sizeof(*svc->stores));
    svc->store_busy = fl_calloc((size_t)n, sizeof(*svc->store_busy));
    svc->n_faces = n;
    svc->faces = fl_calloc((size_t)n, sizeof(*svc->faces));
    svc->face_busy = fl_calloc((size_t)n, sizeof(*svc->face_busy));
    if (!svc->stores || !svc->store_busy || !svc->faces || !svc->face_busy) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n && !cfg->no_store; i++) {
        rc = fl_store_open(svc->dsn, NULL, &svc->stores[i], err);
        if (rc != FL_OK)
            goto fail;
        svc->n_stores = i + 1;
    }
    if (!cfg->no_store && load_collections(svc, err) != FL_OK)
        goto fail;
    if (!cfg->no_store && fl__api_jobs_resume(svc, err) != FL_OK)
        goto fail;
    svc->opened = true;
    return svc;
fail:
    fl_service_close(svc);
    return NULL;
}

void fl_service_close(struct fl_service *svc)
{
    if (!svc)
        return;
    fl__api_jobs_stop(svc);
    if (svc->opened)
        fl__api_snapshots_save(svc);
    while (svc->colls) {
        struct fl__api_coll *c = svc->colls;
        svc->colls = c->next;
        coll_free(c);
    }
    for (int i = 0; i < svc->n_stores; i++)
        fl_store_close(svc->stores[i]);
    fl_free(svc->stores);
    fl_free(svc->store_busy);
    for (int i = 0; i < svc->n_faces; i++)
        fl_face_worker_free(svc->faces[i]);
    fl_free(svc->faces);
    fl_free(svc->face_busy);
    fl_face_engine_free(svc->engine);
    fl_free(svc->models_dir);
    pthread_mutex_destroy(&svc->engine_mu);
    pthread_mutex_destroy(&svc->jobs_mu);
    fl_free(svc->dsn);
    fl_free(svc->data_dir);
    fl_free(svc->region);
    fl_free(svc->account_id);
    pthread_cond_destroy(&svc->pool_cv);
    pthread_mutex_destroy(&svc->pool_mu);
    pthread_rwlock_destroy(&svc->lock);
    fl_free(svc);
}

void fl_free_string(char *s)
{
    fl_free(s);
}

/* ================================ The call ================================ */

/* The row of an X-Amz-Target. FaceLink's extensions exist only under
 * "FaceLinkService.", so the SDKs' view of Rekognition stays untouched;
 * Rekognition's operations answer under both prefixes, so a FaceLink client
 * can use one prefix for everything. */
static const struct op_row *find_op(const char *target)
{
    static const char rek[] = "RekognitionService.", ext[] = "FaceLinkService.";
    const char *name;
    bool is_ext;
    if (!target)
        return NULL;
    if (strncmp(target, rek, sizeof(rek) - 1) == 0) {
        name = target + sizeof(rek) - 1;
        is_ext = false;
    } else if (strncmp(target, ext, sizeof(ext) - 1) == 0) {
        name = target + sizeof(ext) - 1;
        is_ext = true;
    } else {
        return NULL;
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(op_table); i++)
        if ((op_table[i].kind < OP_EXT || is_ext) && strcmp(name, op_table[i].name) == 0)
            return &op_table[i];
    return NULL;
}

enum fl_status fl_service_call(struct fl_service *svc, const char *target, const char *body,
                               size_t body_len, char **out_json, size_t *out_len,
                               struct fl_err *err)
{
    const struct op_row *row;
    struct fl__api_ctx ctx;
    json_t *req = NULL, *resp = NULL;
    enum fl_status rc;
    char *s;

    fl_err_clear(err);
    FL_ASSERT(svc && out_json);
    row = find_op(target);
    if (!row) {
        char ex[64];
        snprintf(ex, sizeof(ex), "%s", target ? target : "(none)");
        return fl_err_set(err, FL_ERR_UNKNOWN_OPERATION, "Unknown operation %s", ex);
    }
    if (body_len > FL_API_BODY_MAX)
        return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                          "Image size is too large. (request body of %zu bytes)", body_len);
    if (body_len == 0 || !body)
        rc = fl_json_parse_object("{}", 2, &req, err);
    else
        rc = fl_json_parse_object(body, body_len, &req, err);
    if (rc != FL_OK) {
        /* jansson reports allocation failure as a parse error too */
        return rc;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.svc = svc;
    ctx.spec =
        row->kind >= OP_EXT ? fl__api_spec_find_ext(row->name) : fl__api_spec_find(row->name);
    FL_ASSERT(ctx.spec != NULL);
    rc = fl__api_validate(ctx.spec, req, err);
    if (rc != FL_OK)
        goto out;
    if (svc->n_stores == 0 && (row->kind == OP_STORE || row->kind == OP_EXT_STORE)) {
        rc = fl_err_set(err, FL_ERR_INTERNAL,
                        "%s needs collections, and this service was opened without a store",
                        row->name);
        goto out;
    }
    if (row->prepare) {
        rc = row->prepare(&ctx, req, err);
        if (rc != FL_OK)
            goto out;
    }

    if (row->writes)
        pthread_rwlock_wrlock(&svc->lock);
    else
        pthread_rwlock_rdlock(&svc->lock);
    ctx.st = svc->n_stores ? pool_take(svc) : NULL;
    fl_arena_init(&ctx.arena, FL_API_ARENA_CAP);
    rc = row->fn(&ctx, req, &resp, err);
    fl_arena_fini(&ctx.arena);
    if (ctx.st)
        pool_give(svc, ctx.st);
    pthread_rwlock_unlock(&svc->lock);
    if (rc != FL_OK)
        goto out;
    FL_ASSERT(resp != NULL);
    if (ctx.out_json) {
        /* serialised before the write by the handler */
        *out_json = ctx.out_json;
        ctx.out_json = NULL;
        if (out_len)
            *out_len = ctx.out_len;
        goto out;
    }
    s = json_dumps(resp, DUMP_FLAGS);
    if (!s) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory serialising the response");
        goto out;
    }
    *out_json = s;
    if (out_len)
        *out_len = strlen(s);
out:
    fl__api_image_job_free(ctx.job);
    fl_free(ctx.out_json);
    json_decref(resp);
    json_decref(req);
    return rc;
}

/* ============================== Small helpers ============================== */

enum fl_status fl_read_file(const char *path, size_t max_bytes, char **out_bytes, size_t *out_len,
                            struct fl_err *err)
{
    uint8_t *buf = NULL;
    enum fl_status rc = fl_file_read(path, max_bytes, &buf, out_len, err);
    if (rc == FL_OK)
        *out_bytes = (char *)buf;
    return rc;
}

char *fl_base64(const void *p, size_t n)
{
    char *s = fl_malloc(fl_base64_encoded_len(n) + 1);
    if (s)
        fl_base64_encode(p, n, s);
    return s;
}

enum fl_status fl_unbase64(const char *s, size_t n, void *out, size_t *out_len, struct fl_err *err)
{
    return fl_base64_decode(s, n, out, out_len, err);
}
