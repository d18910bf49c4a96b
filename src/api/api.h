/*
 * api.h: the operations layer behind fl_service_call() (library-internal to
 * src/api and its tests).
 *
 * A struct fl_service owns a pool of store connections, one vector index per
 * collection (rebuilt from the store at open, updated after every committed
 * write) and the configuration. fl_service_call() resolves the target to an
 * operation, parses and validates the JSON body against the generated spec
 * table (spec.h), then runs the operation's handler under the service lock
 * with a borrowed store connection and a per-call arena.
 *
 * Handlers are transport-free: JSON object in, JSON object out. The
 * validator has already checked every member's type and limits; handlers do
 * the semantic checks (existence, "exactly one of") before any write, and a
 * handler that fails leaves the store and the indexes as they were.
 *
 * Threading: see the essay in service.c. Handlers run with ctx->svc->lock
 * held (shared for read-only operations, exclusive for writes) and own
 * ctx->st and ctx->arena for the duration of the call.
 */
#ifndef FL_API_H
#define FL_API_H

#include "api/spec.h"
#include "core/core.h"
#include "face/face.h"
#include "index/index.h"
#include "store/store.h"

#include <pthread.h>

/* =============================== Face models =============================== */

/* A face model a collection can be bound to, derived from the face engine's
 * registry (models.c). */
struct fl__api_model {
    const char *model_id;           /* "dlib-resnet128@face-api-1.7.15" */
    const char *face_model_version; /* the FaceModelVersion string, "101.0" */
    uint32_t dim;                   /* embedding length */
    enum fl_index_metric metric;    /* distance the index uses */
    enum fl_face_model face_model;  /* the engine's id */
};
/* Model by model id, short name ("dlib", "mobilefacenet") or
 * FaceModelVersion; NULL if unknown. */
const struct fl__api_model *fl__api_model_find(const char *id_or_version);
/* The model new collections get when the configuration names none. */
const struct fl__api_model *fl__api_model_default(void);

/* Similarity 0..100 for an index distance under a model. Must be
 * non-increasing in distance (search filters thresholds on it after a
 * k-nearest query). similarity.c; placeholder until calibrated. */
double fl__api_similarity(const char *model_id, float distance);
/* An index distance bound for Similarity >= thr with model m: every face
 * that passes is within it (a little farther ones may be returned too; the
 * caller checks the Similarity). +infinity for thr <= 0. */
float fl__api_distance_bound(const struct fl__api_model *m, double thr);

/* What IndexFaces keeps of each face for re-indexing (crop.c; the blob's
 * format is in crop.c's essay and docs/internals/api.md). */
enum fl__api_crop_mode {
    FL__API_CROP_NONE = 0,   /* nothing: the collection cannot be re-indexed */
    FL__API_CROP_CROPS = 1,  /* a loose aligned crop + landmarks (the default) */
    FL__API_CROP_IMAGES = 2, /* the whole photo + landmarks */
};

/* =========================== Per-collection state =========================== */

/* Open-addressing map from store face key (the index id) to FaceId. */
struct fl__api_keymap {
    int64_t *keys;                    /* 0 = empty, -1 = deleted */
    char (*ids)[FL_UUID_STR_LEN + 1]; /* FaceId per slot */
    size_t cap, n, n_deleted;         /* cap is 0 or a power of two */
};
void fl__api_keymap_init(struct fl__api_keymap *m);
void fl__api_keymap_fini(struct fl__api_keymap *m);
/* Make room for n more entries (so the following puts cannot fail). */
enum fl_status fl__api_keymap_reserve(struct fl__api_keymap *m, size_t n, struct fl_err *err);
/* Insert or replace; FL_ERR_NOMEM only when not reserved. key > 0. */
enum fl_status fl__api_keymap_put(struct fl__api_keymap *m, int64_t key, const char *face_id,
                                  struct fl_err *err);
/* FaceId of key or NULL (borrowed until the next put/del). */
const char *fl__api_keymap_get(const struct fl__api_keymap *m, int64_t key);
/* Remove key if present; never fails. */
void fl__api_keymap_del(struct fl__api_keymap *m, int64_t key);

/* A collection as the service holds it in memory. */
struct fl__api_coll {
    char *id;                          /* CollectionId (owned) */
    const struct fl__api_model *model; /* bound model */
    struct fl_index *ix;               /* owned; ids are store face keys */
    struct fl__api_keymap keys;        /* key -> FaceId */
    struct fl__api_coll *next;
};

/* ================================ The service ================================ */

