/*
 * store.h: the collection store (library-internal; used by api/ and cli/ via
 * the service).
 *
 * The store is the source of truth for collections, faces (with their
 * embeddings and optional aligned crops), users, tags, jobs and idempotency
 * tokens; the vector index is a cache rebuilt from it (DESIGN.md §7). It knows
 * nothing of HTTP, JSON requests or pixels: plain C records in and out.
 *
 * One interface, several backends. struct fl_store is an object with a table
 * of x-methods (SQLite's sqlite3_io_methods idea): a backend defines
 *
 *     struct my_store { struct fl_store base; ... };   // base must be first
 *
 * and fills a static struct fl_store_methods. Callers use the fl_store_*()
 * functions below, which check the common preconditions and dispatch. The
 * SQLite backend (store_sqlite.c) is the default; a PostgreSQL backend plugs
 * in behind the same table (docs/internals/store.md).
 *
 * Conventions:
 *   - Every call returns enum fl_status and fills err (may be NULL) on error.
 *     FL_ERR_NOT_FOUND: the collection / face / user / job named is missing.
 *     FL_ERR_EXISTS: a collection, face or job with that id already exists.
 *     FL_ERR_CONFLICT: a user with that id already exists (Rekognition says
 *     ConflictException there). FL_ERR_IDEMPOTENT_MISMATCH: a client request
 *     token was reused with other parameters. FL_ERR_QUOTA: a per-user face
 *     or per-resource tag limit would be passed. FL_ERR_BUSY: the database
 *     stayed locked past the busy timeout. FL_ERR_NOMEM, FL_ERR_IO,
 *     FL_ERR_CORRUPT, FL_ERR_STORE: as their names say (backend code in
 *     err->sys_errno).
 *   - **A failed call changes nothing.** Every write is one transaction; a
 *     call that returns FL_OK has been committed durably (SQLite: WAL with
 *     synchronous=FULL) before it returns.
 *   - Variable-size results (strings, blobs, arrays) are allocated in a
 *     caller-supplied arena and are valid until the caller resets it; nothing
 *     returned needs an individual free. Outputs are written only on success.
 *   - Input strings are borrowed for the duration of the call.
 *   - Ids are compared byte for byte (CollectionId is case-sensitive). The
 *     store does not validate patterns (that is api/'s job) but checks
 *     lengths against the FL_STORE_*_MAX limits (FL_ERR_INVALID_ARG).
 *   - Pagination is keyset pagination: a page request carries the last key of
 *     the previous page ("after", NULL or "" for the first page) and a limit;
 *     a page answer carries `next`, the key to pass for the following page,
 *     or NULL when there is nothing more. Results are ordered by that key, so
 *     inserts and deletes between pages never duplicate or skip a row that
 *     existed throughout. The API layer makes `next` opaque for its clients.
 *
 * Threading: a struct fl_store is one database connection and belongs to one
 * thread at a time (SQLite's "multi-thread" mode). Open one per worker thread
 * on the same DSN; they see each other's committed writes. Opening is safe
 * from several threads and processes at once.
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include "core/core.h"

/* ================================ Limits ================================ */

#define FL_STORE_COLLECTION_ID_MAX 255 /* bytes, as Rekognition's CollectionId */
#define FL_STORE_USER_ID_MAX       128
#define FL_STORE_EXTERNAL_ID_MAX   255
#define FL_STORE_TOKEN_MAX         64 /* ClientRequestToken */
#define FL_STORE_TAG_KEY_MAX       128
#define FL_STORE_TAG_VALUE_MAX     256
#define FL_STORE_NAME_MAX          255    /* model ids, model versions, job ids and types */
#define FL_STORE_DIM_MAX           4096   /* embedding dimension */
#define FL_STORE_PAGE_MAX          100000 /* largest limit a page request may ask for */

/* ================================ Records ================================ */

/* A collection. In fl_store_collection_create() the strings are the caller's;
 * in results they live in the arena. */
struct fl_store_collection {
    const char *id;                 /* CollectionId */
    const char *model_id;           /* e.g. "dlib-resnet128@face-api-1.7.15" */
    const char *face_model_version; /* FaceModelVersion, a numeric string "101.0" */
    uint32_t dim;                   /* embedding dimension of the model, 1..FL_STORE_DIM_MAX */
    double created;                 /* epoch seconds; <= 0 on create means "now" */
    uint64_t face_count;            /* output only */
    uint64_t user_count;            /* output only */
};

/* Face box in ratios of the image size, as Rekognition's BoundingBox. */
struct fl_store_bbox {
    float left, top;     /* ratios; may fall outside [0,1] for faces cut by the border */
    float width, height; /* ratios */
};

