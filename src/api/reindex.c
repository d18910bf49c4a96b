/*
 * reindex.c: FaceLinkService.ReindexCollection and FaceLinkService.DescribeJob
 * (DESIGN.md §5): move a collection to another face model without losing a
 * FaceId, ExternalImageId or UserId, in the background, from the crops
 * IndexFaces retained (crop.c).
 *
 * ReindexCollection {CollectionId, FaceModel} checks the collection and the
 * model, records a job (store jobs table, type "reindex", state QUEUED),
 * leaves a marker file <data_dir>/jobs/<JobId>.reindex and starts a thread;
 * it answers at once with the JobId. The thread, with two store connections
 * of its own (one streams crops, the other writes, as the store requires):
 *
 *   1. a fresh job drops any staging an abandoned job left
 *      (fl_store_reindex_abort); a resumed job keeps its own;
 *   2. counts the faces still to do, then streams their crops
 *      (fl_store_reindex_scan_crops, only_unstaged), re-embeds each with the
 *      new model on a face worker borrowed per face, and stages the vectors
 *      in batches of BATCH = 8 (each batch one transaction: an fsync per
 *      ~8 embeddings of 20-50 ms is noise) while updating the
 *      job's progress; searches and writes go on meanwhile against the old
 *      model, since the thread holds no service lock;
 *   3. under the EXCLUSIVE service lock: fl_store_reindex_commit (one
 *      transaction switches every vector, IndexFacesModelVersion and the
 *      collection's model), then the in-memory index is rebuilt from the
 *      store and swapped in (fl__api_coll_switch, which a staged import's
 *      commit in export.c uses too). Nobody sees a half-switched collection: calls
 *      before the lock use the old model throughout, calls after it the new
 *      one; an IndexFaces that embedded with the old model before the switch
 *      and writes after it is refused by its handler's model re-check.
 *      If faces were indexed meanwhile the commit reports a conflict and
 *      step 2 runs again for them (at most ROUNDS times); faces that have no
 *      crop (indexed with crop_retention none) cannot be re-embedded: the job
 *      fails, saying how many, and the collection stays on its old model;
 *   4. marks the job SUCCEEDED (or FAILED with a message) and removes the
 *      marker.
 *
 * Crash safety: until the commit nothing the collection serves has changed,
 * so a crash (or a service close) mid-job leaves the old collection intact.
 * The staged vectors and the marker survive; fl_service_open() resumes every
 * job whose marker is still there and whose state is QUEUED or RUNNING
 * (fl__api_jobs_resume), skipping faces already staged. The marker exists
 * because the store has no "list jobs" call; with one node per data
 * directory that is enough (several nodes on one PostgreSQL would need a
 * store-side listing).
 *
 * DescribeJob {JobId}: the job's type, collection, status, progress (0-100),
 * message and times.
 *
 * Threading: the job list (svc->jobs) is guarded by svc->jobs_mu; a job
 * thread touches the service's collections only under the exclusive service
 * lock (step 3); fl_service_close() sets svc->jobs_stop and joins every job
 * thread first (a stopped job stays RUNNING: resumable).
 */
#include "api/api.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH  8
#define ROUNDS 4

struct fl__api_job {
    char id[FL_UUID_STR_LEN + 1];
    char *collection;
    const struct fl__api_model *model; /* target */
    struct fl_service *svc;
    pthread_t thread;
    bool started;
    struct fl__api_job *next;
};

/* ============================== Markers ============================== */

static void marker_path(const struct fl_service *svc, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/jobs/%s.reindex", svc->data_dir, id);
}

static enum fl_status marker_write(const struct fl_service *svc, const char *id, struct fl_err *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/jobs", svc->data_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return fl_err_set(err, FL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    marker_path(svc, id, path, sizeof(path));
    return fl_file_write_atomic(path, "", 0, err);
}