struct fl_service {
    char *data_dir;
    char *dsn;
    char *region;
    char *account_id;
    const struct fl__api_model *default_model;
    enum fl__api_crop_mode crop_mode; /* what IndexFaces retains (config crop_retention) */
    /* shared: read-only operations; exclusive: operations that write */
    pthread_rwlock_t lock;
    /* store connection pool */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct fl_store **stores;
    bool *store_busy;
    int n_stores;
    bool opened;             /* fl_service_open() finished: close saves index snapshots */
    int n_snapshots_loaded;   /* collections whose index came from a snapshot at open */
    int n_snapshots_repaired; /* of those, how many needed rows fixed */
    /* collections, changed only under the exclusive lock */
    struct fl__api_coll *colls;
    /* the face engine, loaded on the first image operation (engine_mu), and
     * a pool of per-thread face workers (pool_mu / pool_cv, created lazily) */
    char *models_dir;
    pthread_mutex_t engine_mu;
    bool engine_tried;
    struct fl_face_engine *engine;
    struct fl_err engine_err; /* why loading failed, when it did */
    struct fl_face_worker **faces;
    bool *face_busy;
    int n_faces;
    /* background jobs (reindex.c), guarded by jobs_mu */
    pthread_mutex_t jobs_mu;
    struct fl__api_job *jobs;
    bool jobs_stop;
    uint64_t reindex_exit_after; /* test hook: _exit(0) after this many staged faces (0: off) */
};

/* ============================== Retained crops ============================== */

struct fl_image;
/* "none" | "crops" | "images" (NULL: crops); *ok false for anything else. */
enum fl__api_crop_mode fl__api_crop_mode_parse(const char *s, bool *ok);
/* The retained blob of face f of img (mode != NONE): *out (fl_free) of
 * *out_len bytes. Thread-safe. */
enum fl_status fl__api_crop_make(enum fl__api_crop_mode mode, const struct fl_image *img,
                                 const struct fl_face *f, uint8_t **out, size_t *out_len,
                                 struct fl_err *err);
/* Decode a blob: the pixels (caller fl_image_free()s) and a face whose lm68
 * are in their coordinates (other fields zero). FL_ERR_CORRUPT for bytes
 * that are not a valid blob. */
enum fl_status fl__api_crop_open(const void *blob, size_t len, struct fl_image *out_img,
                                 struct fl_face *out_face, struct fl_err *err);
/* Embedding with model m of the face a blob holds (dim floats into out). */
enum fl_status fl__api_crop_embed(struct fl_face_worker *w, const void *blob, size_t len,
                                  enum fl_face_model m, float *out, struct fl_err *err);

struct fl__api_image_job; /* image.c: decoded image(s), faces and embeddings */
struct fl__api_job;       /* reindex.c: a background job */

/* Resume the reindex jobs a previous process left unfinished (markers in
 * <data_dir>/jobs); called once by fl_service_open after the collections are
 * loaded. */
enum fl_status fl__api_jobs_resume(struct fl_service *svc, struct fl_err *err);
/* Stop and join every job thread (they stay resumable); fl_service_close. */
void fl__api_jobs_stop(struct fl_service *svc);

/* Per-call context handed to handlers. */
struct fl__api_ctx {
    struct fl_service *svc;
    struct fl_store *st;   /* borrowed connection */
    struct fl_arena arena; /* store results; reset after the call */
    const struct fl__api_op_spec *spec;
    char *out_json; /* response serialised ahead of the commit (fl__api_prepare) */
    size_t out_len;
    struct fl__api_image_job *job; /* made by the operation's prepare step, or NULL */
};

typedef enum fl_status (*fl__api_handler_fn)(struct fl__api_ctx *ctx, json_t *req,
                                             json_t **out_resp, struct fl_err *err);
/* An operation's optional first step, run WITHOUT the service lock (and
 * without a store connection): image decoding and inference, which take
 * tens of milliseconds and must not hold up other calls. It leaves its
 * result in ctx->job for the handler. */
typedef enum fl_status (*fl__api_prepare_fn)(struct fl__api_ctx *ctx, json_t *req,
                                             struct fl_err *err);
void fl__api_image_job_free(struct fl__api_image_job *job);

/* Borrow a face worker (loading the engine on first use); NULL with err set
 * (InternalServerError naming the missing models) when the engine cannot be
 * loaded. Give it back with fl__api_face_give(). Thread-safe. */
struct fl_face_worker *fl__api_face_take(struct fl_service *svc, struct fl_err *err);
void fl__api_face_give(struct fl_service *svc, struct fl_face_worker *w);

/* ============================ Shared handler helpers ============================ */

/* The in-memory collection or NULL. */
struct fl__api_coll *fl__api_coll_find(struct fl_service *svc, const char *id);
/* Same, or FL_ERR_NOT_FOUND with the service's message. */
enum fl_status fl__api_coll_require(struct fl_service *svc, const char *id,
                                    struct fl__api_coll **out, struct fl_err *err);