/* A face. On put the caller fills everything but `key` (and `created` may be
 * <= 0 for "now"); the store writes `key` and `created` back on success. In
 * results, strings and blobs live in the arena; embedding/crop are NULL unless
 * asked for with FL_STORE_WANT_EMBEDDING / FL_STORE_WANT_CROP. */
struct fl_store_face {
    int64_t key;                        /* store-assigned, > 0, never reused: the index's id */
    char face_id[FL_UUID_STR_LEN + 1];  /* FaceId, unique within its collection */
    char image_id[FL_UUID_STR_LEN + 1]; /* ImageId */
    const char *external_image_id;      /* ExternalImageId or NULL */
    const char *user_id;                /* UserId or NULL */
    struct fl_store_bbox bbox;
    float confidence;          /* 0..100 */
    const char *model_version; /* IndexFacesModelVersion */
    const float *embedding;    /* dim floats, or NULL (results only) */
    uint32_t dim;              /* embedding length; set in results even without it */
    const void *crop;          /* aligned crop bytes (opaque to the store) or NULL */
    size_t crop_len;           /* bytes */
    double created;            /* epoch seconds */
};

/* Flags for face reads: which heavy columns to fetch. */
#define FL_STORE_WANT_EMBEDDING 1u
#define FL_STORE_WANT_CROP      2u

/* User status; persisted, append-only, values fixed (Rekognition's UserStatus). */
enum fl_store_user_status {
    FL_STORE_USER_ACTIVE = 0,   /* has at least one face */
    FL_STORE_USER_UPDATING = 1, /* reserved for asynchronous association */
    FL_STORE_USER_CREATING = 2, /* reserved */
    FL_STORE_USER_CREATED = 3,  /* created, no face yet */
};
/* "ACTIVE", "UPDATING", "CREATING", "CREATED"; NULL for unknown values. */
const char *fl_store_user_status_name(enum fl_store_user_status s);

struct fl_store_user {
    char user_id[FL_STORE_USER_ID_MAX + 1];
    enum fl_store_user_status status;
    uint32_t face_count; /* faces associated now */
    double created;      /* epoch seconds */
};

/* A tag on a collection (TagResource works on the collection's ARN; api/ maps
 * the ARN to the collection id). */
struct fl_store_tag {
    const char *key;
    const char *value;
};

/* Job state; persisted, append-only, values fixed. */
enum fl_store_job_state {
    FL_STORE_JOB_QUEUED = 0,
    FL_STORE_JOB_RUNNING = 1,
    FL_STORE_JOB_SUCCEEDED = 2,
    FL_STORE_JOB_FAILED = 3,
};

/* A long-running job (ReindexCollection, ImportFaces, ...). */
struct fl_store_job {
    const char *id;         /* JobId */
    const char *type;       /* "reindex", ... */
    const char *collection; /* may be NULL; not a foreign key (jobs outlive collections) */
    enum fl_store_job_state state;
    double progress;         /* 0..1 */
    const char *params;      /* JSON text, opaque to the store; may be NULL */
    const char *message;     /* status message or NULL */
    double created, updated; /* epoch seconds; output only (create sets both to now) */
};

/* Change log entry kinds; persisted, append-only, values fixed. */
enum fl_store_change_op {
    FL_STORE_CHANGE_COLLECTION_CREATE = 1,
    FL_STORE_CHANGE_COLLECTION_DELETE = 2,
    FL_STORE_CHANGE_FACE_PUT = 3,           /* face_key, id = FaceId */
    FL_STORE_CHANGE_FACE_DELETE = 4,        /* face_key, id = FaceId */
    FL_STORE_CHANGE_FACE_USER = 5,          /* face associated/disassociated; id = FaceId */
    FL_STORE_CHANGE_USER_CREATE = 6,        /* id = UserId */
    FL_STORE_CHANGE_USER_DELETE = 7,        /* id = UserId; its faces were disassociated with it */
    FL_STORE_CHANGE_TAGS = 8,               /* tags of the collection changed */
    FL_STORE_CHANGE_COLLECTION_REINDEX = 9, /* every embedding and the model changed */
};

/* One committed change. seq grows strictly with every changed row and is
 * never reused; one call's rows have consecutive seqs and become visible
 * together. */
struct fl_store_change {
    uint64_t seq;
    enum fl_store_change_op op;
    const char *collection;
    int64_t face_key; /* 0 when not about a face */
    const char *id;   /* FaceId, UserId or NULL */
};

/* Per-item outcome of deletes and (dis)associations. */
enum fl_store_outcome_code {
    FL_STORE_DONE = 0, /* deleted / associated (or already was) / disassociated */
    FL_STORE_FACE_NOT_FOUND = 1,
    FL_STORE_FACE_HAS_USER = 2,       /* delete refused: face is associated to `user_id` */
    FL_STORE_FACE_OTHER_USER = 3,     /* face is associated to another user, `user_id` */
    FL_STORE_FACE_NOT_ASSOCIATED = 4, /* disassociate: face has no user */
};
struct fl_store_outcome {
    enum fl_store_outcome_code code;
    char user_id[FL_STORE_USER_ID_MAX + 1]; /* the face's user when relevant, else "" */
};

