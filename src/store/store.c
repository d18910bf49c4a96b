/*
 * store.c: the store interface: backend selection and dispatch.
 *
 * What: fl_store_open() picks a backend from the DSN; every other fl_store_*()
 * function checks the preconditions common to all backends (programmer errors
 * by FL_ASSERT, input-derived sizes and lengths by status) and calls the
 * backend's x-method. Backends therefore see only well-formed calls and keep
 * to storage.
 *
 * Why a method table and not #ifdefs: the SQLite backend is always built; a
 * PostgreSQL backend (libpq) will be another table chosen at open time, so one
 * binary serves both and the api/ layer never knows which it has (SQLite's
 * sqlite3_io_methods / VFS idea).
 *
 * Threading: no state of its own; see store.h for the per-connection rule.
 */
#include "store/store_int.h"

#include <string.h>

/* ============================== Arguments ============================== */

/* FL_OK if s is a non-empty string of at most max bytes, else
 * FL_ERR_INVALID_ARG naming what. s must not be NULL (caller's invariant). */
static enum fl_status check_str(const char *what, const char *s, size_t max, struct fl_err *err)
{
    size_t len;
    FL_ASSERT(s != NULL);
    len = strnlen(s, max + 1);
    if (len == 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: empty %s", what);
    if (len > max)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: %s longer than %zu bytes", what, max);
    return FL_OK;
}

/* As check_str, but NULL is allowed. */
static enum fl_status check_opt_str(const char *what, const char *s, size_t max, struct fl_err *err)
{
    return s ? check_str(what, s, max, err) : FL_OK;
}

static enum fl_status check_coll(const char *id, struct fl_err *err)
{
    return check_str("collection id", id, FL_STORE_COLLECTION_ID_MAX, err);
}

static enum fl_status check_user(const char *id, struct fl_err *err)
{
    return check_str("user id", id, FL_STORE_USER_ID_MAX, err);
}

static enum fl_status check_token(const char *token, struct fl_err *err)
{
    return check_opt_str("client request token", token, FL_STORE_TOKEN_MAX, err);
}

/* Page limits come from requests (MaxResults). */
static enum fl_status check_limit(size_t limit, struct fl_err *err)
{
    if (limit == 0 || limit > FL_STORE_PAGE_MAX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: page limit %zu not in 1..%d", limit,
                          FL_STORE_PAGE_MAX);
    return FL_OK;
}

/* Every id in ids[0..n) is a non-empty string of at most max bytes. */
static enum fl_status check_ids(const char *what, const char *const *ids, size_t n, size_t max,
                                struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(n == 0 || ids != NULL);
    for (size_t i = 0; i < n; i++) {
        rc = check_str(what, ids[i], max, err);
        if (rc != FL_OK)
            return rc;
    }
    return FL_OK;
}

/* ============================== Open / close ============================== */

enum fl_status fl_store_open(const char *dsn, const struct fl_store_opts *opts,
                             struct fl_store **out, struct fl_err *err)
{
    struct fl_store *st = NULL;
    enum fl_status rc;

    FL_ASSERT(dsn != NULL && out != NULL);
    if (strncmp(dsn, "postgres://", 11) == 0 || strncmp(dsn, "postgresql://", 13) == 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "store: the PostgreSQL backend is not built into this binary");
    if (strncmp(dsn, "sqlite:", 7) == 0)
        dsn += 7;
    if (!*dsn)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: empty database path");
    rc = fl__store_sqlite_open(dsn, opts, &st, err);
    if (rc != FL_OK)
        return rc;
    FL_ASSERT(st->m && st->m->version == FL_STORE_METHODS_VERSION && st->m->x_close);
    *out = st;
    return FL_OK;
}

void fl_store_close(struct fl_store *st)
{
    if (st)
        st->m->x_close(st);
}

const char *fl_store_backend(const struct fl_store *st)
{
    return st->m->name;
}

const char *fl_store_user_status_name(enum fl_store_user_status s)
{
    switch (s) {
    case FL_STORE_USER_ACTIVE:
        return "ACTIVE";
    case FL_STORE_USER_UPDATING:
        return "UPDATING";
    case FL_STORE_USER_CREATING:
        return "CREATING";
    case FL_STORE_USER_CREATED:
        return "CREATED";
    }
    return NULL;
}

/* ============================== Collections ============================== */

/* A collection record's id, model id, FaceModelVersion and dimension are
 * within the store's limits (shared by create and the reindex commit). */
static enum fl_status check_collection_record(const struct fl_store_collection *c,
                                              struct fl_err *err)
{
    enum fl_status rc = check_coll(c->id, err);
    if (rc == FL_OK)
        rc = check_str("model id", c->model_id, FL_STORE_NAME_MAX, err);
    if (rc == FL_OK)
        rc = check_str("face model version", c->face_model_version, FL_STORE_NAME_MAX, err);
    if (rc == FL_OK && (c->dim == 0 || c->dim > FL_STORE_DIM_MAX))
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "store: embedding dimension %u not in 1..%d",
                        c->dim, FL_STORE_DIM_MAX);
    return rc;
}