/* Add a collection to the service (index created empty); *out borrowed. */
enum fl_status fl__api_coll_add(struct fl_service *svc, const char *id,
                                const struct fl__api_model *model, struct fl__api_coll **out,
                                struct fl_err *err);
/* Unlink and free a collection's in-memory state (no-op if absent). */
void fl__api_coll_drop(struct fl_service *svc, const char *id);

/* Index snapshots (snapshot.c). save: every collection with an HNSW graph,
 * at close (failures are logged, never fatal). load: collection coll_id's
 * snapshot if it exists and matches model m and the store's change sequence
 * gen (else NULL, logged unless absent). verify: the snapshot holds store row
 * (key, embedding) (FL_OK) or not (FL_ERR_CORRUPT). */
void fl__api_snapshots_save(struct fl_service *svc);
struct fl_index *fl__api_snapshot_load(struct fl_service *svc, const char *coll_id,
                                       const struct fl__api_model *m, uint64_t gen);
enum fl_status fl__api_snapshot_verify(struct fl_index *ix, int64_t key, const float *embedding,
                                       uint32_t dim);
/* Make ix agree with the store's faces of collection id (dim floats each):
 * a row ix holds with the same vector is kept, any other added or replaced,
 * and what ix holds beyond the store's rows removed; keys (empty on entry)
 * gets every row's FaceId. *n_fixed: rows added, replaced or removed (0: ix
 * already matched). On error ix and keys are partly updated: drop them. */
enum fl_status fl__api_index_reconcile(struct fl_store *st, const char *id, uint32_t dim,
                                       struct fl_index *ix, struct fl__api_keymap *keys,
                                       size_t *n_fixed, struct fl_err *err);

/* A store transaction that changes a whole collection (reindex.c's commit,
 * a staged import's commit); FL_OK means committed. */
typedef enum fl_status (*fl__api_switch_fn)(struct fl_store *st, void *ud, struct fl_err *err);
/* Switch collection id atomically to what commit(st, ud) writes in one store
 * transaction, with model m: take `prebuilt` (an index of model m made ahead
 * of the switch, owned from here on, even on failure) or an empty index (and
 * the in-memory collection, when absent: the commit creates it), run the
 * commit, reconcile the index with the store (fl__api_index_reconcile: with
 * a good prebuilt index only what changed meanwhile is touched) and swap it
 * and the key map in. Caller holds the
 * EXCLUSIVE service lock, so no call sees a half-switched collection. A
 * failure before or in the commit changes nothing; a failed rebuild after it
 * drops the collection from memory (a reopen reloads it) and says so.
 * reindex.c. */
enum fl_status fl__api_coll_switch(struct fl_service *svc, struct fl_store *st, const char *id,
                                   const struct fl__api_model *m, struct fl_index *prebuilt,
                                   fl__api_switch_fn commit, void *ud, struct fl_err *err);

/* String member or NULL (absent or JSON null). Borrowed from req. */
const char *fl__api_get_str(const json_t *req, const char *name);
/* Integer member or def. */
long long fl__api_get_int(const json_t *req, const char *name, long long def);
/* Number member, or the spec default of the member, or def. */
double fl__api_get_num(const struct fl__api_ctx *ctx, const json_t *req, const char *name,
                       double def);

/* Set o[k] = v (v's reference is stolen); returns false on failure (v NULL or
 * no memory); after a false the caller reports FL_ERR_NOMEM. */
bool fl__api_set(json_t *o, const char *k, json_t *v);
/* Append v to array a (stolen); false on failure. */
bool fl__api_push(json_t *a, json_t *v);
/* A float as the service prints it: float32 widened to double. */
json_t *fl__api_real(double v);
/* The JSON Face object of a stored face; NULL on no memory. */
json_t *fl__api_face_json(const struct fl_store_face *f);
/* "arn:aws:rekognition:<region>:<account>:collection/<id>" (with_prefix) or
 * the same without "arn:"; NULL on no memory. */
json_t *fl__api_collection_arn(const struct fl_service *svc, const char *id, bool with_prefix);

/* Serialise resp now, before the handler's store write, so that nothing
 * needs memory once the write has committed: a call that fails for memory
 * fails before it changes anything. May be called again (the text is
 * replaced). The handler still hands resp back through *out_resp. */
enum fl_status fl__api_prepare(struct fl__api_ctx *ctx, const json_t *resp, struct fl_err *err);

/* Insert faces (caller fills everything but key/created) into the store and
 * the collection's index in one step: all or nothing. Used by IndexFaces
 * once the engine lands, and by tests to seed collections. */
enum fl_status fl__api_faces_commit(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    struct fl_store_face *faces, size_t n, struct fl_err *err);