/* ============================== Result pages ============================== */

struct fl_store_collection_page {
    struct fl_store_collection *v; /* n entries, in the arena */
    size_t n;
    const char *next; /* pass as `after` for the next page; NULL when done */
};

struct fl_store_face_list {
    struct fl_store_face *v; /* n entries, in the arena */
    size_t n;
    const char *next; /* for pages: next `after` or NULL; always NULL for other lists */
};

struct fl_store_user_page {
    struct fl_store_user *v;
    size_t n;
    const char *next;
};

struct fl_store_tag_list {
    struct fl_store_tag *v; /* ordered by key */
    size_t n;
};

struct fl_store_change_list {
    struct fl_store_change *v;
    size_t n;
};

/* A face listing (ListFaces). Filters combine with AND. */
struct fl_store_face_query {
    const char *collection;
    const char *user_id;         /* only faces of this user, or NULL */
    const char *const *face_ids; /* only these faces (n_face_ids of them), or NULL */
    size_t n_face_ids;
    const char *after; /* last FaceId of the previous page, NULL/"" for the first */
    size_t limit;      /* 1..FL_STORE_PAGE_MAX */
    unsigned flags;    /* FL_STORE_WANT_* */
};

/* Called for every face of a collection by fl_store_faces_scan(). Pointers
 * are borrowed for the duration of the call only; embedding is aligned for
 * float. A non-OK return stops the scan and is returned by the scan. The
 * callback must not use the same struct fl_store. */
typedef enum fl_status (*fl_store_scan_fn)(void *ud, int64_t key, const char *face_id,
                                           const float *embedding, uint32_t dim);

/* Called for every kept crop by fl_store_reindex_scan_crops(); pointers are
 * borrowed for the call. Same rules as fl_store_scan_fn. */
typedef enum fl_status (*fl_store_crop_fn)(void *ud, int64_t key, const char *face_id,
                                           const void *crop, size_t crop_len);

/* A new embedding for the face with this key (reindexing). */
struct fl_store_embedding {
    int64_t key;
    const float *embedding; /* dim floats, borrowed */
    uint32_t dim;
};

/* A staged import (fl_store_import_*). On open the caller fills id,
 * collection, model_id, face_model_version, dim and collection_created; the
 * rest is output (fl_store_import_get, fl_store_import_commit). Strings of
 * results live in the arena. */
struct fl_store_import {
    const char *id;                 /* ImportId */
    const char *collection;         /* target CollectionId (need not exist yet) */
    const char *model_id;           /* the export's model: the collection's, or the one to create */
    const char *face_model_version; /* FaceModelVersion of model_id */
    uint32_t dim;                   /* embedding dimension of model_id */
    double collection_created; /* creation time for a collection the commit creates; <= 0: now */
    int64_t expected_faces;    /* faces the commit must find staged; < 0: any number */
    /* output only */
    bool committed;          /* the commit ran; the counts below are its result */
    uint64_t faces_staged;   /* staged faces (0 after the commit) */
    uint64_t users_staged;   /* staged users (0 after the commit) */
    uint64_t faces_imported; /* commit: faces inserted */
    uint64_t faces_present;  /* commit: staged faces already in the collection, same content */
    uint64_t users_created;  /* commit: users inserted */
    bool created_collection; /* commit: the collection was created by it */
    double created, updated; /* epoch seconds; updated = last open/stage/commit */
};

/* ============================== The interface ============================== */

/* 1: the first table; 2: appended x_check, x_reindex_*, x_faces_put_dedup;
 * 3: appended x_faces_key_max, x_import_*. */
#define FL_STORE_METHODS_VERSION 3

struct fl_store;

/* The x-method table of a backend. Append-only: a new method goes at the end
 * and bumps `version`; callers check the version before using a newer slot.
 * Preconditions checked by the fl_store_*() wrappers are not re-checked here. */
struct fl_store_methods {
    int version;      /* FL_STORE_METHODS_VERSION this table implements */
    const char *name; /* "sqlite" */
    void (*x_close)(struct fl_store *st);

    enum fl_status (*x_collection_create)(struct fl_store *st, const struct fl_store_collection *c,
                                          struct fl_err *err);
    enum fl_status (*x_collection_get)(struct fl_store *st, const char *id, struct fl_arena *a,
                                       struct fl_store_collection *out, struct fl_err *err);
    enum fl_status (*x_collection_list)(struct fl_store *st, const char *after, size_t limit,
                                        struct fl_arena *a, struct fl_store_collection_page *out,
                                        struct fl_err *err);
    enum fl_status (*x_collection_delete)(struct fl_store *st, const char *id, struct fl_err *err);