static void marker_remove(const struct fl_service *svc, const char *id)
{
    char path[4096];
    marker_path(svc, id, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        FL_LOG_W("reindex: cannot remove %s: %s", path, strerror(errno));
}

/* ============================== The job thread ============================== */

struct run {
    struct fl__api_job *job;
    struct fl_store *scan_st, *write_st;
    struct fl_index *ix; /* the new model's index, built as faces are staged (NULL: none) */
    struct fl_store_embedding items[BATCH];
    float vecs[BATCH][FL_FACE_MAX_DIM];
    size_t n_items;
    uint64_t done, total;
    struct fl_err err;
};

static bool stopping(struct fl_service *svc)
{
    bool s;
    pthread_mutex_lock(&svc->jobs_mu);
    s = svc->jobs_stop;
    pthread_mutex_unlock(&svc->jobs_mu);
    return s;
}

static void progress(struct run *r, const char *what)
{
    char msg[160];
    struct fl_err e;
    double p = r->total ? (double)r->done / (double)r->total : 0.0;
    snprintf(msg, sizeof(msg), "%s: %llu of %llu faces re-embedded with %s", what,
             (unsigned long long)r->done, (unsigned long long)r->total, r->job->model->model_id);
    if (fl_store_job_update(r->write_st, r->job->id, FL_STORE_JOB_RUNNING, p > 1 ? 1 : p, msg,
                            &e) != FL_OK)
        FL_LOG_W("reindex %s: progress not recorded: %s", r->job->id, e.msg);
}

static enum fl_status flush(struct run *r)
{
    enum fl_status rc;
    if (r->n_items == 0)
        return FL_OK;
    rc = fl_store_reindex_stage(r->write_st, r->job->collection, r->items, r->n_items, NULL,
                                &r->err);
    if (rc != FL_OK)
        return rc;
    if (r->ix) {
        /* a failure here only costs the head start: the switch adds what is missing */
        for (size_t i = 0; i < r->n_items; i++)
            if (fl_index_add(r->ix, (uint64_t)r->items[i].key, r->items[i].embedding, NULL) !=
                FL_OK) {
                fl_index_free(r->ix);
                r->ix = NULL;
                break;
            }
    }
    r->done += r->n_items;
    r->n_items = 0;
    progress(r, "running");
    return FL_OK;
}

static enum fl_status count_one(void *ud, int64_t key, const char *face_id, const void *crop,
                                size_t crop_len)
{
    (void)key;
    (void)face_id;
    (void)crop;
    (void)crop_len;
    ((struct run *)ud)->total++;
    return FL_OK;
}

static enum fl_status embed_one(void *ud, int64_t key, const char *face_id, const void *crop,
                                size_t crop_len)
{
    struct run *r = ud;
    struct fl_service *svc = r->job->svc;
    struct fl_face_worker *w;
    enum fl_status rc;
    if (stopping(svc))
        return fl_err_set(&r->err, FL_ERR_BUSY, "the service is closing");
    if (svc->reindex_exit_after && r->done >= svc->reindex_exit_after)
        _exit(0); /* test hook: a crash mid-job, after some batches were staged */
    w = fl__api_face_take(svc, &r->err);
    if (!w)
        return r->err.code;
    rc = fl__api_crop_embed(w, crop, crop_len, r->job->model->face_model, r->vecs[r->n_items],
                            &r->err);
    fl__api_face_give(svc, w);
    if (rc != FL_OK) {
        char m[FL_ERR_MSG_MAX];
        snprintf(m, sizeof(m), "%s", r->err.msg);
        return fl_err_set(&r->err, rc, "face %s: %s", face_id, m);
    }
    r->items[r->n_items].key = key;
    r->items[r->n_items].embedding = r->vecs[r->n_items];
    r->items[r->n_items].dim = r->job->model->dim;
    r->n_items++;
    return r->n_items == BATCH ? flush(r) : FL_OK;
}

/* One pass over the faces not staged yet. */
static enum fl_status stage_pass(struct run *r, bool count_first)
{
    enum fl_status rc;
    if (count_first) {
        r->total = r->done = 0;
        rc = fl_store_reindex_scan_crops(r->scan_st, r->job->collection, true, count_one, r,
                                         &r->err);
        if (rc != FL_OK)
            return rc;
        progress(r, "running");
    }
    rc = fl_store_reindex_scan_crops(r->scan_st, r->job->collection, true, embed_one, r, &r->err);
    if (rc == FL_OK)
        rc = flush(r);
    return rc;
}

enum fl_status fl__api_coll_switch(struct fl_service *svc, struct fl_store *st, const char *id,
                                   const struct fl__api_model *m, struct fl_index *prebuilt,
                                   fl__api_switch_fn commit, void *ud, struct fl_err *err)
{
    struct fl__api_coll *c = fl__api_coll_find(svc, id);
    struct fl__api_keymap keys;
    struct fl_index *ix = prebuilt;
    size_t n_fixed = 0;
    bool added = false;
    enum fl_status rc;

    fl__api_keymap_init(&keys);
    /* the new in-memory state is reconciled with the committed store below;
     * make the index (and the collection, when the commit creates it) first
     * so a failure there changes nothing */
    if (!ix)
        ix = fl_index_new(m->dim, m->metric, err);
    if (!ix) {
        rc = err ? err->code : FL_ERR_NOMEM;
        goto out;
    }
    if (!c) {
        rc = fl__api_coll_add(svc, id, m, &c, err);
        if (rc != FL_OK)
            goto out;
        added = true;
    }
    rc = commit(st, ud, err);
    if (rc != FL_OK) {
        if (added)
            fl__api_coll_drop(svc, id);
        goto out;
    }
    rc = fl__api_index_reconcile(st, id, m->dim, ix, &keys, &n_fixed, err);
    if (rc != FL_OK) {
        /* committed but not loadable here: serving the old index would be
         * wrong (the store no longer matches it); drop the collection from
         * memory so a reopen rebuilds it */
        char msg[FL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
        FL_LOG_E("collection %s: switched in the store but the index rebuild failed (%s); "
                 "reopen the service",
                 id, msg);
        fl__api_coll_drop(svc, id);
        fl_err_set(err, rc,
                   "switched, but the in-memory index could not be rebuilt; "
                   "restart the service");
        goto out;
    }
    if (prebuilt)
        FL_LOG_I("collection %s: switched; %zu faces changed while the index was built", id,
                 n_fixed);
    fl_index_free(c->ix);
    c->ix = ix;
    ix = NULL;
    fl__api_keymap_fini(&c->keys);
    c->keys = keys;
    fl__api_keymap_init(&keys);
    c->model = m;
out:
    fl_index_free(ix);
    fl__api_keymap_fini(&keys);
    return rc;
}

static enum fl_status reindex_commit(struct fl_store *st, void *ud, struct fl_err *err)
{
    return fl_store_reindex_commit(st, ud, err);
}

/* Step 3, under the exclusive service lock. FL_ERR_CONFLICT: faces without
 * a staged vector remain. */
static enum fl_status switch_collection(struct run *r)
{
    struct fl_service *svc = r->job->svc;
    const struct fl__api_model *m = r->job->model;
    struct fl_store_collection sc;
    enum fl_status rc;

    memset(&sc, 0, sizeof(sc));
    sc.id = r->job->collection;
    sc.model_id = m->model_id;
    sc.face_model_version = m->face_model_version;
    sc.dim = m->dim;
    pthread_rwlock_wrlock(&svc->lock);
    if (!fl__api_coll_find(svc, r->job->collection)) {
        rc = fl_err_set(&r->err, FL_ERR_NOT_FOUND, "the collection was deleted during the job");
        fl_index_free(r->ix);
    } else {
        rc = fl__api_coll_switch(svc, r->write_st, r->job->collection, m, r->ix, reindex_commit,
                                 &sc, &r->err);
    }
    r->ix = NULL; /* freed, or the switch's now */
    pthread_rwlock_unlock(&svc->lock);
    return rc;
}

static void *job_main(void *arg)
{
    struct fl__api_job *job = arg;
    struct fl_service *svc = job->svc;
    struct run *r = fl_calloc(1, sizeof(*r));
    enum fl_status rc = FL_ERR_NOMEM;
    struct fl_err e;
    bool stopped = false;

    if (!r) {
        FL_LOG_E("reindex %s: out of memory", job->id);
        return NULL;
    }
    r->job = job;
    /* the new index grows with the staged vectors, so the switch only has to
     * fix what changed meanwhile (NULL on failure: the switch builds it) */
    r->ix = fl_index_new(job->model->dim, job->model->metric, NULL);
    rc = fl_store_open(svc->dsn, NULL, &r->scan_st, &r->err);
    if (rc == FL_OK)
        rc = fl_store_open(svc->dsn, NULL, &r->write_st, &r->err);
    for (int round = 0; rc == FL_OK || rc == FL_ERR_CONFLICT; round++) {
        uint64_t before = r->done;
        if (round == ROUNDS) {
            rc = fl_err_set(&r->err, FL_ERR_CONFLICT,
                            "faces keep being indexed faster than the job re-embeds them; "
                            "re-run it at a quieter time");
            break;
        }
        rc = stage_pass(r, round == 0);
        if (rc != FL_OK)
            break;
        rc = switch_collection(r);
        if (rc != FL_ERR_CONFLICT)
            break;
        if (round > 0 && r->done == before) {
            /* nothing left to embed, yet faces lack a new vector: no crop */
            char m[FL_ERR_MSG_MAX];
            snprintf(m, sizeof(m), "%s", r->err.msg);
            rc = fl_err_set(&r->err, FL_ERR_CONFLICT,
                            "%s; they have no retained crop (indexed with crop_retention none): "
                            "delete them, or index their photos again, then re-run the job",
                            m);
            break;
        }
    }
    stopped = rc == FL_ERR_BUSY && stopping(svc);
    if (r->write_st && !stopped) {
        char msg[FL_ERR_MSG_MAX + 64];
        if (rc == FL_OK) {
            snprintf(msg, sizeof(msg), "%llu faces re-embedded; collection %s now uses %s",
                     (unsigned long long)r->done, job->collection, job->model->model_id);
            rc = fl_store_job_update(r->write_st, job->id, FL_STORE_JOB_SUCCEEDED, 1.0, msg, &e);
        } else {
            snprintf(msg, sizeof(msg), "%s", r->err.msg);
            if (fl_store_reindex_abort(r->write_st, job->collection, &e) != FL_OK &&
                e.code != FL_ERR_NOT_FOUND)
                FL_LOG_W("reindex %s: staging not dropped: %s", job->id, e.msg);
            rc = fl_store_job_update(r->write_st, job->id, FL_STORE_JOB_FAILED,
                                     r->total ? (double)r->done / (double)r->total : 0.0, msg, &e);
            FL_LOG_W("reindex %s of %s failed: %s", job->id, job->collection, msg);
        }
        if (rc == FL_OK)
            marker_remove(svc, job->id);
        else
            FL_LOG_E("reindex %s: final state not recorded: %s", job->id, e.msg);
    } else if (!r->write_st) {
        FL_LOG_E("reindex %s: cannot open the store: %s (the job stays resumable)", job->id,
                 r->err.msg);
    }
    fl_store_close(r->scan_st);
    fl_store_close(r->write_st);
    fl_index_free(r->ix);
    fl_free(r);
    return NULL;
}

/* ============================== Job list ============================== */

static void job_free(struct fl__api_job *j)
{
    if (!j)
        return;
    fl_free(j->collection);
    fl_free(j);
}

/* Register and start a job thread. */
static enum fl_status job_start(struct fl_service *svc, const char *id, const char *coll,
                                const struct fl__api_model *m, struct fl_err *err)
{
    struct fl__api_job *j = fl_calloc(1, sizeof(*j));
    if (!j || !(j->collection = fl_strdup(coll))) {
        job_free(j);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (job)");
    }
    memcpy(j->id, id, FL_UUID_STR_LEN + 1);
    j->model = m;
    j->svc = svc;
    pthread_mutex_lock(&svc->jobs_mu);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        pthread_mutex_unlock(&svc->jobs_mu);
        job_free(j);
        return fl_err_set(err, FL_ERR_INTERNAL, "cannot start the job thread");
    }
    j->started = true;
    j->next = svc->jobs;
    svc->jobs = j;
    pthread_mutex_unlock(&svc->jobs_mu);
    return FL_OK;
}

/* Is a job of this service working on collection coll? (Finished threads
 * stay on the list until close; their marker is gone.) */
static bool job_running(struct fl_service *svc, const char *coll)
{
    bool busy = false;
    pthread_mutex_lock(&svc->jobs_mu);
    for (struct fl__api_job *j = svc->jobs; j && !busy; j = j->next) {
        char path[4096];
        if (strcmp(j->collection, coll) != 0)
            continue;
        marker_path(svc, j->id, path, sizeof(path));
        busy = access(path, F_OK) == 0;
    }
    pthread_mutex_unlock(&svc->jobs_mu);
    return busy;
}

void fl__api_jobs_stop(struct fl_service *svc)
{
    struct fl__api_job *j;
    pthread_mutex_lock(&svc->jobs_mu);
    svc->jobs_stop = true;
    j = svc->jobs;
    svc->jobs = NULL;
    pthread_mutex_unlock(&svc->jobs_mu);
    while (j) {
        struct fl__api_job *next = j->next;
        if (j->started)
            pthread_join(j->thread, NULL);
        job_free(j);
        j = next;
    }
}

enum fl_status fl__api_jobs_resume(struct fl_service *svc, struct fl_err *err)
{
    char dir[4096];
    struct dirent *de;
    struct fl_arena a;
    DIR *d;
    enum fl_status rc = FL_OK;
    snprintf(dir, sizeof(dir), "%s/jobs", svc->data_dir);
    d = opendir(dir);
    if (!d)
        return FL_OK;
    fl_arena_init(&a, 0);
    while ((de = readdir(d)) != NULL && rc == FL_OK) {
        char id[FL_UUID_STR_LEN + 1];
        struct fl_store_job job;
        const struct fl__api_model *m;
        json_t *params = NULL;
        size_t len = strlen(de->d_name);
        if (len != FL_UUID_STR_LEN + 8 || strcmp(de->d_name + FL_UUID_STR_LEN, ".reindex") != 0)
            continue;
        memcpy(id, de->d_name, FL_UUID_STR_LEN);
        id[FL_UUID_STR_LEN] = '\0';
        fl_arena_reset(&a);
        if (fl_store_job_get(svc->stores[0], id, &a, &job, NULL) != FL_OK ||
            (job.state != FL_STORE_JOB_QUEUED && job.state != FL_STORE_JOB_RUNNING) ||
            !job.collection || !fl__api_coll_find(svc, job.collection)) {
            marker_remove(svc, id); /* finished, or its collection is gone */
            continue;
        }
        if (job.params)
            fl_json_parse_object(job.params, strlen(job.params), &params, NULL);
        m = fl__api_model_find(json_string_value(json_object_get(params, "FaceModel")));
        json_decref(params);
        if (!m) {
            FL_LOG_W("reindex %s: unknown target model in its parameters; not resumed", id);
            continue;
        }
        FL_LOG_I("reindex %s of %s: resuming", id, job.collection);
        rc = job_start(svc, id, job.collection, m, err);
    }
    closedir(d);
    fl_arena_fini(&a);
    return rc;
}

/* ============================== Handlers ============================== */

FL__API_HANDLER(fl__api_op_reindex_collection)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *model = fl__api_get_str(req, "FaceModel");
    const struct fl__api_model *m = fl__api_model_find(model);
    char job_id[FL_UUID_STR_LEN + 1];
    struct fl_store_job job;
    struct fl__api_coll *c;
    json_t *o = NULL, *params = NULL;
    char *ptext = NULL;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    if (!m)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: unknown FaceModel '%s' (known: dlib, "
                          "mobilefacenet, or a model id or FaceModelVersion)",
                          model);
    if (m == c->model)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: collection %s already uses %s", id,
                          m->model_id);
    if (job_running(ctx->svc, id))
        return fl_err_set(err, FL_ERR_CONFLICT, "collection %s is being re-indexed already", id);
    rc = fl_uuid_v4(job_id, err);
    if (rc != FL_OK)
        return rc;
    params = json_pack("{s:s,s:s}", "FaceModel", m->model_id, "FromModel", c->model->model_id);
    ptext = params ? json_dumps(params, JSON_COMPACT) : NULL;
    o = json_object();
    if (!ptext || !fl__api_set(o, "JobId", json_string(job_id)) ||
        !fl__api_set(o, "CollectionId", json_string(id)) ||
        !fl__api_set(o, "FaceModel", fl__api_model_json(m)) ||
        !fl__api_set(o, "Status", json_string("QUEUED"))) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(&job, 0, sizeof(job));
    job.id = job_id;
    job.type = "reindex";
    job.collection = id;
    job.state = FL_STORE_JOB_QUEUED;
    job.params = ptext;
    job.message = "queued";
    rc = fl_store_job_create(ctx->st, &job, err);
    if (rc == FL_OK)
        rc = marker_write(ctx->svc, job_id, err);
    if (rc == FL_OK) {
        /* a fresh job: drop what an abandoned one may have staged */
        rc = fl_store_reindex_abort(ctx->st, id, err);
    }
    if (rc == FL_OK)
        rc = job_start(ctx->svc, job_id, id, m, err);
    if (rc != FL_OK) {
        struct fl_err e2;
        marker_remove(ctx->svc, job_id);
        if (fl_store_job_update(ctx->st, job_id, FL_STORE_JOB_FAILED, 0, "could not start", &e2) !=
            FL_OK)
            FL_LOG_W("reindex %s: %s", job_id, e2.msg);
        goto out;
    }
    *out_resp = o;
    o = NULL;