enum fl_status fl_store_collection_create(struct fl_store *st, const struct fl_store_collection *c,
                                          struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && c && c->id && c->model_id && c->face_model_version);
    rc = check_collection_record(c, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_collection_create(st, c, err);
}

enum fl_status fl_store_collection_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                       struct fl_store_collection *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && id && a && out);
    rc = check_coll(id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_collection_get(st, id, a, out, err);
}

enum fl_status fl_store_collection_list(struct fl_store *st, const char *after, size_t limit,
                                        struct fl_arena *a, struct fl_store_collection_page *out,
                                        struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && a && out);
    rc = check_limit(limit, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_collection_list(st, after ? after : "", limit, a, out, err);
}

enum fl_status fl_store_collection_delete(struct fl_store *st, const char *id, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && id);
    rc = check_coll(id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_collection_delete(st, id, err);
}

/* ================================= Faces ================================= */

/* Checks of a batch of faces to put. */
static enum fl_status check_faces(const char *collection, const struct fl_store_face *faces,
                                  size_t n, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(collection && faces);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    if (n == 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: no face to put");
    for (size_t i = 0; i < n; i++) {
        const struct fl_store_face *f = &faces[i];
        rc = check_str("face id", f->face_id, FL_UUID_STR_LEN, err);
        if (rc == FL_OK)
            rc = check_str("image id", f->image_id, FL_UUID_STR_LEN, err);
        if (rc == FL_OK)
            rc = check_opt_str("external image id", f->external_image_id, FL_STORE_EXTERNAL_ID_MAX,
                               err);
        if (rc == FL_OK)
            rc = check_opt_str("user id", f->user_id, FL_STORE_USER_ID_MAX, err);
        if (rc == FL_OK) {
            FL_ASSERT(f->model_version != NULL);
            rc = check_str("model version", f->model_version, FL_STORE_NAME_MAX, err);
        }
        if (rc != FL_OK)
            return rc;
        if (!f->embedding || f->dim == 0 || f->dim > FL_STORE_DIM_MAX)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "store: face %zu has no valid embedding", i);
        FL_ASSERT(f->crop != NULL || f->crop_len == 0);
    }
    return FL_OK;
}

enum fl_status fl_store_faces_put(struct fl_store *st, const char *collection,
                                  struct fl_store_face *faces, size_t n, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st);
    rc = check_faces(collection, faces, n, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_put(st, collection, faces, n, err);
}

enum fl_status fl_store_faces_put_dedup(struct fl_store *st, const char *collection,
                                        struct fl_store_face *faces, size_t n, struct fl_arena *a,
                                        struct fl_store_face_list *out_existing, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && a && out_existing);
    rc = check_faces(collection, faces, n, err);
    if (rc != FL_OK)
        return rc;
    for (size_t i = 1; i < n; i++) {
        const char *e0 = faces[0].external_image_id, *ei = faces[i].external_image_id;
        if (strcmp(faces[i].image_id, faces[0].image_id) != 0 || (!e0 != !ei) ||
            (e0 && strcmp(e0, ei) != 0))
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "store: a deduplicated batch must come from one image and "
                              "ExternalImageId");
    }
    return st->m->x_faces_put_dedup(st, collection, faces, n, a, out_existing, err);
}

enum fl_status fl_store_faces_get(struct fl_store *st, const char *collection,
                                  const char *const *face_ids, size_t n, unsigned flags,
                                  struct fl_arena *a, struct fl_store_face_list *out,
                                  struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && a && out);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_ids("face id", face_ids, n, FL_UUID_STR_LEN, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_get(st, collection, face_ids, n, flags, a, out, err);
}