    enum fl_status (*x_faces_put)(struct fl_store *st, const char *collection,
                                  struct fl_store_face *faces, size_t n, struct fl_err *err);
    enum fl_status (*x_faces_get)(struct fl_store *st, const char *collection,
                                  const char *const *face_ids, size_t n, unsigned flags,
                                  struct fl_arena *a, struct fl_store_face_list *out,
                                  struct fl_err *err);
    enum fl_status (*x_faces_list)(struct fl_store *st, const struct fl_store_face_query *q,
                                   struct fl_arena *a, struct fl_store_face_list *out,
                                   struct fl_err *err);
    enum fl_status (*x_faces_delete)(struct fl_store *st, const char *collection,
                                     const char *const *face_ids, size_t n,
                                     struct fl_store_outcome *out, struct fl_err *err);
    enum fl_status (*x_faces_find_by_image)(struct fl_store *st, const char *collection,
                                            const char *image_id, const char *external_image_id,
                                            struct fl_arena *a, struct fl_store_face_list *out,
                                            struct fl_err *err);
    enum fl_status (*x_faces_scan)(struct fl_store *st, const char *collection, fl_store_scan_fn fn,
                                   void *ud, struct fl_err *err);

    enum fl_status (*x_user_create)(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err);
    enum fl_status (*x_user_get)(struct fl_store *st, const char *collection, const char *user_id,
                                 struct fl_store_user *out, struct fl_err *err);
    enum fl_status (*x_users_list)(struct fl_store *st, const char *collection, const char *after,
                                   size_t limit, struct fl_arena *a, struct fl_store_user_page *out,
                                   struct fl_err *err);
    enum fl_status (*x_user_delete)(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err);
    enum fl_status (*x_faces_associate)(struct fl_store *st, const char *collection,
                                        const char *user_id, const char *const *face_ids, size_t n,
                                        uint32_t max_faces_per_user, const char *token,
                                        struct fl_store_outcome *out,
                                        enum fl_store_user_status *out_status, struct fl_err *err);
    enum fl_status (*x_faces_disassociate)(struct fl_store *st, const char *collection,
                                           const char *user_id, const char *const *face_ids,
                                           size_t n, const char *token,
                                           struct fl_store_outcome *out,
                                           enum fl_store_user_status *out_status,
                                           struct fl_err *err);

    enum fl_status (*x_tags_set)(struct fl_store *st, const char *collection,
                                 const struct fl_store_tag *tags, size_t n, uint32_t max_tags,
                                 struct fl_err *err);
    enum fl_status (*x_tags_remove)(struct fl_store *st, const char *collection,
                                    const char *const *keys, size_t n, struct fl_err *err);
    enum fl_status (*x_tags_list)(struct fl_store *st, const char *collection, struct fl_arena *a,
                                  struct fl_store_tag_list *out, struct fl_err *err);

    enum fl_status (*x_job_create)(struct fl_store *st, const struct fl_store_job *job,
                                   struct fl_err *err);
    enum fl_status (*x_job_update)(struct fl_store *st, const char *id,
                                   enum fl_store_job_state state, double progress,
                                   const char *message, struct fl_err *err);
    enum fl_status (*x_job_get)(struct fl_store *st, const char *id, struct fl_arena *a,
                                struct fl_store_job *out, struct fl_err *err);

    enum fl_status (*x_change_seq)(struct fl_store *st, uint64_t *out, struct fl_err *err);
    enum fl_status (*x_changes_since)(struct fl_store *st, uint64_t after, size_t limit,
                                      struct fl_arena *a, struct fl_store_change_list *out,
                                      struct fl_err *err);
    enum fl_status (*x_changes_prune)(struct fl_store *st, uint64_t upto, struct fl_err *err);

    enum fl_status (*x_check)(struct fl_store *st, struct fl_err *err);

    enum fl_status (*x_reindex_scan_crops)(struct fl_store *st, const char *collection,
                                           bool only_unstaged, fl_store_crop_fn fn, void *ud,
                                           struct fl_err *err);
    enum fl_status (*x_reindex_stage)(struct fl_store *st, const char *collection,
                                      const struct fl_store_embedding *items, size_t n,
                                      size_t *out_staged, struct fl_err *err);
    enum fl_status (*x_reindex_commit)(struct fl_store *st, const struct fl_store_collection *model,
                                       struct fl_err *err);
    enum fl_status (*x_reindex_abort)(struct fl_store *st, const char *collection,
                                      struct fl_err *err);

    enum fl_status (*x_faces_put_dedup)(struct fl_store *st, const char *collection,
                                        struct fl_store_face *faces, size_t n, struct fl_arena *a,
                                        struct fl_store_face_list *out_existing,
                                        struct fl_err *err);