out:
    fl_free(ptext);
    json_decref(params);
    json_decref(o);
    return rc;
}

static const char *state_name(enum fl_store_job_state s)
{
    switch (s) {
    case FL_STORE_JOB_QUEUED:
        return "QUEUED";
    case FL_STORE_JOB_RUNNING:
        return "RUNNING";
    case FL_STORE_JOB_SUCCEEDED:
        return "SUCCEEDED";
    case FL_STORE_JOB_FAILED:
        return "FAILED";
    }
    return "UNKNOWN";
}

FL__API_HANDLER(fl__api_op_describe_job)
{
    const char *id = fl__api_get_str(req, "JobId");
    struct fl_store_job job;
    json_t *o, *params = NULL;
    enum fl_status rc = fl_store_job_get(ctx->st, id, &ctx->arena, &job, err);
    if (rc == FL_ERR_NOT_FOUND)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The job id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    if (job.params)
        fl_json_parse_object(job.params, strlen(job.params), &params, NULL);
    o = json_object();
    if (!fl__api_set(o, "JobId", json_string(job.id)) ||
        !fl__api_set(o, "JobType", json_string(job.type)) ||
        (job.collection && !fl__api_set(o, "CollectionId", json_string(job.collection))) ||
        !fl__api_set(o, "Status", json_string(state_name(job.state))) ||
        !fl__api_set(o, "Progress", fl__api_real(job.progress * 100.0)) ||
        (job.message && !fl__api_set(o, "StatusMessage", json_string(job.message))) ||
        (params && !fl__api_set(o, "Parameters", json_incref(params))) ||
        !fl__api_set(o, "CreationTimestamp", json_real(job.created)) ||
        !fl__api_set(o, "UpdateTimestamp", json_real(job.updated))) {
        json_decref(params);
        json_decref(o);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    json_decref(params);
    *out_resp = o;
    return FL_OK;
}