enum fl_status fl_store_face_get(struct fl_store *st, const char *collection, const char *face_id,
                                 unsigned flags, struct fl_arena *a, struct fl_store_face *out,
                                 struct fl_err *err)
{
    struct fl_store_face_list l;
    enum fl_status rc;
    FL_ASSERT(face_id && out);
    rc = fl_store_faces_get(st, collection, &face_id, 1, flags, a, &l, err);
    if (rc != FL_OK)
        return rc;
    if (l.n == 0)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "store: face %s not found in collection %s",
                          face_id, collection);
    *out = l.v[0];
    return FL_OK;
}

enum fl_status fl_store_faces_list(struct fl_store *st, const struct fl_store_face_query *q,
                                   struct fl_arena *a, struct fl_store_face_list *out,
                                   struct fl_err *err)
{
    struct fl_store_face_query qq;
    enum fl_status rc;
    FL_ASSERT(st && q && q->collection && a && out);
    rc = check_coll(q->collection, err);
    if (rc == FL_OK)
        rc = check_opt_str("user id", q->user_id, FL_STORE_USER_ID_MAX, err);
    if (rc == FL_OK)
        rc = check_ids("face id", q->face_ids, q->face_ids ? q->n_face_ids : 0, FL_UUID_STR_LEN,
                       err);
    if (rc == FL_OK)
        rc = check_limit(q->limit, err);
    if (rc != FL_OK)
        return rc;
    qq = *q;
    if (!qq.after)
        qq.after = "";
    if (!qq.face_ids)
        qq.n_face_ids = 0;
    return st->m->x_faces_list(st, &qq, a, out, err);
}

enum fl_status fl_store_faces_delete(struct fl_store *st, const char *collection,
                                     const char *const *face_ids, size_t n,
                                     struct fl_store_outcome *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && (n == 0 || out));
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_ids("face id", face_ids, n, FL_UUID_STR_LEN, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_delete(st, collection, face_ids, n, out, err);
}

enum fl_status fl_store_faces_find_by_image(struct fl_store *st, const char *collection,
                                            const char *image_id, const char *external_image_id,
                                            struct fl_arena *a, struct fl_store_face_list *out,
                                            struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && image_id && a && out);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_str("image id", image_id, FL_UUID_STR_LEN, err);
    if (rc == FL_OK)
        rc = check_opt_str("external image id", external_image_id, FL_STORE_EXTERNAL_ID_MAX, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_find_by_image(st, collection, image_id, external_image_id, a, out, err);
}

enum fl_status fl_store_faces_scan(struct fl_store *st, const char *collection, fl_store_scan_fn fn,
                                   void *ud, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && fn);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_scan(st, collection, fn, ud, err);
}

/* ================================= Users ================================= */

enum fl_status fl_store_user_create(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && user_id);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_user(user_id, err);
    if (rc == FL_OK)
        rc = check_token(token, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_user_create(st, collection, user_id, token, err);
}

enum fl_status fl_store_user_get(struct fl_store *st, const char *collection, const char *user_id,
                                 struct fl_store_user *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && user_id && out);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_user(user_id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_user_get(st, collection, user_id, out, err);
}

enum fl_status fl_store_users_list(struct fl_store *st, const char *collection, const char *after,
                                   size_t limit, struct fl_arena *a, struct fl_store_user_page *out,
                                   struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && a && out);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_limit(limit, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_users_list(st, collection, after ? after : "", limit, a, out, err);
}

enum fl_status fl_store_user_delete(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && user_id);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_user(user_id, err);
    if (rc == FL_OK)
        rc = check_token(token, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_user_delete(st, collection, user_id, token, err);
}

enum fl_status fl_store_faces_associate(struct fl_store *st, const char *collection,
                                        const char *user_id, const char *const *face_ids, size_t n,
                                        uint32_t max_faces_per_user, const char *token,
                                        struct fl_store_outcome *out,
                                        enum fl_store_user_status *out_status, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && user_id && (n == 0 || out) && out_status);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_user(user_id, err);
    if (rc == FL_OK)
        rc = check_token(token, err);
    if (rc == FL_OK)
        rc = check_ids("face id", face_ids, n, FL_UUID_STR_LEN, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_associate(st, collection, user_id, face_ids, n, max_faces_per_user, token,
                                    out, out_status, err);
}