    /* version 3 */
    enum fl_status (*x_faces_key_max)(struct fl_store *st, const char *collection, int64_t *out,
                                      struct fl_err *err);
    enum fl_status (*x_import_open)(struct fl_store *st, const struct fl_store_import *imp,
                                    struct fl_err *err);
    enum fl_status (*x_import_get)(struct fl_store *st, const char *id, struct fl_arena *a,
                                   struct fl_store_import *out, struct fl_err *err);
    enum fl_status (*x_import_stage)(struct fl_store *st, const char *id,
                                     const struct fl_store_face *faces, size_t n,
                                     const char *const *user_ids, size_t n_users,
                                     struct fl_err *err);
    enum fl_status (*x_import_commit)(struct fl_store *st, const char *id, struct fl_arena *a,
                                      struct fl_store_import *out, struct fl_err *err);
    enum fl_status (*x_import_abort)(struct fl_store *st, const char *id, struct fl_err *err);
    enum fl_status (*x_import_expire)(struct fl_store *st, double before, size_t *out_n,
                                      struct fl_err *err);
};

/* The base object every backend embeds first. */
struct fl_store {
    const struct fl_store_methods *m;
};

/* Open options (NULL means all defaults). */
struct fl_store_opts {
    int busy_timeout_ms; /* wait for a locked database this long; 0 = default 5000 */
    int read_only;       /* nonzero: open read-only, run no migrations */
};

/* ============================= Open and close ============================= */

/* Open (and create or migrate) a store. dsn is "sqlite:<path>" or a plain path
 * (SQLite); ":memory:" gives a private in-memory store for tests (that one
 * connection only, not durable); "postgres://" and "postgresql://" are
 * reserved for the PostgreSQL backend (FL_ERR_INVALID_ARG "not built" today). Returns FL_OK and
 * *out (the caller closes it with fl_store_close()), or an error: FL_ERR_IO when the file cannot be
 * opened, FL_ERR_CORRUPT when it is not a FaceLink database, FL_ERR_STORE when its schema is newer
 * than this build knows. Threading: any thread; the result belongs to the calling thread. */
enum fl_status fl_store_open(const char *dsn, const struct fl_store_opts *opts,
                             struct fl_store **out, struct fl_err *err);
/* Close and free; NULL is a no-op. Never fails (an unfinished transaction,
 * impossible through this API, would be rolled back). */
void fl_store_close(struct fl_store *st);
/* Backend name ("sqlite"). */
const char *fl_store_backend(const struct fl_store *st);

/* ============================== Collections ============================== */

/* Create a collection. FL_ERR_EXISTS if the id is taken. */
enum fl_status fl_store_collection_create(struct fl_store *st, const struct fl_store_collection *c,
                                          struct fl_err *err);
/* Get a collection with its face and user counts. FL_ERR_NOT_FOUND. */
enum fl_status fl_store_collection_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                       struct fl_store_collection *out, struct fl_err *err);
/* A page of collections ordered by id (byte order), after `after`. */
enum fl_status fl_store_collection_list(struct fl_store *st, const char *after, size_t limit,
                                        struct fl_arena *a, struct fl_store_collection_page *out,
                                        struct fl_err *err);
/* Delete a collection with all its faces, crops, users, tags and tokens.
 * FL_ERR_NOT_FOUND. */
enum fl_status fl_store_collection_delete(struct fl_store *st, const char *id, struct fl_err *err);

/* ================================= Faces ================================= */

/* Insert n >= 1 faces into a collection, all or nothing, in one transaction.
 * Every face's dim must equal the collection's (FL_ERR_INVALID_ARG); a
 * face_id already in the collection, or twice in the batch, is FL_ERR_EXISTS;
 * a user_id that is not a user of the collection is FL_ERR_NOT_FOUND (the
 * user becomes ACTIVE otherwise). On success writes key and created into each
 * faces[i]; on failure the array is untouched and nothing was written. */
enum fl_status fl_store_faces_put(struct fl_store *st, const char *collection,
                                  struct fl_store_face *faces, size_t n, struct fl_err *err);
/* IndexFaces without duplicates: in ONE transaction, look for faces of the
 * collection with faces[0].image_id and external_image_id (as
 * fl_store_faces_find_by_image); if there are any, return them in
 * *out_existing (n > 0, in the arena) and write nothing; otherwise put the
 * batch exactly as fl_store_faces_put() and return an empty *out_existing.
 * Every face of the batch must have the same image_id and external_image_id
 * (FL_ERR_INVALID_ARG). Unlike a find followed by a put, two concurrent calls
 * for the same image cannot both insert. */