/* Test hook: run fn with a context (store connection, exclusive lock) as a
 * write handler would. */
enum fl_status fl__api_with_ctx(struct fl_service *svc,
                                enum fl_status (*fn)(struct fl__api_ctx *ctx, void *ud,
                                                     struct fl_err *err),
                                void *ud, struct fl_err *err);

/* Append to `matches` the FaceMatches of a query vector: the collection's
 * nearest faces with Similarity >= thr, best first, at most max, the face
 * with key *exclude (if not NULL) left out. search.c. */
enum fl_status fl__api_face_matches(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    const float *vec, size_t max, const uint64_t *exclude,
                                    double thr, json_t *matches, struct fl_err *err);
/* Append to `matches` the UserMatches of n query vectors (NULL entries are
 * skipped; self_keys[i], if self_keys is not NULL, is left out of vector i's
 * search): every user with a face at Similarity >= thr, scored by its best
 * face, best first, at most max_users, exclude_user left out. search.c. */
enum fl_status fl__api_user_matches(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    const float *const *vecs, const uint64_t *self_keys, size_t n,
                                    const char *exclude_user, double thr, size_t max_users,
                                    json_t *matches, struct fl_err *err);

/* ================================ Handlers ================================ */

#define FL__API_HANDLER(name)                                                                      \
    enum fl_status name(struct fl__api_ctx *ctx, json_t *req, json_t **out_resp, struct fl_err *err)

/* collections.c */
FL__API_HANDLER(fl__api_op_create_collection);
FL__API_HANDLER(fl__api_op_describe_collection);
FL__API_HANDLER(fl__api_op_list_collections);
FL__API_HANDLER(fl__api_op_delete_collection);
/* faces.c */
FL__API_HANDLER(fl__api_op_list_faces);
FL__API_HANDLER(fl__api_op_delete_faces);
/* search.c */
FL__API_HANDLER(fl__api_op_search_faces);
FL__API_HANDLER(fl__api_op_search_users);
/* users.c */
FL__API_HANDLER(fl__api_op_create_user);
FL__API_HANDLER(fl__api_op_delete_user);
FL__API_HANDLER(fl__api_op_list_users);
FL__API_HANDLER(fl__api_op_associate_faces);
FL__API_HANDLER(fl__api_op_disassociate_faces);
/* tags.c */
FL__API_HANDLER(fl__api_op_tag_resource);
FL__API_HANDLER(fl__api_op_untag_resource);
FL__API_HANDLER(fl__api_op_list_tags_for_resource);
/* image.c: the image operations; each has a prepare step (inference) */
enum fl_status fl__api_prep_index_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err);
enum fl_status fl__api_prep_search_by_image(struct fl__api_ctx *ctx, json_t *req,
                                            struct fl_err *err);
enum fl_status fl__api_prep_detect_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err);
enum fl_status fl__api_prep_compare_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err);
enum fl_status fl__api_prep_embed_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err);
FL__API_HANDLER(fl__api_op_embed_faces);
FL__API_HANDLER(fl__api_op_index_faces);
FL__API_HANDLER(fl__api_op_search_faces_by_image);
FL__API_HANDLER(fl__api_op_search_users_by_image);
FL__API_HANDLER(fl__api_op_detect_faces);
FL__API_HANDLER(fl__api_op_compare_faces);
enum fl_status fl__api_prep_search_all_by_image(struct fl__api_ctx *ctx, json_t *req,
                                                struct fl_err *err);
FL__API_HANDLER(fl__api_op_search_all_faces_by_image);
/* embeddings.c: FaceLinkService vectors out and in */
FL__API_HANDLER(fl__api_op_get_face_embeddings);
FL__API_HANDLER(fl__api_op_search_faces_by_embedding);
/* export.c: ExportCollection, ImportFaces and the staged import (DESIGN.md §8) */
FL__API_HANDLER(fl__api_op_export_collection);
FL__API_HANDLER(fl__api_op_import_faces);
FL__API_HANDLER(fl__api_op_start_import);
FL__API_HANDLER(fl__api_op_commit_import);
FL__API_HANDLER(fl__api_op_abort_import);
FL__API_HANDLER(fl__api_op_describe_import);
/* reindex.c: ReindexCollection, DescribeJob */
FL__API_HANDLER(fl__api_op_reindex_collection);
FL__API_HANDLER(fl__api_op_describe_job);
/* The model's provenance object (Id, Name, FaceModelVersion, Dimension,
 * Metric, Normalized, Alignment); NULL on no memory. */
json_t *fl__api_model_json(const struct fl__api_model *model);
/* A JSON array of dim numbers (float32 widened to double); NULL on no memory. */
json_t *fl__api_vector_json(const float *v, uint32_t dim);

#endif /* FL_API_H */