enum fl_status fl_store_faces_disassociate(struct fl_store *st, const char *collection,
                                           const char *user_id, const char *const *face_ids,
                                           size_t n, const char *token,
                                           struct fl_store_outcome *out,
                                           enum fl_store_user_status *out_status,
                                           struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && user_id && (n == 0 || out) && out_status);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_user(user_id, err);
    if (rc == FL_OK)
        rc = check_token(token, err);
    if (rc == FL_OK)
        rc = check_ids("face id", face_ids, n, FL_UUID_STR_LEN, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_disassociate(st, collection, user_id, face_ids, n, token, out, out_status,
                                       err);
}

/* ================================== Tags ================================== */

enum fl_status fl_store_tags_set(struct fl_store *st, const char *collection,
                                 const struct fl_store_tag *tags, size_t n, uint32_t max_tags,
                                 struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && (n == 0 || tags));
    rc = check_coll(collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        FL_ASSERT(tags[i].key && tags[i].value);
        rc = check_str("tag key", tags[i].key, FL_STORE_TAG_KEY_MAX, err);
        if (rc == FL_OK && strlen(tags[i].value) > FL_STORE_TAG_VALUE_MAX)
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "store: tag value longer than %d bytes",
                            FL_STORE_TAG_VALUE_MAX);
    }
    if (rc != FL_OK)
        return rc;
    return st->m->x_tags_set(st, collection, tags, n, max_tags, err);
}

enum fl_status fl_store_tags_remove(struct fl_store *st, const char *collection,
                                    const char *const *keys, size_t n, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection);
    rc = check_coll(collection, err);
    if (rc == FL_OK)
        rc = check_ids("tag key", keys, n, FL_STORE_TAG_KEY_MAX, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_tags_remove(st, collection, keys, n, err);
}

enum fl_status fl_store_tags_list(struct fl_store *st, const char *collection, struct fl_arena *a,
                                  struct fl_store_tag_list *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && a && out);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_tags_list(st, collection, a, out, err);
}

/* ================================== Jobs ================================== */

enum fl_status fl_store_job_create(struct fl_store *st, const struct fl_store_job *job,
                                   struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && job && job->id && job->type);
    rc = check_str("job id", job->id, FL_STORE_NAME_MAX, err);
    if (rc == FL_OK)
        rc = check_str("job type", job->type, FL_STORE_NAME_MAX, err);
    if (rc == FL_OK)
        rc = check_opt_str("job collection", job->collection, FL_STORE_COLLECTION_ID_MAX, err);
    if (rc != FL_OK)
        return rc;
    FL_ASSERT(job->state >= FL_STORE_JOB_QUEUED && job->state <= FL_STORE_JOB_FAILED);
    if (!(job->progress >= 0.0 && job->progress <= 1.0))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: job progress not in [0,1]");
    return st->m->x_job_create(st, job, err);
}

enum fl_status fl_store_job_update(struct fl_store *st, const char *id,
                                   enum fl_store_job_state state, double progress,
                                   const char *message, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && id);
    rc = check_str("job id", id, FL_STORE_NAME_MAX, err);
    if (rc != FL_OK)
        return rc;
    FL_ASSERT(state >= FL_STORE_JOB_QUEUED && state <= FL_STORE_JOB_FAILED);
    if (!(progress >= 0.0 && progress <= 1.0))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: job progress not in [0,1]");
    return st->m->x_job_update(st, id, state, progress, message, err);
}

enum fl_status fl_store_job_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                struct fl_store_job *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && id && a && out);
    rc = check_str("job id", id, FL_STORE_NAME_MAX, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_job_get(st, id, a, out, err);
}

/* ============================ Change sequence ============================ */

enum fl_status fl_store_change_seq(struct fl_store *st, uint64_t *out, struct fl_err *err)
{
    FL_ASSERT(st && out);
    return st->m->x_change_seq(st, out, err);
}

enum fl_status fl_store_changes_since(struct fl_store *st, uint64_t after, size_t limit,
                                      struct fl_arena *a, struct fl_store_change_list *out,
                                      struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && a && out);
    rc = check_limit(limit, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_changes_since(st, after, limit, a, out, err);
}