enum fl_status fl_store_faces_put_dedup(struct fl_store *st, const char *collection,
                                        struct fl_store_face *faces, size_t n, struct fl_arena *a,
                                        struct fl_store_face_list *out_existing,
                                        struct fl_err *err);
/* The faces among face_ids[0..n) that exist, in the order asked (ids not
 * found are left out; a repeated id is returned once per mention).
 * FL_ERR_NOT_FOUND only when the collection is missing. */
enum fl_status fl_store_faces_get(struct fl_store *st, const char *collection,
                                  const char *const *face_ids, size_t n, unsigned flags,
                                  struct fl_arena *a, struct fl_store_face_list *out,
                                  struct fl_err *err);
/* One face; FL_ERR_NOT_FOUND when it (or the collection) is missing. */
enum fl_status fl_store_face_get(struct fl_store *st, const char *collection, const char *face_id,
                                 unsigned flags, struct fl_arena *a, struct fl_store_face *out,
                                 struct fl_err *err);
/* A page of faces ordered by FaceId (byte order), filtered by q (ListFaces).
 * FL_ERR_NOT_FOUND when the collection is missing. */
enum fl_status fl_store_faces_list(struct fl_store *st, const struct fl_store_face_query *q,
                                   struct fl_arena *a, struct fl_store_face_list *out,
                                   struct fl_err *err);
/* Delete faces (DeleteFaces) in one transaction. out[i] (caller's array of n)
 * receives FL_STORE_DONE, FL_STORE_FACE_NOT_FOUND, or FL_STORE_FACE_HAS_USER
 * with the user (such faces are kept). A repeated id reports NOT_FOUND after
 * its first deletion. FL_ERR_NOT_FOUND when the collection is missing. */
enum fl_status fl_store_faces_delete(struct fl_store *st, const char *collection,
                                     const char *const *face_ids, size_t n,
                                     struct fl_store_outcome *out, struct fl_err *err);
/* Faces of the collection made from image_id with exactly this
 * external_image_id (NULL matches faces without one): IndexFaces' "no
 * duplicate for the same image and ExternalImageId". Ordered by key. */
enum fl_status fl_store_faces_find_by_image(struct fl_store *st, const char *collection,
                                            const char *image_id, const char *external_image_id,
                                            struct fl_arena *a, struct fl_store_face_list *out,
                                            struct fl_err *err);
/* Stream (key, FaceId, embedding) of every face of a collection in FaceId
 * order, from one consistent snapshot, with O(dim) memory: for rebuilding the vector
 * index. Returns the callback's first non-OK status, or a store error. */
enum fl_status fl_store_faces_scan(struct fl_store *st, const char *collection, fl_store_scan_fn fn,
                                   void *ud, struct fl_err *err);

/* ================================= Users ================================= */

/* Client request tokens (CreateUser, DeleteUser, AssociateFaces,
 * DisassociateFaces): token may be NULL. A token is remembered with a digest
 * of (operation, collection, user, face ids) when its call succeeds, in the
 * same transaction. Reusing it with the same parameters replays the call:
 * CreateUser/DeleteUser return FL_OK and change nothing, (Dis)AssociateFaces
 * run again (they are naturally idempotent; the outcomes describe the current
 * state). Reusing it with other parameters is FL_ERR_IDEMPOTENT_MISMATCH.
 * Tokens live as long as their collection. */

/* Create a user (status CREATED). FL_ERR_CONFLICT if it exists,
 * FL_ERR_NOT_FOUND if the collection is missing. */
enum fl_status fl_store_user_create(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err);
/* Get a user with its face count. FL_ERR_NOT_FOUND. */
enum fl_status fl_store_user_get(struct fl_store *st, const char *collection, const char *user_id,
                                 struct fl_store_user *out, struct fl_err *err);
/* A page of users ordered by UserId. FL_ERR_NOT_FOUND if the collection is
 * missing. */
enum fl_status fl_store_users_list(struct fl_store *st, const char *collection, const char *after,
                                   size_t limit, struct fl_arena *a, struct fl_store_user_page *out,
                                   struct fl_err *err);
/* Delete a user after disassociating its faces. FL_ERR_NOT_FOUND. */
enum fl_status fl_store_user_delete(struct fl_store *st, const char *collection,
                                    const char *user_id, const char *token, struct fl_err *err);
/* Associate faces with a user (AssociateFaces). out[i] (caller's array of n):
 * FL_STORE_DONE (now or already associated to this user),
 * FL_STORE_FACE_NOT_FOUND, or FL_STORE_FACE_OTHER_USER with that user.
 * max_faces_per_user (0 = no limit): if the user would end with more faces,
 * FL_ERR_QUOTA and nothing changes. *out_status is the user's status after the
 * call. FL_ERR_NOT_FOUND when the collection or user is missing. */