enum fl_status fl_store_changes_prune(struct fl_store *st, uint64_t upto, struct fl_err *err)
{
    FL_ASSERT(st);
    return st->m->x_changes_prune(st, upto, err);
}

/* ============================== Maintenance ============================== */

enum fl_status fl_store_check(struct fl_store *st, struct fl_err *err)
{
    FL_ASSERT(st);
    return st->m->x_check(st, err);
}

/* ============================== Reindexing ============================== */

enum fl_status fl_store_reindex_scan_crops(struct fl_store *st, const char *collection,
                                           bool only_unstaged, fl_store_crop_fn fn, void *ud,
                                           struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && fn);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_reindex_scan_crops(st, collection, only_unstaged, fn, ud, err);
}

enum fl_status fl_store_reindex_stage(struct fl_store *st, const char *collection,
                                      const struct fl_store_embedding *items, size_t n,
                                      size_t *out_staged, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && (n == 0 || items));
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].embedding || items[i].dim == 0 || items[i].dim > FL_STORE_DIM_MAX ||
            items[i].dim != items[0].dim)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "store: staged embedding %zu is missing or has another dimension", i);
    }
    return st->m->x_reindex_stage(st, collection, items, n, out_staged, err);
}

enum fl_status fl_store_reindex_commit(struct fl_store *st, const struct fl_store_collection *model,
                                       struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && model && model->id && model->model_id && model->face_model_version);
    rc = check_collection_record(model, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_reindex_commit(st, model, err);
}

enum fl_status fl_store_reindex_abort(struct fl_store *st, const char *collection,
                                      struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_reindex_abort(st, collection, err);
}

enum fl_status fl_store_faces_key_max(struct fl_store *st, const char *collection, int64_t *out,
                                      struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && collection && out);
    rc = check_coll(collection, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_faces_key_max(st, collection, out, err);
}

/* ============================== Staged imports ============================== */

static enum fl_status check_import_id(const char *id, struct fl_err *err)
{
    FL_ASSERT(id);
    return check_str("import id", id, FL_STORE_NAME_MAX, err);
}

enum fl_status fl_store_import_open(struct fl_store *st, const struct fl_store_import *imp,
                                    struct fl_err *err)
{
    struct fl_store_collection c;
    enum fl_status rc;
    FL_ASSERT(st && imp && imp->id && imp->collection && imp->model_id && imp->face_model_version);
    rc = check_import_id(imp->id, err);
    if (rc != FL_OK)
        return rc;
    memset(&c, 0, sizeof(c));
    c.id = imp->collection;
    c.model_id = imp->model_id;
    c.face_model_version = imp->face_model_version;
    c.dim = imp->dim;
    rc = check_collection_record(&c, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_import_open(st, imp, err);
}

enum fl_status fl_store_import_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                   struct fl_store_import *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && a && out);
    rc = check_import_id(id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_import_get(st, id, a, out, err);
}

enum fl_status fl_store_import_stage(struct fl_store *st, const char *id,
                                     const struct fl_store_face *faces, size_t n,
                                     const char *const *user_ids, size_t n_users,
                                     struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && (n == 0 || faces) && (n_users == 0 || user_ids));
    rc = check_import_id(id, err);
    if (rc == FL_OK && n)
        rc = check_faces("import", faces, n, err);
    for (size_t i = 0; rc == FL_OK && i < n_users; i++)
        rc = check_str("user id", user_ids[i], FL_STORE_USER_ID_MAX, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_import_stage(st, id, faces, n, user_ids, n_users, err);
}

enum fl_status fl_store_import_commit(struct fl_store *st, const char *id, struct fl_arena *a,
                                      struct fl_store_import *out, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st && (!out || a));
    rc = check_import_id(id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_import_commit(st, id, a, out, err);
}

enum fl_status fl_store_import_abort(struct fl_store *st, const char *id, struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(st);
    rc = check_import_id(id, err);
    if (rc != FL_OK)
        return rc;
    return st->m->x_import_abort(st, id, err);
}

enum fl_status fl_store_import_expire(struct fl_store *st, double before, size_t *out_n,
                                      struct fl_err *err)
{
    FL_ASSERT(st);
    return st->m->x_import_expire(st, before, out_n, err);
}