enum fl_status fl_store_faces_associate(struct fl_store *st, const char *collection,
                                        const char *user_id, const char *const *face_ids, size_t n,
                                        uint32_t max_faces_per_user, const char *token,
                                        struct fl_store_outcome *out,
                                        enum fl_store_user_status *out_status, struct fl_err *err);
/* Disassociate faces from a user (DisassociateFaces). out[i]: FL_STORE_DONE,
 * FL_STORE_FACE_NOT_FOUND, FL_STORE_FACE_OTHER_USER (with that user) or
 * FL_STORE_FACE_NOT_ASSOCIATED. The user becomes CREATED when it has no face
 * left. FL_ERR_NOT_FOUND when the collection or user is missing. */
enum fl_status fl_store_faces_disassociate(struct fl_store *st, const char *collection,
                                           const char *user_id, const char *const *face_ids,
                                           size_t n, const char *token,
                                           struct fl_store_outcome *out,
                                           enum fl_store_user_status *out_status,
                                           struct fl_err *err);

/* ================================== Tags ================================== */

/* Set (insert or overwrite) n tags of a collection in one transaction. If the
 * collection would hold more than max_tags tags (0 = no limit): FL_ERR_QUOTA,
 * nothing changes. FL_ERR_NOT_FOUND when the collection is missing. */
enum fl_status fl_store_tags_set(struct fl_store *st, const char *collection,
                                 const struct fl_store_tag *tags, size_t n, uint32_t max_tags,
                                 struct fl_err *err);
/* Remove tags by key (absent keys are ignored). FL_ERR_NOT_FOUND when the
 * collection is missing. */
enum fl_status fl_store_tags_remove(struct fl_store *st, const char *collection,
                                    const char *const *keys, size_t n, struct fl_err *err);
/* All tags of a collection ordered by key. */
enum fl_status fl_store_tags_list(struct fl_store *st, const char *collection, struct fl_arena *a,
                                  struct fl_store_tag_list *out, struct fl_err *err);

/* ================================== Jobs ================================== */

/* Record a new job (created = updated = now; progress in [0,1]).
 * FL_ERR_EXISTS if the id is taken. */
enum fl_status fl_store_job_create(struct fl_store *st, const struct fl_store_job *job,
                                   struct fl_err *err);
/* Update state, progress (0..1) and message (NULL clears it); updated = now.
 * FL_ERR_NOT_FOUND. */
enum fl_status fl_store_job_update(struct fl_store *st, const char *id,
                                   enum fl_store_job_state state, double progress,
                                   const char *message, struct fl_err *err);
enum fl_status fl_store_job_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                struct fl_store_job *out, struct fl_err *err);

/* ============================ Change sequence ============================ */

/* The highest seq ever committed (0 for a new store); survives pruning. */
enum fl_status fl_store_change_seq(struct fl_store *st, uint64_t *out, struct fl_err *err);
/* Up to limit changes with seq > after, in seq order. A follower that finds
 * the first returned seq > after + 1 after pruning must resynchronise from
 * the tables (changes at or below the pruned point are gone). */
enum fl_status fl_store_changes_since(struct fl_store *st, uint64_t after, size_t limit,
                                      struct fl_arena *a, struct fl_store_change_list *out,
                                      struct fl_err *err);
/* Drop changes with seq <= upto (all followers have seen them). */
enum fl_status fl_store_changes_prune(struct fl_store *st, uint64_t upto, struct fl_err *err);

/* ============================== Maintenance ============================== */

/* Full consistency check of the database (SQLite: PRAGMA integrity_check and
 * foreign_key_check). FL_OK, or FL_ERR_CORRUPT with the first problem in the
 * message. Reads the whole file: for `facelink doctor`-style tools and
 * tests, not for every start-up of a large store. */
enum fl_status fl_store_check(struct fl_store *st, struct fl_err *err);

/* ============================== Reindexing ============================== */

/* ReindexCollection moves a collection to another model without losing a
 * FaceId, ExternalImageId or UserId (DESIGN.md §5): re-embed every kept crop
 * with the new model, stage the results, then switch in one transaction.
 * The collection keeps serving with its old embeddings until the switch.
 *
 *     scan_crops(only_unstaged = false) -> embed -> stage (in batches)
 *     commit -> FL_ERR_CONFLICT if faces were indexed meanwhile:
 *         scan_crops(only_unstaged = true) -> embed -> stage -> commit again
 *     or abort (drops the staged embeddings)
 */

/* Stream (key, FaceId, crop) of the faces of a collection that have a kept
 * crop, in FaceId order, from one snapshot; with only_unstaged, only those
 * without a staged embedding yet. Faces without a crop cannot be re-embedded
 * and are not listed (the commit then reports them). */
enum fl_status fl_store_reindex_scan_crops(struct fl_store *st, const char *collection,
                                           bool only_unstaged, fl_store_crop_fn fn, void *ud,
                                           struct fl_err *err);
/* Stage new embeddings (replacing earlier staged ones) in one transaction.
 * Keys of faces that are no longer in the collection are skipped;
 * *out_staged (may be NULL) counts the others. All items must have the same
 * dim (FL_ERR_INVALID_ARG). FL_ERR_NOT_FOUND if the collection is missing. */
enum fl_status fl_store_reindex_stage(struct fl_store *st, const char *collection,
                                      const struct fl_store_embedding *items, size_t n,
                                      size_t *out_staged, struct fl_err *err);
/* Switch the collection model->id to model->model_id, face_model_version and
 * dim: in one transaction, every face takes its staged embedding and
 * IndexFacesModelVersion = face_model_version, the staging is emptied and
 * one FL_STORE_CHANGE_COLLECTION_REINDEX change is logged (the index must be
 * rebuilt). FL_ERR_CONFLICT, changing nothing, if some face has no staged
 * embedding of that dim (the message says how many). */
enum fl_status fl_store_reindex_commit(struct fl_store *st, const struct fl_store_collection *model,
                                       struct fl_err *err);
/* Drop the staged embeddings of a collection. */
enum fl_status fl_store_reindex_abort(struct fl_store *st, const char *collection,
                                      struct fl_err *err);

/* The largest key of the collection's faces now (0 when it has none). Keys
 * are never reused and grow with every insert, so "key <= this" selects the
 * faces that existed at this moment: a paged export's snapshot of additions.
 * FL_ERR_NOT_FOUND when the collection is missing. */
enum fl_status fl_store_faces_key_max(struct fl_store *st, const char *collection, int64_t *out,
                                      struct fl_err *err);

/* ============================== Staged imports ============================== */

/* ImportFaces for collections of any size (DESIGN.md §8): the faces arrive
 * in many calls and must appear all at once or not at all.
 *
 *     open(id, collection, model) -> stage(page) ... stage(page) -> commit
 *                                                                 or abort
 *
 * Staged rows are kept apart from the collection (nothing else reads them),
 * survive restarts, and are moved in by ONE transaction at the commit. An
 * import that is never committed changes nothing; expire() drops imports
 * untouched since a given time. A committed import keeps its record (without
 * staged rows) so that a repeated commit returns the same counts. */

/* Open an import: FL_ERR_EXISTS if the id is taken. The collection need not
 * exist (the commit creates it with the import's model). */
enum fl_status fl_store_import_open(struct fl_store *st, const struct fl_store_import *imp,
                                    struct fl_err *err);
/* The import with its staged counts; FL_ERR_NOT_FOUND. */
enum fl_status fl_store_import_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                   struct fl_store_import *out, struct fl_err *err);
/* Stage n faces (key ignored; crop optional) and n_users UserIds in one
 * transaction, idempotently: a face or user already staged with the same
 * content is skipped, so a page may be sent again. A FaceId already staged
 * with other content is FL_ERR_CONFLICT (nothing of the call is staged); a
 * face whose dim is not the import's is FL_ERR_INVALID_ARG. FL_ERR_NOT_FOUND
 * for an unknown import, FL_ERR_CONFLICT for a committed one. */
enum fl_status fl_store_import_stage(struct fl_store *st, const char *id,
                                     const struct fl_store_face *faces, size_t n,
                                     const char *const *user_ids, size_t n_users,
                                     struct fl_err *err);
/* Move everything staged into the collection in ONE transaction: create the
 * collection if missing (the import's model, collection_created), create the
 * users (staged ones and the UserIds of staged faces) that are missing,
 * insert every staged face whose FaceId is not in the collection (logging
 * FACE_PUT changes, users with faces become ACTIVE), skip those already
 * there with the same content (image, ExternalImageId, user, box and
 * embedding). Changes nothing and returns FL_ERR_INVALID_ARG if the import
 * expected another number of staged faces, FL_ERR_CONFLICT (naming one
 * FaceId) if a staged FaceId is in the collection with other content, or if
 * the collection uses another model or dimension. On success *out (may be
 * NULL) is the committed record with the counts; committing a committed
 * import again changes nothing and returns the same record. */
enum fl_status fl_store_import_commit(struct fl_store *st, const char *id, struct fl_arena *a,
                                      struct fl_store_import *out, struct fl_err *err);
/* Drop an import and what it staged (open or committed); FL_ERR_NOT_FOUND. */
enum fl_status fl_store_import_abort(struct fl_store *st, const char *id, struct fl_err *err);
/* Drop every import (open or committed) not touched since `before` (epoch
 * seconds), with its staged rows; *out_n (may be NULL) counts them. */
enum fl_status fl_store_import_expire(struct fl_store *st, double before, size_t *out_n,
                                      struct fl_err *err);

#endif /* FL_STORE_H */
