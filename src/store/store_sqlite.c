/*
 * store_sqlite.c: the SQLite backend of the store (the default).
 *
 * What: struct fl_store_methods over one SQLite connection. The schema is
 * src/store/sql/sqlite/NNNN_*.sql (embedded by sql_sqlite.c), applied in order
 * at open and tracked with PRAGMA user_version; PRAGMA application_id marks
 * the file as FaceLink's.
 *
 * Durability ("an acknowledged write is never lost", DESIGN.md §7):
 *   - journal_mode=WAL and synchronous=FULL: COMMIT returns only after the
 *     WAL frames of the transaction are fsync()ed, so a write whose call
 *     returned FL_OK survives a crash of the process (tested with SIGKILL in
 *     test_store_crash.c) and, by SQLite's design, of the machine (what FULL
 *     adds over NORMAL; not tested here). ":memory:" stores, for tests, have
 *     no WAL and no durability.
 *   - Every write is exactly one transaction, opened with BEGIN IMMEDIATE
 *     (takes the write lock up front, so a reader never has to upgrade and
 *     die with SQLITE_BUSY halfway) and closed with COMMIT, or ROLLBACK on any
 *     error. A failed call therefore changes nothing, including a failure in
 *     the middle of a batch.
 *   - Reads that run more than one statement do so inside BEGIN ... COMMIT so
 *     they see one snapshot (WAL readers never block the writer).
 *
 * Statements: every SQL statement the backend runs is in the stmt_sql[] table
 * below, one documented entry each, prepared once per connection at open
 * (SQLITE_PREPARE_PERSISTENT) and reset after each use. Values are always
 * bound, never formatted into SQL. The only SQL not in the table is fixed
 * text run at open: the PRAGMAs, the migration scripts and the transaction
 * around them.
 *
 * Memory: SQLite's allocations are routed through fl_malloc (SQLITE_CONFIG_
 * MALLOC, once per process, if nothing initialised SQLite before us), so the
 * allocation-torture tests reach SQLite's own out-of-memory paths too.
 *
 * Embeddings are stored as little-endian float32 blobs whatever the host.
 *
 * Threading: one connection per struct fl_store, opened with
 * SQLITE_OPEN_NOMUTEX ("multi-thread" mode: SQLite's own locks around a
 * connection are skipped because only one thread uses it at a time). Threads
 * each open their own store on the same file; SQLite's file locks and the WAL
 * serialise writers (waiting up to busy_timeout_ms) and let readers run
 * alongside. A pool inside the backend was rejected: workers already own
 * per-thread state (STYLE.md §2.7) and a pool would add a lock on every call.
 *
 * Rejected alternatives: a plain rollback journal (readers block the writer);
 * synchronous=NORMAL in WAL (survives a process crash but can lose the last
 * commits on power loss, which breaks the acknowledged-write promise).
 */
#include "store/store_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define FL_SQLITE_APP_ID 0x464c4b31 /* "FLK1" in PRAGMA application_id */
#define DEFAULT_BUSY_MS  5000

/* =========================== Prepared statements =========================== */

/* The columns every face read returns, in this order (see read_face()).
 * ?1: nonzero to fetch the embedding, ?2: nonzero to fetch the crop; the CASE
 * keeps SQLite from reading blobs that were not asked for. */
#define FACE_SELECT                                                                                \
    "SELECT f.key, f.face_id, f.image_id, f.external_image_id, f.user_id, f.bbox_left, "           \
    "f.bbox_top, f.bbox_width, f.bbox_height, f.confidence, f.model_version, f.dim, f.created, "   \
    "CASE WHEN ?1 THEN f.embedding END, "                                                          \
    "CASE WHEN ?2 THEN (SELECT c.crop FROM face_crops c WHERE c.face_key = f.key) END "            \
    "FROM faces f "

enum sq_stmt {
    S_BEGIN_READ,
    S_BEGIN_WRITE,
    S_COMMIT,
    S_ROLLBACK,
    S_CHANGE_ADD,
    S_CHANGE_SEQ,
    S_CHANGES_SINCE,
    S_CHANGES_PRUNE,
    S_COLL_INSERT,
    S_COLL_GET,
    S_COLL_LIST,
    S_COLL_DELETE,
    S_COLL_DIM,
    S_COLL_ADD_FACES,
    S_COLL_ADD_USERS,
    S_FACE_INSERT,
    S_CROP_INSERT,
    S_FACE_GET,
    S_FACE_LIST,
    S_FACE_LIST_USER,
    S_FACE_BY_IMAGE,
    S_FACE_SCAN,
    S_FACE_PROBE,
    S_FACE_DELETE,
    S_FACE_SET_USER,
    S_USER_GET,
    S_USER_INSERT,
    S_USER_DELETE,
    S_USER_SET_STATUS,
    S_USER_FACE_COUNT,
    S_USER_CLEAR_FACES,
    S_USERS_LIST,
    S_TOKEN_GET,
    S_TOKEN_INSERT,
    S_TAG_UPSERT,
    S_TAG_DELETE,
    S_TAG_COUNT,
    S_TAG_LIST,
    S_JOB_INSERT,
    S_JOB_UPDATE,
    S_JOB_GET,
    S_INTEGRITY,
    S_FK_CHECK,
    S_CROP_SCAN,
    S_CROP_SCAN_UNSTAGED,
    S_STAGE_PUT,
    S_STAGE_MISSING,
    S_STAGE_APPLY,
    S_STAGE_CLEAR,
    S_COLL_SET_MODEL,
    S_KEY_MAX,
    S_IMP_INSERT,
    S_IMP_GET,
    S_IMP_TOUCH,
    S_IMP_FACE_PUT,
    S_IMP_FACE_SAME,
    S_IMP_USER_PUT,
    S_IMP_COLL,
    S_IMP_CONFLICT,
    S_IMP_PRESENT,
    S_IMP_USERS_LOG,
    S_IMP_USERS_ADD,
    S_KEY_MAX_ALL,
    S_IMP_FACES_ADD,
    S_IMP_CROPS_ADD,
    S_IMP_FACES_LOG,
    S_IMP_USERS_ACTIVE,
    S_IMP_DONE,
    S_IMP_CLEAR_FACES,
    S_IMP_CLEAR_USERS,
    S_IMP_DELETE,
    S_IMP_EXPIRE,
    S_COUNT_
};

/* clang-format off */
static const char *const stmt_sql[] = {
    /* Transactions. BEGIN IMMEDIATE takes the write lock at once (waits up to
     * the busy timeout); BEGIN (deferred) opens a read snapshot. */
    [S_BEGIN_READ] = "BEGIN",
    [S_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",

    /* Append one change. ?1 op (enum fl_store_change_op), ?2 collection,
     * ?3 face key or 0, ?4 id (FaceId/UserId) or NULL. */
    [S_CHANGE_ADD] = "INSERT INTO changes(op, collection, face_key, id) VALUES (?1, ?2, ?3, ?4)",
    /* Highest seq ever given out (AUTOINCREMENT's counter; no row = 0). */
    [S_CHANGE_SEQ] = "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
    /* Changes after seq ?1, at most ?2. Columns: seq, op, collection, face_key, id. */
    [S_CHANGES_SINCE] = "SELECT seq, op, collection, face_key, id FROM changes "
                        "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    /* Drop changes with seq <= ?1. */
    [S_CHANGES_PRUNE] = "DELETE FROM changes WHERE seq <= ?1",

    /* New collection: ?1 id, ?2 model id, ?3 FaceModelVersion, ?4 dim, ?5 created. */
    [S_COLL_INSERT] = "INSERT INTO collections(id, model_id, face_model_version, dim, created) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
    /* One collection by id ?1. Columns: id, model_id, face_model_version, dim,
     * created, face_count, user_count (read_collection()). */
    [S_COLL_GET] = "SELECT id, model_id, face_model_version, dim, created, face_count, user_count "
                   "FROM collections WHERE id = ?1",
    /* Collections with id > ?1 in id order, at most ?2; columns as S_COLL_GET. */
    [S_COLL_LIST] = "SELECT id, model_id, face_model_version, dim, created, face_count, user_count "
                    "FROM collections WHERE id > ?1 ORDER BY id LIMIT ?2",
    /* Delete collection ?1; foreign keys cascade to faces, crops, users, tags
     * and tokens. */
    [S_COLL_DELETE] = "DELETE FROM collections WHERE id = ?1",
    /* Embedding dimension of collection ?1 (doubles as the existence check). */
    [S_COLL_DIM] = "SELECT dim FROM collections WHERE id = ?1",
    /* face_count += ?2 for collection ?1. */
    [S_COLL_ADD_FACES] = "UPDATE collections SET face_count = face_count + ?2 WHERE id = ?1",
    /* user_count += ?2 for collection ?1. */
    [S_COLL_ADD_USERS] = "UPDATE collections SET user_count = user_count + ?2 WHERE id = ?1",

    /* New face: ?1 collection, ?2 FaceId, ?3 ImageId, ?4 ExternalImageId or
     * NULL, ?5 UserId or NULL, ?6..?9 bbox left, top, width, height,
     * ?10 confidence, ?11 IndexFacesModelVersion, ?12 dim, ?13 embedding
     * (little-endian float32), ?14 created. The key is the new rowid. */
    [S_FACE_INSERT] = "INSERT INTO faces(collection, face_id, image_id, external_image_id, "
                      "user_id, bbox_left, bbox_top, bbox_width, bbox_height, confidence, "
                      "model_version, dim, embedding, created) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    /* Crop ?2 of face key ?1. */
    [S_CROP_INSERT] = "INSERT INTO face_crops(face_key, crop) VALUES (?1, ?2)",
    /* Face ?4 of collection ?3 (?1/?2: see FACE_SELECT). */
    [S_FACE_GET] = FACE_SELECT "WHERE f.collection = ?3 AND f.face_id = ?4",
    /* Faces of collection ?3 with FaceId > ?4 in FaceId order, at most ?5. */
    [S_FACE_LIST] = FACE_SELECT "WHERE f.collection = ?3 AND f.face_id > ?4 "
                    "ORDER BY f.face_id LIMIT ?5",
    /* As S_FACE_LIST, only faces of user ?4: FaceId > ?5, at most ?6. */
    [S_FACE_LIST_USER] = FACE_SELECT "WHERE f.collection = ?3 AND f.user_id = ?4 "
                         "AND f.face_id > ?5 ORDER BY f.face_id LIMIT ?6",
    /* Faces of collection ?3 from image ?4 whose ExternalImageId IS ?5 (IS:
     * NULL matches NULL), in key order. */
    [S_FACE_BY_IMAGE] = FACE_SELECT "WHERE f.collection = ?3 AND f.image_id = ?4 "
                        "AND f.external_image_id IS ?5 ORDER BY f.key",
    /* Every face of collection ?1 in FaceId order: key, face_id, dim, embedding. */
    [S_FACE_SCAN] = "SELECT key, face_id, dim, embedding FROM faces WHERE collection = ?1 "
                    "ORDER BY face_id",
    /* Key and UserId of face ?2 in collection ?1. */
    [S_FACE_PROBE] = "SELECT key, user_id FROM faces WHERE collection = ?1 AND face_id = ?2",
    /* Delete the face with key ?1 (its crop goes by cascade). */
    [S_FACE_DELETE] = "DELETE FROM faces WHERE key = ?1",
    /* Set the UserId of face key ?1 to ?2 (NULL to disassociate). */
    [S_FACE_SET_USER] = "UPDATE faces SET user_id = ?2 WHERE key = ?1",

    /* User ?2 of collection ?1: status, created, number of its faces. */
    [S_USER_GET] = "SELECT u.status, u.created, (SELECT count(*) FROM faces f "
                   "WHERE f.collection = u.collection AND f.user_id = u.user_id) "
                   "FROM users u WHERE u.collection = ?1 AND u.user_id = ?2",
    /* New user: ?1 collection, ?2 UserId, ?3 status, ?4 created. */
    [S_USER_INSERT] = "INSERT INTO users(collection, user_id, status, created) "
                      "VALUES (?1, ?2, ?3, ?4)",
    /* Delete user ?2 of collection ?1 (its faces must be disassociated first). */
    [S_USER_DELETE] = "DELETE FROM users WHERE collection = ?1 AND user_id = ?2",
    /* Set the status of user ?2 of collection ?1 to ?3. */
    [S_USER_SET_STATUS] = "UPDATE users SET status = ?3 WHERE collection = ?1 AND user_id = ?2",
    /* Number of faces of user ?2 in collection ?1. */
    [S_USER_FACE_COUNT] = "SELECT count(*) FROM faces WHERE collection = ?1 AND user_id = ?2",
    /* Disassociate every face of user ?2 in collection ?1. */
    [S_USER_CLEAR_FACES] = "UPDATE faces SET user_id = NULL WHERE collection = ?1 AND user_id = ?2",
    /* Users of collection ?1 with UserId > ?2 in UserId order, at most ?3:
     * user_id, status, created, face count. */
    [S_USERS_LIST] = "SELECT u.user_id, u.status, u.created, (SELECT count(*) FROM faces f "
                     "WHERE f.collection = u.collection AND f.user_id = u.user_id) "
                     "FROM users u WHERE u.collection = ?1 AND u.user_id > ?2 "
                     "ORDER BY u.user_id LIMIT ?3",

    /* Digest remembered for client request token ?1. */
    [S_TOKEN_GET] = "SELECT digest FROM request_tokens WHERE token = ?1",
    /* Remember token ?1 of collection ?2 with digest ?3 at time ?4. */
    [S_TOKEN_INSERT] = "INSERT INTO request_tokens(token, collection, digest, created) "
                       "VALUES (?1, ?2, ?3, ?4)",

    /* Set tag ?2 = ?3 on collection ?1 (insert or overwrite). */
    [S_TAG_UPSERT] = "INSERT INTO tags(collection, key, value) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT(collection, key) DO UPDATE SET value = excluded.value",
    /* Remove tag ?2 of collection ?1. */
    [S_TAG_DELETE] = "DELETE FROM tags WHERE collection = ?1 AND key = ?2",
    /* Number of tags of collection ?1. */
    [S_TAG_COUNT] = "SELECT count(*) FROM tags WHERE collection = ?1",
    /* Tags of collection ?1 in key order: key, value. */
    [S_TAG_LIST] = "SELECT key, value FROM tags WHERE collection = ?1 ORDER BY key",

    /* New job: ?1 id, ?2 type, ?3 collection or NULL, ?4 state, ?5 progress,
     * ?6 params or NULL, ?7 message or NULL, ?8 created (= updated). */
    [S_JOB_INSERT] = "INSERT INTO jobs(id, type, collection, state, progress, params, message, "
                     "created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    /* Job ?1: state ?2, progress ?3, message ?4, updated ?5. */
    [S_JOB_UPDATE] = "UPDATE jobs SET state = ?2, progress = ?3, message = ?4, updated = ?5 "
                     "WHERE id = ?1",
    /* Job ?1: id, type, collection, state, progress, params, message, created, updated. */
    [S_JOB_GET] = "SELECT id, type, collection, state, progress, params, message, created, "
                  "updated FROM jobs WHERE id = ?1",

    /* Consistency: the first problem found ("ok" when none), and the first
     * row that breaks a foreign key (no row when none). */
    [S_INTEGRITY] = "PRAGMA integrity_check(1)",
    [S_FK_CHECK] = "PRAGMA foreign_key_check",

    /* Reindexing. Faces of collection ?1 with a kept crop, in FaceId order:
     * key, face_id, crop. */
    [S_CROP_SCAN] = "SELECT f.key, f.face_id, c.crop FROM faces f "
                    "JOIN face_crops c ON c.face_key = f.key "
                    "WHERE f.collection = ?1 ORDER BY f.face_id",
    /* As S_CROP_SCAN, only faces without a staged embedding. */
    [S_CROP_SCAN_UNSTAGED] = "SELECT f.key, f.face_id, c.crop FROM faces f "
                             "JOIN face_crops c ON c.face_key = f.key "
                             "WHERE f.collection = ?1 AND NOT EXISTS "
                             "(SELECT 1 FROM reindex_staging s WHERE s.face_key = f.key) "
                             "ORDER BY f.face_id",
    /* Stage embedding ?4 (dim ?3) for face key ?1 if it is in collection ?2. */
    [S_STAGE_PUT] = "INSERT OR REPLACE INTO reindex_staging(face_key, collection, dim, embedding) "
                    "SELECT key, collection, ?3, ?4 FROM faces WHERE key = ?1 AND collection = ?2",
    /* Number of faces of collection ?1 without a staged embedding of dim ?2. */
    [S_STAGE_MISSING] = "SELECT count(*) FROM faces f WHERE f.collection = ?1 AND NOT EXISTS "
                        "(SELECT 1 FROM reindex_staging s WHERE s.face_key = f.key AND s.dim = ?2)",
    /* Swap the staged embeddings of collection ?1 in: dim ?2, model version ?3. */
    [S_STAGE_APPLY] = "UPDATE faces SET embedding = (SELECT s.embedding FROM reindex_staging s "
                      "WHERE s.face_key = faces.key), dim = ?2, model_version = ?3 "
                      "WHERE collection = ?1",
    /* Drop the staged embeddings of collection ?1. */
    [S_STAGE_CLEAR] = "DELETE FROM reindex_staging WHERE collection = ?1",
    /* Collection ?1 now uses model ?2, FaceModelVersion ?3, dim ?4. */
    [S_COLL_SET_MODEL] = "UPDATE collections SET model_id = ?2, face_model_version = ?3, dim = ?4 "
                         "WHERE id = ?1",

    /* Largest face key of collection ?1 (NULL when it has no face). */
    [S_KEY_MAX] = "SELECT max(key) FROM faces WHERE collection = ?1",

    /* Staged imports (0003_import.sql). New import: ?1 id, ?2 collection,
     * ?3 model id, ?4 FaceModelVersion, ?5 dim, ?6 collection created, ?7 now. */
    [S_IMP_INSERT] = "INSERT INTO imports(id, collection, model_id, face_model_version, dim, "
                     "collection_created, expected_faces, created, updated) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?7)",
    /* Import ?1 (import_read()). */
    [S_IMP_GET] = "SELECT id, collection, model_id, face_model_version, dim, collection_created, "
                  "state, faces_imported, faces_present, users_created, created_collection, "
                  "created, updated, "
                  "(SELECT count(*) FROM import_faces WHERE import_id = ?1), "
                  "(SELECT count(*) FROM import_users WHERE import_id = ?1), expected_faces "
                  "FROM imports WHERE id = ?1",
    /* Import ?1 was used at ?2. */
    [S_IMP_TOUCH] = "UPDATE imports SET updated = ?2 WHERE id = ?1",
    /* Stage a face: ?1 import, ?2..?15 as S_FACE_INSERT's ?2..?13 then ?14
     * crop or NULL, ?15 created (0: the commit's time). A FaceId staged
     * already is left alone (S_IMP_FACE_SAME then compares). */
    [S_IMP_FACE_PUT] = "INSERT INTO import_faces(import_id, face_id, image_id, external_image_id, "
                       "user_id, bbox_left, bbox_top, bbox_width, bbox_height, confidence, "
                       "model_version, dim, embedding, crop, created) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
                       "ON CONFLICT (import_id, face_id) DO NOTHING",
    /* 1 when the staged face ?2 of import ?1 has exactly the content ?3..?15. */
    [S_IMP_FACE_SAME] = "SELECT count(*) FROM import_faces WHERE import_id = ?1 AND face_id = ?2 "
                        "AND image_id = ?3 AND external_image_id IS ?4 AND user_id IS ?5 "
                        "AND bbox_left = ?6 AND bbox_top = ?7 AND bbox_width = ?8 "
                        "AND bbox_height = ?9 AND confidence = ?10 AND model_version = ?11 "
                        "AND dim = ?12 AND embedding = ?13 AND crop IS ?14 AND created = ?15",
    /* Stage user ?2 for import ?1 (once). */
    [S_IMP_USER_PUT] = "INSERT INTO import_users(import_id, user_id) VALUES (?1, ?2) "
                       "ON CONFLICT (import_id, user_id) DO NOTHING",
    /* Model id and dim of collection ?1. */
    [S_IMP_COLL] = "SELECT model_id, dim FROM collections WHERE id = ?1",
    /* A staged face of import ?1 whose FaceId is in collection ?2 with other content. */
    [S_IMP_CONFLICT] = "SELECT s.face_id FROM import_faces s JOIN faces f "
                       "ON f.collection = ?2 AND f.face_id = s.face_id WHERE s.import_id = ?1 "
                       "AND NOT (f.image_id = s.image_id "
                       "AND f.external_image_id IS s.external_image_id "
                       "AND f.user_id IS s.user_id AND f.bbox_left = s.bbox_left "
                       "AND f.bbox_top = s.bbox_top AND f.bbox_width = s.bbox_width "
                       "AND f.bbox_height = s.bbox_height AND f.dim = s.dim "
                       "AND f.embedding = s.embedding) LIMIT 1",
    /* Staged faces of import ?1 already in collection ?2. */
    [S_IMP_PRESENT] = "SELECT count(*) FROM import_faces s JOIN faces f "
                      "ON f.collection = ?2 AND f.face_id = s.face_id WHERE s.import_id = ?1",
    /* USER_CREATE changes for the users of import ?1 missing from collection ?2:
     * its staged users and the users of its staged faces. */
    [S_IMP_USERS_LOG] = "INSERT INTO changes(op, collection, face_key, id) SELECT 6, ?2, 0, u "
                        "FROM (SELECT user_id AS u FROM import_users WHERE import_id = ?1 UNION "
                        "SELECT user_id FROM import_faces WHERE import_id = ?1 "
                        "AND user_id IS NOT NULL) WHERE NOT EXISTS (SELECT 1 FROM users x "
                        "WHERE x.collection = ?2 AND x.user_id = u) ORDER BY u",
    /* Create the same users (status CREATED, time ?3). */
    [S_IMP_USERS_ADD] = "INSERT INTO users(collection, user_id, status, created) "
                        "SELECT ?2, u, 3, ?3 "
                        "FROM (SELECT user_id AS u FROM import_users WHERE import_id = ?1 UNION "
                        "SELECT user_id FROM import_faces WHERE import_id = ?1 "
                        "AND user_id IS NOT NULL) WHERE NOT EXISTS (SELECT 1 FROM users x "
                        "WHERE x.collection = ?2 AND x.user_id = u)",
    /* Largest face key of any collection (0 when none). */
    [S_KEY_MAX_ALL] = "SELECT coalesce(max(key), 0) FROM faces",
    /* Insert the staged faces of import ?1 missing from collection ?2 (time
     * ?3 for those staged without one), in FaceId order. */
    [S_IMP_FACES_ADD] = "INSERT INTO faces(collection, face_id, image_id, external_image_id, "
                        "user_id, bbox_left, bbox_top, bbox_width, bbox_height, confidence, "
                        "model_version, dim, embedding, created) "
                        "SELECT ?2, s.face_id, s.image_id, s.external_image_id, s.user_id, "
                        "s.bbox_left, s.bbox_top, s.bbox_width, s.bbox_height, s.confidence, "
                        "s.model_version, s.dim, s.embedding, "
                        "CASE WHEN s.created > 0 THEN s.created ELSE ?3 END "
                        "FROM import_faces s WHERE s.import_id = ?1 AND NOT EXISTS "
                        "(SELECT 1 FROM faces f WHERE f.collection = ?2 AND f.face_id = s.face_id) "
                        "ORDER BY s.face_id",
    /* Crops of the faces of collection ?2 with key > ?3, from import ?1. */
    [S_IMP_CROPS_ADD] = "INSERT INTO face_crops(face_key, crop) SELECT f.key, s.crop FROM faces f "
                        "JOIN import_faces s ON s.import_id = ?1 AND s.face_id = f.face_id "
                        "WHERE f.collection = ?2 AND f.key > ?3 AND s.crop IS NOT NULL",
    /* FACE_PUT changes for the faces of collection ?2 with key > ?3. */
    [S_IMP_FACES_LOG] = "INSERT INTO changes(op, collection, face_key, id) "
                        "SELECT 3, ?2, key, face_id FROM faces "
                        "WHERE key > ?3 AND collection = ?2 ORDER BY key",
    /* Users of collection ?1 with a face become ACTIVE. */
    [S_IMP_USERS_ACTIVE] = "UPDATE users SET status = 0 WHERE collection = ?1 AND status <> 0 "
                           "AND EXISTS (SELECT 1 FROM faces f WHERE f.collection = ?1 "
                           "AND f.user_id = users.user_id)",
    /* Import ?1 committed at ?6 with counts ?2..?5. */
    [S_IMP_DONE] = "UPDATE imports SET state = 1, faces_imported = ?2, faces_present = ?3, "
                   "users_created = ?4, created_collection = ?5, updated = ?6 WHERE id = ?1",
    /* Drop the staged faces / users of import ?1. */
    [S_IMP_CLEAR_FACES] = "DELETE FROM import_faces WHERE import_id = ?1",
    [S_IMP_CLEAR_USERS] = "DELETE FROM import_users WHERE import_id = ?1",
    /* Drop import ?1 (its staged rows cascade). */
    [S_IMP_DELETE] = "DELETE FROM imports WHERE id = ?1",
    /* Drop the imports untouched since ?1. */
    [S_IMP_EXPIRE] = "DELETE FROM imports WHERE updated < ?1",
};
/* clang-format on */
_Static_assert(FL_ARRAY_LEN(stmt_sql) == S_COUNT_, "stmt_sql out of sync with enum sq_stmt");

/* The backend object. */
struct sq_store {
    struct fl_store base;         /* must be first */
    sqlite3 *db;                  /* owned */
    sqlite3_stmt *stmt[S_COUNT_]; /* owned; prepared at open */
};

static struct sq_store *sq(struct fl_store *st)
{
    return (struct sq_store *)st;
}

/* ============================== SQLite memory ============================== */

/* SQLite asks for the size of its allocations (xSize), so each block carries
 * its size in a 16-byte header that keeps the payload 16-byte aligned. */
#define MEM_HDR 16

static void *mem_malloc(int n)
{
    unsigned char *p;
    size_t sz = (size_t)n;
    if (n < 0)
        return NULL;
    p = fl_malloc(sz + MEM_HDR);
    if (!p)
        return NULL;
    memcpy(p, &sz, sizeof(sz));
    return p + MEM_HDR;
}

static void mem_free(void *p)
{
    if (p)
        fl_free((unsigned char *)p - MEM_HDR);
}

static void *mem_realloc(void *p, int n)
{
    unsigned char *q;
    size_t sz = (size_t)n;
    if (!p)
        return mem_malloc(n);
    if (n < 0)
        return NULL;
    q = fl_realloc((unsigned char *)p - MEM_HDR, sz + MEM_HDR);
    if (!q)
        return NULL;
    memcpy(q, &sz, sizeof(sz));
    return q + MEM_HDR;
}

static int mem_size(void *p)
{
    size_t sz;
    if (!p)
        return 0;
    memcpy(&sz, (unsigned char *)p - MEM_HDR, sizeof(sz));
    return (int)sz;
}

static int mem_roundup(int n)
{
    return (n + 7) & ~7;
}

static int mem_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}

static void mem_shutdown(void *ud)
{
    (void)ud;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* Once per process, before SQLite is initialised: route its heap through
 * fl_malloc (refused when someone initialised SQLite before us; then its
 * heap is simply not counted). sqlite3_initialize() itself runs at every
 * open: it is cheap once done, thread-safe, and may be retried after it
 * failed for lack of memory. */
static void sqlite_setup(void)
{
    static const sqlite3_mem_methods mem = {mem_malloc,  mem_free, mem_realloc,  mem_size,
                                            mem_roundup, mem_init, mem_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK)
        FL_LOG_D("store: SQLite already initialised; its heap is not counted");
}

/* ================================ Errors ================================ */

/* Map a SQLite result code of the last call on db to a status, with a
 * message naming `what` and SQLite's own text; the extended code goes into
 * err->sys_errno. */
static enum fl_status sq_fail(sqlite3 *db, int rc, const char *what, struct fl_err *err)
{
    enum fl_status code;
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        code = FL_ERR_NOMEM;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = FL_ERR_BUSY;
        break;
    case SQLITE_CONSTRAINT:
        code = (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? FL_ERR_EXISTS
                   : FL_ERR_STORE;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        code = FL_ERR_CORRUPT;
        break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        code = FL_ERR_IO;
        break;
    default:
        code = FL_ERR_STORE;
        break;
    }
    fl_err_set(err, code, "store: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (err)
        err->sys_errno = ext;
    return code;
}

/* ============================ Statement helpers ============================ */

/* The prepared statement id, reset and with no bindings. */
static sqlite3_stmt *stmt(struct sq_store *s, enum sq_stmt id)
{
    return s->stmt[id];
}

/* Reset a statement after use and drop its bindings (so no SQLITE_STATIC
 * pointer outlives the call that bound it). */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Bind text, or NULL when str is NULL. Strings are the caller's for the call. */
static int bind_text(sqlite3_stmt *st, int i, const char *str)
{
    if (!str)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, str, -1, SQLITE_STATIC);
}

/* Step a statement that returns no row (INSERT/UPDATE/DELETE/transaction
 * control), reset it, and map errors. */
static enum fl_status exec_stmt(struct sq_store *s, sqlite3_stmt *st, const char *what,
                                struct fl_err *err)
{
    int rc = sqlite3_step(st);
    enum fl_status ret = FL_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = sq_fail(s->db, rc, what, err);
    done(st);
    return ret;
}

/* Begin a read (write == false) or write transaction. */
static enum fl_status tx_begin(struct sq_store *s, bool write, struct fl_err *err)
{
    return exec_stmt(s, stmt(s, write ? S_BEGIN_WRITE : S_BEGIN_READ), "begin", err);
}

/* Roll back whatever transaction is open (none is fine). */
static void tx_rollback(struct sq_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        exec_stmt(s, stmt(s, S_ROLLBACK), "rollback", NULL);
}

/* Commit when rc is FL_OK, else (or when the commit fails) roll back.
 * Returns the final status. */
static enum fl_status tx_end(struct sq_store *s, enum fl_status rc, struct fl_err *err)
{
    if (rc == FL_OK)
        rc = exec_stmt(s, stmt(s, S_COMMIT), "commit", err);
    if (rc != FL_OK)
        tx_rollback(s);
    return rc;
}

/* Append one change row inside the current write transaction. */
static enum fl_status change_add(struct sq_store *s, enum fl_store_change_op op,
                                 const char *collection, int64_t face_key, const char *id,
                                 struct fl_err *err)
{
    sqlite3_stmt *st = stmt(s, S_CHANGE_ADD);
    sqlite3_bind_int(st, 1, (int)op);
    bind_text(st, 2, collection);
    sqlite3_bind_int64(st, 3, face_key);
    bind_text(st, 4, id);
    return exec_stmt(s, st, "log change", err);
}

/* Dimension of a collection; FL_ERR_NOT_FOUND when it does not exist. */
static enum fl_status coll_dim(struct sq_store *s, const char *collection, uint32_t *out,
                               struct fl_err *err)
{
    sqlite3_stmt *st = stmt(s, S_COLL_DIM);
    enum fl_status ret = FL_OK;
    int rc;
    bind_text(st, 1, collection);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 d = sqlite3_column_int64(st, 0);
        if (d <= 0 || d > FL_STORE_DIM_MAX)
            ret = fl_err_set(err, FL_ERR_CORRUPT, "store: collection %s has dimension %lld",
                             collection, (long long)d);
        else
            *out = (uint32_t)d;
    } else if (rc == SQLITE_DONE) {
        ret = fl_err_set(err, FL_ERR_NOT_FOUND, "store: collection %s not found", collection);
    } else {
        ret = sq_fail(s->db, rc, "read collection", err);
    }
    done(st);
    return ret;
}

static enum fl_status coll_exists(struct sq_store *s, const char *collection, struct fl_err *err)
{
    uint32_t dim;
    return coll_dim(s, collection, &dim, err);
}

/* Add delta to a collection's face_count (which_stmt S_COLL_ADD_FACES) or
 * user_count (S_COLL_ADD_USERS). */
static enum fl_status coll_add(struct sq_store *s, enum sq_stmt which, const char *collection,
                               int64_t delta, struct fl_err *err)
{
    sqlite3_stmt *st = stmt(s, which);
    bind_text(st, 1, collection);
    sqlite3_bind_int64(st, 2, delta);
    return exec_stmt(s, st, "update collection counts", err);
}

/* ============================== Arena helpers ============================== */

/* Copy column col of the current row as a string into the arena (*out NULL
 * for SQL NULL). */
static enum fl_status col_str(sqlite3_stmt *st, int col, struct fl_arena *a, const char **out,
                              struct fl_err *err)
{
    const unsigned char *t;
    int n;
    char *p;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        *out = NULL;
        return FL_OK;
    }
    t = sqlite3_column_text(st, col);
    n = sqlite3_column_bytes(st, col);
    if (!t)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading a text column");
    p = fl_arena_alloc(a, (size_t)n + 1, 1);
    if (!p)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory (arena)");
    memcpy(p, t, (size_t)n);
    p[n] = '\0';
    *out = p;
    return FL_OK;
}

/* Copy column col (text of at most cap-1 bytes) into a fixed buffer; longer
 * or NULL text is FL_ERR_CORRUPT (the schema's writers never store it). */
static enum fl_status col_fixed(sqlite3_stmt *st, int col, char *buf, size_t cap,
                                struct fl_err *err)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!t) {
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
            return fl_err_set(err, FL_ERR_CORRUPT, "store: unexpected NULL id in the database");
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading a text column");
    }
    if ((size_t)n >= cap)
        return fl_err_set(err, FL_ERR_CORRUPT, "store: id of %d bytes in the database", n);
    memcpy(buf, t, (size_t)n);
    buf[n] = '\0';
    return FL_OK;
}

/* Make room for one more element in an arena-backed growing array *v of *n
 * elements with capacity *cap (elements of `size` bytes). The old block stays
 * in the arena: growth doubles, so the waste is bounded by the final size. */
static enum fl_status grow(struct fl_arena *a, void **v, size_t n, size_t *cap, size_t size,
                           struct fl_err *err)
{
    size_t ncap, bytes;
    void *p;
    if (n < *cap)
        return FL_OK;
    ncap = *cap ? *cap * 2 : 16;
    if (!fl_size_mul(ncap, size, &bytes))
        return fl_err_set(err, FL_ERR_NOMEM, "store: result too large");
    p = fl_arena_alloc(a, bytes, alignof(max_align_t));
    if (!p)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory (arena)");
    if (n)
        memcpy(p, *v, n * size);
    *v = p;
    *cap = ncap;
    return FL_OK;
}

/* ============================ Embedding bytes ============================ */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

/* Decode n little-endian float32 values from src into dst. */
static void floats_from_le(float *dst, const void *src, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
    if (HOST_BIG_ENDIAN) {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &dst[i], 4);
            u = __builtin_bswap32(u);
            memcpy(&dst[i], &u, 4);
        }
    }
}

/* Bind n floats as a little-endian blob. On little-endian hosts the caller's
 * array is bound as is; otherwise a swapped copy goes into *tmp (fl_free()
 * it after the statement ran). */
static int bind_floats(sqlite3_stmt *st, int i, const float *v, size_t n, void **tmp)
{
    if (HOST_BIG_ENDIAN) {
        uint32_t *w = fl_malloc(n * 4);
        if (!w)
            return SQLITE_NOMEM;
        memcpy(w, v, n * 4);
        for (size_t k = 0; k < n; k++)
            w[k] = __builtin_bswap32(w[k]);
        *tmp = w;
        return sqlite3_bind_blob(st, i, w, (int)(n * 4), SQLITE_STATIC);
    }
    return sqlite3_bind_blob(st, i, v, (int)(n * 4), SQLITE_STATIC);
}

/* ================================ Records ================================ */

/* Read a collection row (columns of S_COLL_GET) into *c, strings in a. */
static enum fl_status read_collection(sqlite3_stmt *st, struct fl_arena *a,
                                      struct fl_store_collection *c, struct fl_err *err)
{
    enum fl_status rc;
    sqlite3_int64 dim = sqlite3_column_int64(st, 3);
    rc = col_str(st, 0, a, &c->id, err);
    if (rc == FL_OK)
        rc = col_str(st, 1, a, &c->model_id, err);
    if (rc == FL_OK)
        rc = col_str(st, 2, a, &c->face_model_version, err);
    if (rc != FL_OK)
        return rc;
    if (!c->id || !c->model_id || !c->face_model_version || dim <= 0 || dim > FL_STORE_DIM_MAX)
        return fl_err_set(err, FL_ERR_CORRUPT, "store: malformed collection row");
    c->dim = (uint32_t)dim;
    c->created = sqlite3_column_double(st, 4);
    c->face_count = (uint64_t)sqlite3_column_int64(st, 5);
    c->user_count = (uint64_t)sqlite3_column_int64(st, 6);
    return FL_OK;
}

/* Read a face row (columns of FACE_SELECT) into *f, strings and blobs in a. */
static enum fl_status read_face(sqlite3_stmt *st, unsigned flags, struct fl_arena *a,
                                struct fl_store_face *f, struct fl_err *err)
{
    enum fl_status rc;
    sqlite3_int64 dim = sqlite3_column_int64(st, 11);

    memset(f, 0, sizeof(*f));
    if (dim <= 0 || dim > FL_STORE_DIM_MAX)
        return fl_err_set(err, FL_ERR_CORRUPT, "store: face with dimension %lld", (long long)dim);
    f->key = sqlite3_column_int64(st, 0);
    rc = col_fixed(st, 1, f->face_id, sizeof(f->face_id), err);
    if (rc == FL_OK)
        rc = col_fixed(st, 2, f->image_id, sizeof(f->image_id), err);
    if (rc == FL_OK)
        rc = col_str(st, 3, a, &f->external_image_id, err);
    if (rc == FL_OK)
        rc = col_str(st, 4, a, &f->user_id, err);
    if (rc == FL_OK)
        rc = col_str(st, 10, a, &f->model_version, err);
    if (rc != FL_OK)
        return rc;
    f->bbox.left = (float)sqlite3_column_double(st, 5);
    f->bbox.top = (float)sqlite3_column_double(st, 6);
    f->bbox.width = (float)sqlite3_column_double(st, 7);
    f->bbox.height = (float)sqlite3_column_double(st, 8);
    f->confidence = (float)sqlite3_column_double(st, 9);
    f->dim = (uint32_t)dim;
    f->created = sqlite3_column_double(st, 12);
    if (!f->model_version)
        return fl_err_set(err, FL_ERR_CORRUPT, "store: face without model version");
    if (flags & FL_STORE_WANT_EMBEDDING) {
        const void *b = sqlite3_column_blob(st, 13);
        int nb = sqlite3_column_bytes(st, 13);
        float *e;
        if (!b && sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
            return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading an embedding");
        if (!b || (size_t)nb != (size_t)dim * 4)
            return fl_err_set(err, FL_ERR_CORRUPT, "store: embedding of %d bytes for dim %lld", nb,
                              (long long)dim);
        e = fl_arena_alloc(a, (size_t)nb, alignof(max_align_t));
        if (!e)
            return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory (arena)");
        floats_from_le(e, b, (size_t)dim);
        f->embedding = e;
    }
    if ((flags & FL_STORE_WANT_CROP) && sqlite3_column_type(st, 14) != SQLITE_NULL) {
        const void *b = sqlite3_column_blob(st, 14);
        int nb = sqlite3_column_bytes(st, 14);
        void *c;
        if (!b && nb > 0)
            return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading a crop");
        c = fl_arena_alloc(a, (size_t)nb, alignof(max_align_t));
        if (!c)
            return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory (arena)");
        if (nb)
            memcpy(c, b, (size_t)nb);
        f->crop = c;
        f->crop_len = (size_t)nb;
    }
    return FL_OK;
}

/* Run a face SELECT already bound (except ?1/?2, bound here from flags) and
 * append its rows to (*v, *n, *cap). Resets the statement. */
static enum fl_status collect_faces(struct sq_store *s, sqlite3_stmt *st, unsigned flags,
                                    struct fl_arena *a, struct fl_store_face **v, size_t *n,
                                    size_t *cap, struct fl_err *err)
{
    enum fl_status ret = FL_OK;
    int rc;
    sqlite3_bind_int(st, 1, (flags & FL_STORE_WANT_EMBEDDING) ? 1 : 0);
    sqlite3_bind_int(st, 2, (flags & FL_STORE_WANT_CROP) ? 1 : 0);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        ret = grow(a, (void **)v, *n, cap, sizeof(**v), err);
        if (ret == FL_OK)
            ret = read_face(st, flags, a, &(*v)[*n], err);
        if (ret != FL_OK)
            break;
        (*n)++;
    }
    if (ret == FL_OK && rc != SQLITE_DONE)
        ret = sq_fail(s->db, rc, "read faces", err);
    done(st);
    return ret;
}

/* ============================ Open and migrate ============================ */

/* Run one PRAGMA that returns a single integer. */
static enum fl_status pragma_int(sqlite3 *db, const char *sql, int64_t *out, struct fl_err *err)
{
    sqlite3_stmt *st = NULL;
    enum fl_status ret = FL_OK;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, sql, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else
        ret = sq_fail(db, rc, sql, err);
    sqlite3_finalize(st);
    return ret;
}

/* Run fixed SQL text (PRAGMAs, migration scripts). */
static enum fl_status exec_sql(sqlite3 *db, const char *sql, const char *what, struct fl_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, what, err);
    return FL_OK;
}

/* Check the file is ours (or empty) and apply the missing migrations, each in
 * its own BEGIN IMMEDIATE transaction that re-reads user_version, so several
 * processes opening one file at once migrate it exactly once. */
static enum fl_status migrate(sqlite3 *db, bool read_only, struct fl_err *err)
{
    size_t n_mig;
    const struct fl__store_migration *mig = fl__store_sqlite_migrations(&n_mig);
    int64_t uv = 0, app = 0, n_tables = 0;
    enum fl_status rc;
    char sql[96];

    rc = pragma_int(db, "PRAGMA user_version", &uv, err);
    if (rc != FL_OK)
        return rc;
    if (uv > (int64_t)n_mig)
        return fl_err_set(err, FL_ERR_STORE,
                          "store: database schema version %lld is newer than this build "
                          "knows (%zu); use a newer FaceLink",
                          (long long)uv, n_mig);
    if (uv == (int64_t)n_mig || read_only) {
        rc = pragma_int(db, "PRAGMA application_id", &app, err);
        if (rc == FL_OK && app != FL_SQLITE_APP_ID)
            rc = fl_err_set(err, FL_ERR_CORRUPT, "store: not a FaceLink database");
        if (rc == FL_OK && uv != (int64_t)n_mig)
            rc = fl_err_set(err, FL_ERR_STORE,
                            "store: read-only database at schema version %lld, wants %zu",
                            (long long)uv, n_mig);
        return rc;
    }
    rc = exec_sql(db, "BEGIN IMMEDIATE", "begin migration", err);
    if (rc != FL_OK)
        return rc;
    rc = pragma_int(db, "PRAGMA user_version", &uv, err);
    if (rc == FL_OK)
        rc = pragma_int(db, "PRAGMA application_id", &app, err);
    if (rc == FL_OK)
        rc = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &n_tables, err);
    if (rc == FL_OK && (app != 0 || n_tables != 0) && app != FL_SQLITE_APP_ID)
        rc = fl_err_set(err, FL_ERR_CORRUPT, "store: not a FaceLink database");
    if (rc == FL_OK && uv > (int64_t)n_mig)
        rc = fl_err_set(err, FL_ERR_STORE,
                        "store: database schema version %lld is newer than this build knows "
                        "(%zu); use a newer FaceLink",
                        (long long)uv, n_mig);
    for (size_t i = (size_t)(uv < 0 ? 0 : uv); rc == FL_OK && i < n_mig; i++) {
        FL_ASSERT(mig[i].version == (int)i + 1);
        FL_LOG_I("store: applying migration %s", mig[i].name);
        rc = exec_sql(db, mig[i].sql, mig[i].name, err);
        if (rc == FL_OK) {
            /* PRAGMAs take no bound parameters; the number is our own constant. */
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", mig[i].version);
            rc = exec_sql(db, sql, "set user_version", err);
        }
    }
    if (rc == FL_OK && app != FL_SQLITE_APP_ID) {
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", FL_SQLITE_APP_ID);
        rc = exec_sql(db, sql, "set application_id", err);
    }
    if (rc == FL_OK)
        rc = exec_sql(db, "COMMIT", "commit migration", err);
    if (rc != FL_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sq_close(struct fl_store *st)
{
    struct sq_store *s = sq(st);
    for (int i = 0; i < S_COUNT_; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    fl_free(s);
}

static const struct fl_store_methods sq_methods;

enum fl_status fl__store_sqlite_open(const char *path, const struct fl_store_opts *opts,
                                     struct fl_store **out, struct fl_err *err)
{
    struct sq_store *s = NULL;
    enum fl_status rc = FL_OK;
    int busy_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_MS;
    bool ro = opts && opts->read_only;
    int flags = (ro ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) |
                SQLITE_OPEN_NOMUTEX;
    int src;
    char journal[16] = "";

    pthread_once(&sqlite_once, sqlite_setup);
    src = sqlite3_initialize();
    if (src != SQLITE_OK)
        return sq_fail(NULL, src, "initialise SQLite", err);
    s = fl_calloc(1, sizeof(*s));
    if (!s)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
    s->base.m = &sq_methods;
    src = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = sq_fail(s->db, src, path, err);
        if (rc != FL_ERR_NOMEM && rc != FL_ERR_CORRUPT)
            rc = fl_err_set(err, FL_ERR_IO, "store: cannot open %s: %s", path,
                            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, busy_ms);
    if (!ro) {
        sqlite3_stmt *st = NULL;
        src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (src == SQLITE_OK) {
            src = sqlite3_step(st);
            if (src == SQLITE_ROW) {
                const unsigned char *t = sqlite3_column_text(st, 0);
                snprintf(journal, sizeof(journal), "%s", t ? (const char *)t : "");
                src = SQLITE_OK;
            }
        }
        sqlite3_finalize(st);
        if (src != SQLITE_OK) {
            rc = sq_fail(s->db, src, "set WAL mode", err);
            goto out;
        }
        /* ":memory:" (tests) has no WAL: private to this connection, not durable */
        if (strcmp(journal, "wal") != 0 && strcmp(path, ":memory:") != 0) {
            rc = fl_err_set(err, FL_ERR_STORE, "store: %s: WAL mode refused (journal %s)", path,
                            journal);
            goto out;
        }
    }
    rc = exec_sql(s->db, "PRAGMA synchronous = FULL", "set synchronous", err);
    if (rc == FL_OK)
        rc = exec_sql(s->db, "PRAGMA foreign_keys = ON", "enable foreign keys", err);
    if (rc == FL_OK)
        rc = migrate(s->db, ro, err);
    for (int i = 0; rc == FL_OK && i < S_COUNT_; i++) {
        src = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                 NULL);
        if (src != SQLITE_OK)
            rc = sq_fail(s->db, src, "prepare statement", err);
    }
out:
    if (rc != FL_OK) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return FL_OK;
}

/* ============================== Collections ============================== */

static enum fl_status sq_collection_create(struct fl_store *st, const struct fl_store_collection *c,
                                           struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_COLL_INSERT);
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    bind_text(q, 1, c->id);
    bind_text(q, 2, c->model_id);
    bind_text(q, 3, c->face_model_version);
    sqlite3_bind_int64(q, 4, c->dim);
    sqlite3_bind_double(q, 5, c->created > 0 ? c->created : fl_time_now());
    rc = exec_stmt(s, q, "create collection", err);
    if (rc == FL_ERR_EXISTS)
        fl_err_set(err, FL_ERR_EXISTS, "The collection id: %s already exists.", c->id);
    if (rc == FL_OK)
        rc = change_add(s, FL_STORE_CHANGE_COLLECTION_CREATE, c->id, 0, NULL, err);
    return tx_end(s, rc, err);
}

static enum fl_status sq_collection_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                        struct fl_store_collection *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_COLL_GET);
    struct fl_store_collection c;
    enum fl_status ret;
    int rc;
    bind_text(q, 1, id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        ret = read_collection(q, a, &c, err);
    else if (rc == SQLITE_DONE)
        ret = fl_err_set(err, FL_ERR_NOT_FOUND, "store: collection %s not found", id);
    else
        ret = sq_fail(s->db, rc, "read collection", err);
    done(q);
    if (ret == FL_OK)
        *out = c;
    return ret;
}

static enum fl_status sq_collection_list(struct fl_store *st, const char *after, size_t limit,
                                         struct fl_arena *a, struct fl_store_collection_page *out,
                                         struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_COLL_LIST);
    struct fl_store_collection *v = NULL;
    size_t n = 0, cap = 0;
    enum fl_status ret = FL_OK;
    int rc;
    bind_text(q, 1, after);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)limit + 1);
    for (;;) {
        rc = sqlite3_step(q);
        if (rc != SQLITE_ROW)
            break;
        ret = grow(a, (void **)&v, n, &cap, sizeof(*v), err);
        if (ret == FL_OK)
            ret = read_collection(q, a, &v[n], err);
        if (ret != FL_OK)
            break;
        n++;
    }
    if (ret == FL_OK && rc != SQLITE_DONE)
        ret = sq_fail(s->db, rc, "list collections", err);
    done(q);
    if (ret != FL_OK)
        return ret;
    out->next = NULL;
    if (n > limit) {
        n = limit;
        out->next = v[n - 1].id;
    }
    out->v = v;
    out->n = n;
    return FL_OK;
}

static enum fl_status sq_collection_delete(struct fl_store *st, const char *id, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_COLL_DELETE);
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    bind_text(q, 1, id);
    rc = exec_stmt(s, q, "delete collection", err);
    if (rc == FL_OK && sqlite3_changes(s->db) == 0)
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "store: collection %s not found", id);
    if (rc == FL_OK)
        rc = change_add(s, FL_STORE_CHANGE_COLLECTION_DELETE, id, 0, NULL, err);
    return tx_end(s, rc, err);
}

/* ================================= Faces ================================= */

/* Status of a user: FL_ERR_NOT_FOUND if missing, else *out_count faces. */
static enum fl_status user_read(struct sq_store *s, const char *collection, const char *user_id,
                                struct fl_store_user *out, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_USER_GET);
    enum fl_status ret = FL_OK;
    int rc;
    bind_text(q, 1, collection);
    bind_text(q, 2, user_id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 status = sqlite3_column_int64(q, 0);
        if (status < FL_STORE_USER_ACTIVE || status > FL_STORE_USER_CREATED) {
            ret =
                fl_err_set(err, FL_ERR_CORRUPT, "store: user with status %lld", (long long)status);
        } else {
            out->status = (enum fl_store_user_status)status;
            out->created = sqlite3_column_double(q, 1);
            out->face_count = (uint32_t)sqlite3_column_int64(q, 2);
            snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
        }
    } else if (rc == SQLITE_DONE) {
        ret = fl_err_set(err, FL_ERR_NOT_FOUND, "store: user %s not found in collection %s",
                         user_id, collection);
    } else {
        ret = sq_fail(s->db, rc, "read user", err);
    }
    done(q);
    return ret;
}

static enum fl_status user_set_status(struct sq_store *s, const char *collection,
                                      const char *user_id, enum fl_store_user_status status,
                                      struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_USER_SET_STATUS);
    bind_text(q, 1, collection);
    bind_text(q, 2, user_id);
    sqlite3_bind_int(q, 3, (int)status);
    return exec_stmt(s, q, "set user status", err);
}

/* Bind a face's columns ?1..?12 as S_FACE_INSERT and S_IMP_FACE_PUT share
 * them: ?1 = first (the collection, or the staged import's id), then FaceId,
 * ImageId, ExternalImageId, UserId, the box, confidence, model version, dim. */
static void bind_face_cols(sqlite3_stmt *q, const char *first, const struct fl_store_face *f)
{
    bind_text(q, 1, first);
    bind_text(q, 2, f->face_id);
    bind_text(q, 3, f->image_id);
    bind_text(q, 4, f->external_image_id);
    bind_text(q, 5, f->user_id);
    sqlite3_bind_double(q, 6, f->bbox.left);
    sqlite3_bind_double(q, 7, f->bbox.top);
    sqlite3_bind_double(q, 8, f->bbox.width);
    sqlite3_bind_double(q, 9, f->bbox.height);
    sqlite3_bind_double(q, 10, f->confidence);
    bind_text(q, 11, f->model_version);
    sqlite3_bind_int64(q, 12, f->dim);
}

/* Insert one face (and its crop) inside the open write transaction. */
static enum fl_status face_insert(struct sq_store *s, const char *collection,
                                  const struct fl_store_face *f, double created, int64_t *out_key,
                                  struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_FACE_INSERT);
    void *tmp = NULL;
    enum fl_status rc;
    int src;

    bind_face_cols(q, collection, f);
    src = bind_floats(q, 13, f->embedding, f->dim, &tmp);
    sqlite3_bind_double(q, 14, created);
    if (src != SQLITE_OK) {
        done(q);
        fl_free(tmp);
        return sq_fail(s->db, src, "bind embedding", err);
    }
    rc = exec_stmt(s, q, "insert face", err);
    fl_free(tmp);
    if (rc == FL_ERR_EXISTS)
        return fl_err_set(err, FL_ERR_EXISTS, "store: face %s already in collection %s", f->face_id,
                          collection);
    if (rc != FL_OK)
        return rc;
    *out_key = sqlite3_last_insert_rowid(s->db);
    if (f->crop) {
        q = stmt(s, S_CROP_INSERT);
        if (f->crop_len > (size_t)INT32_MAX) {
            return fl_err_set(err, FL_ERR_INVALID_ARG, "store: crop of %zu bytes too large",
                              f->crop_len);
        }
        sqlite3_bind_int64(q, 1, *out_key);
        sqlite3_bind_blob(q, 2, f->crop, (int)f->crop_len, SQLITE_STATIC);
        rc = exec_stmt(s, q, "insert crop", err);
    }
    return rc;
}

/* Insert a batch inside the open write transaction; keys[i] receives each
 * new key. */
static enum fl_status faces_insert_all(struct sq_store *s, const char *collection,
                                       const struct fl_store_face *faces, size_t n, double now,
                                       int64_t *keys, struct fl_err *err)
{
    uint32_t dim = 0;
    struct fl_store_user u;
    enum fl_status rc = coll_dim(s, collection, &dim, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        const struct fl_store_face *f = &faces[i];
        if (f->dim != dim)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "store: face %zu has dimension %u, collection %s wants %u", i, f->dim,
                              collection, dim);
        if (f->user_id) {
            rc = user_read(s, collection, f->user_id, &u, err);
            if (rc == FL_OK && u.status != FL_STORE_USER_ACTIVE)
                rc = user_set_status(s, collection, f->user_id, FL_STORE_USER_ACTIVE, err);
        }
        if (rc == FL_OK)
            rc = face_insert(s, collection, f, f->created > 0 ? f->created : now, &keys[i], err);
        if (rc == FL_OK)
            rc = change_add(s, FL_STORE_CHANGE_FACE_PUT, collection, keys[i], f->face_id, err);
    }
    if (rc == FL_OK)
        rc = coll_add(s, S_COLL_ADD_FACES, collection, (int64_t)n, err);
    return rc;
}

/* faces_put and faces_put_dedup: with dedup (a and out_existing set), first
 * look for faces of the batch's image and ExternalImageId in the same
 * transaction and insert nothing if there are any. */
static enum fl_status faces_put(struct sq_store *s, const char *collection,
                                struct fl_store_face *faces, size_t n, struct fl_arena *a,
                                struct fl_store_face_list *out_existing, struct fl_err *err)
{
    int64_t *keys = NULL;
    double now = fl_time_now();
    struct fl_store_face *v = NULL;
    size_t nv = 0, cap = 0;
    enum fl_status rc;

    keys = fl_malloc(n * sizeof(*keys));
    if (!keys)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
    rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        goto out;
    if (out_existing) {
        sqlite3_stmt *q = stmt(s, S_FACE_BY_IMAGE);
        rc = coll_exists(s, collection, err);
        if (rc == FL_OK) {
            bind_text(q, 3, collection);
            bind_text(q, 4, faces[0].image_id);
            bind_text(q, 5, faces[0].external_image_id);
            rc = collect_faces(s, q, 0, a, &v, &nv, &cap, err);
        }
    }
    if (rc == FL_OK && nv == 0)
        rc = faces_insert_all(s, collection, faces, n, now, keys, err);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK && nv == 0) {
        for (size_t i = 0; i < n; i++) {
            faces[i].key = keys[i];
            if (faces[i].created <= 0)
                faces[i].created = now;
        }
    }
    if (rc == FL_OK && out_existing) {
        out_existing->v = v;
        out_existing->n = nv;
        out_existing->next = NULL;
    }
out:
    fl_free(keys);
    return rc;
}

static enum fl_status sq_faces_put(struct fl_store *st, const char *collection,
                                   struct fl_store_face *faces, size_t n, struct fl_err *err)
{
    return faces_put(sq(st), collection, faces, n, NULL, NULL, err);
}

static enum fl_status sq_faces_put_dedup(struct fl_store *st, const char *collection,
                                         struct fl_store_face *faces, size_t n, struct fl_arena *a,
                                         struct fl_store_face_list *out_existing,
                                         struct fl_err *err)
{
    return faces_put(sq(st), collection, faces, n, a, out_existing, err);
}

static enum fl_status sq_faces_get(struct fl_store *st, const char *collection,
                                   const char *const *face_ids, size_t n, unsigned flags,
                                   struct fl_arena *a, struct fl_store_face_list *out,
                                   struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_FACE_GET);
    struct fl_store_face *v = NULL;
    size_t nv = 0, cap = 0;
    enum fl_status rc = tx_begin(s, false, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        bind_text(q, 3, collection);
        bind_text(q, 4, face_ids[i]);
        rc = collect_faces(s, q, flags, a, &v, &nv, &cap, err);
    }
    rc = tx_end(s, rc, err);
    if (rc != FL_OK)
        return rc;
    out->v = v;
    out->n = nv;
    out->next = NULL;
    return FL_OK;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ListFaces with a FaceIds filter: look the given ids up one by one in
 * FaceId order (no SQL built from the list), keeping those after q->after
 * and matching q->user_id, until limit + 1 are found. */
static enum fl_status list_by_ids(struct sq_store *s, const struct fl_store_face_query *q,
                                  struct fl_arena *a, struct fl_store_face **v, size_t *n,
                                  size_t *cap, struct fl_err *err)
{
    sqlite3_stmt *get = stmt(s, S_FACE_GET);
    const char **ids = NULL;
    enum fl_status rc = FL_OK;
    size_t m = q->n_face_ids;

    ids = fl_malloc((m ? m : 1) * sizeof(*ids));
    if (!ids)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
    memcpy(ids, q->face_ids, m * sizeof(*ids));
    qsort(ids, m, sizeof(*ids), cmp_str_ptr);
    for (size_t i = 0; rc == FL_OK && i < m && *n <= q->limit; i++) {
        size_t before = *n;
        if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
            continue;
        if (strcmp(ids[i], q->after) <= 0)
            continue;
        bind_text(get, 3, q->collection);
        bind_text(get, 4, ids[i]);
        rc = collect_faces(s, get, q->flags, a, v, n, cap, err);
        if (rc == FL_OK && *n > before && q->user_id &&
            (!(*v)[before].user_id || strcmp((*v)[before].user_id, q->user_id) != 0))
            *n = before;
    }
    fl_free(ids);
    return rc;
}

static enum fl_status sq_faces_list(struct fl_store *st, const struct fl_store_face_query *q,
                                    struct fl_arena *a, struct fl_store_face_list *out,
                                    struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_face *v = NULL;
    size_t n = 0, cap = 0;
    const char *next = NULL;
    enum fl_status rc = tx_begin(s, false, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, q->collection, err);
    if (rc == FL_OK && q->n_face_ids > 0) {
        rc = list_by_ids(s, q, a, &v, &n, &cap, err);
    } else if (rc == FL_OK && q->user_id) {
        sqlite3_stmt *l = stmt(s, S_FACE_LIST_USER);
        bind_text(l, 3, q->collection);
        bind_text(l, 4, q->user_id);
        bind_text(l, 5, q->after);
        sqlite3_bind_int64(l, 6, (sqlite3_int64)q->limit + 1);
        rc = collect_faces(s, l, q->flags, a, &v, &n, &cap, err);
    } else if (rc == FL_OK) {
        sqlite3_stmt *l = stmt(s, S_FACE_LIST);
        bind_text(l, 3, q->collection);
        bind_text(l, 4, q->after);
        sqlite3_bind_int64(l, 5, (sqlite3_int64)q->limit + 1);
        rc = collect_faces(s, l, q->flags, a, &v, &n, &cap, err);
    }
    rc = tx_end(s, rc, err);
    if (rc != FL_OK)
        return rc;
    if (n > q->limit) {
        n = q->limit;
        next = v[n - 1].face_id;
    }
    out->v = v;
    out->n = n;
    out->next = next;
    return FL_OK;
}

/* Look up a face: *out_key 0 when missing; its user (or "") in user[]. */
static enum fl_status face_probe(struct sq_store *s, const char *collection, const char *face_id,
                                 int64_t *out_key, char user[FL_STORE_USER_ID_MAX + 1],
                                 struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_FACE_PROBE);
    enum fl_status ret = FL_OK;
    int rc;
    bind_text(q, 1, collection);
    bind_text(q, 2, face_id);
    *out_key = 0;
    user[0] = '\0';
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *out_key = sqlite3_column_int64(q, 0);
        if (sqlite3_column_type(q, 1) != SQLITE_NULL)
            ret = col_fixed(q, 1, user, FL_STORE_USER_ID_MAX + 1, err);
    } else if (rc != SQLITE_DONE) {
        ret = sq_fail(s->db, rc, "read face", err);
    }
    done(q);
    return ret;
}

static enum fl_status sq_faces_delete(struct fl_store *st, const char *collection,
                                      const char *const *face_ids, size_t n,
                                      struct fl_store_outcome *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_outcome *res = NULL;
    int64_t deleted = 0, key;
    enum fl_status rc;

    res = fl_calloc(n ? n : 1, sizeof(*res));
    if (!res)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
    rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        goto out;
    rc = coll_exists(s, collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        rc = face_probe(s, collection, face_ids[i], &key, res[i].user_id, err);
        if (rc != FL_OK)
            break;
        if (key == 0) {
            res[i].code = FL_STORE_FACE_NOT_FOUND;
        } else if (res[i].user_id[0]) {
            res[i].code = FL_STORE_FACE_HAS_USER;
        } else {
            sqlite3_stmt *d = stmt(s, S_FACE_DELETE);
            sqlite3_bind_int64(d, 1, key);
            rc = exec_stmt(s, d, "delete face", err);
            if (rc == FL_OK)
                rc = change_add(s, FL_STORE_CHANGE_FACE_DELETE, collection, key, face_ids[i], err);
            res[i].code = FL_STORE_DONE;
            deleted++;
        }
    }
    if (rc == FL_OK && deleted)
        rc = coll_add(s, S_COLL_ADD_FACES, collection, -deleted, err);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK && n)
        memcpy(out, res, n * sizeof(*res));
out:
    fl_free(res);
    return rc;
}

static enum fl_status sq_faces_find_by_image(struct fl_store *st, const char *collection,
                                             const char *image_id, const char *external_image_id,
                                             struct fl_arena *a, struct fl_store_face_list *out,
                                             struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_FACE_BY_IMAGE);
    struct fl_store_face *v = NULL;
    size_t n = 0, cap = 0;
    enum fl_status rc = tx_begin(s, false, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    if (rc == FL_OK) {
        bind_text(q, 3, collection);
        bind_text(q, 4, image_id);
        bind_text(q, 5, external_image_id);
        rc = collect_faces(s, q, 0, a, &v, &n, &cap, err);
    }
    rc = tx_end(s, rc, err);
    if (rc != FL_OK)
        return rc;
    out->v = v;
    out->n = n;
    out->next = NULL;
    return FL_OK;
}

static enum fl_status sq_faces_scan(struct fl_store *st, const char *collection,
                                    fl_store_scan_fn fn, void *ud, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_FACE_SCAN);
    float *buf = NULL;
    size_t buf_dim = 0;
    char face_id[FL_UUID_STR_LEN + 1];
    enum fl_status ret = tx_begin(s, false, err);
    int rc = SQLITE_DONE;

    if (ret != FL_OK)
        return ret;
    ret = coll_exists(s, collection, err);
    if (ret == FL_OK) {
        bind_text(q, 1, collection);
        for (;;) {
            rc = sqlite3_step(q);
            if (rc != SQLITE_ROW)
                break;
            sqlite3_int64 key = sqlite3_column_int64(q, 0), dim = sqlite3_column_int64(q, 2);
            const void *b;
            int nb;
            ret = col_fixed(q, 1, face_id, sizeof(face_id), err);
            if (ret != FL_OK)
                break;
            if (dim <= 0 || dim > FL_STORE_DIM_MAX) {
                ret = fl_err_set(err, FL_ERR_CORRUPT, "store: face %s has dimension %lld", face_id,
                                 (long long)dim);
                break;
            }
            b = sqlite3_column_blob(q, 3);
            nb = sqlite3_column_bytes(q, 3);
            if (!b && sqlite3_errcode(s->db) == SQLITE_NOMEM) {
                ret = fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading an embedding");
                break;
            }
            if (!b || (size_t)nb != (size_t)dim * 4) {
                ret = fl_err_set(err, FL_ERR_CORRUPT, "store: face %s: embedding of %d bytes",
                                 face_id, nb);
                break;
            }
            if ((size_t)dim > buf_dim) {
                fl_free_aligned(buf);
                buf = fl_malloc_aligned((size_t)dim * sizeof(float), 64);
                buf_dim = buf ? (size_t)dim : 0;
                if (!buf) {
                    ret = fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
                    break;
                }
            }
            floats_from_le(buf, b, (size_t)dim);
            ret = fn(ud, key, face_id, buf, (uint32_t)dim);
            if (ret != FL_OK)
                break;
        }
        if (ret == FL_OK && rc != SQLITE_DONE)
            ret = sq_fail(s->db, rc, "scan faces", err);
        done(q);
    }
    fl_free_aligned(buf);
    /* A read transaction: ending it cannot lose anything, but keep the
     * callback's status rather than the commit's. */
    if (ret == FL_OK)
        return tx_end(s, FL_OK, err);
    tx_rollback(s);
    return ret;
}

/* ================================= Users ================================= */

/* SHA-256 hex digest of an operation and its parameters, for client request
 * tokens: fields are NUL-separated so ("ab","c") and ("a","bc") differ. */
static enum fl_status token_digest(const char *op, const char *collection, const char *user_id,
                                   const char *const *ids, size_t n, char out[65],
                                   struct fl_err *err)
{
    struct fl_buf b;
    enum fl_status rc;
    fl_buf_init(&b, (size_t)1 << 24);
    rc = fl_buf_append(&b, op, strlen(op) + 1, err);
    if (rc == FL_OK)
        rc = fl_buf_append(&b, collection, strlen(collection) + 1, err);
    if (rc == FL_OK)
        rc = fl_buf_append(&b, user_id, strlen(user_id) + 1, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++)
        rc = fl_buf_append(&b, ids[i], strlen(ids[i]) + 1, err);
    if (rc == FL_OK)
        fl_sha256_hex(b.data, b.len, out);
    fl_buf_fini(&b);
    return rc;
}

/* Token check inside the open write transaction: *out_replay true when the
 * token was already used with these parameters; FL_ERR_IDEMPOTENT_MISMATCH
 * when used with others. */
static enum fl_status token_check(struct sq_store *s, const char *token, const char *digest,
                                  bool *out_replay, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_TOKEN_GET);
    enum fl_status ret = FL_OK;
    int rc;
    *out_replay = false;
    bind_text(q, 1, token);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const unsigned char *d = sqlite3_column_text(q, 0);
        if (!d)
            ret = sq_fail(s->db, SQLITE_NOMEM, "read token", err);
        else if (strcmp((const char *)d, digest) == 0)
            *out_replay = true;
        else
            ret = fl_err_set(err, FL_ERR_IDEMPOTENT_MISMATCH,
                             "The ClientRequestToken: %s you have supplied is already in use.",
                             token);
    } else if (rc != SQLITE_DONE) {
        ret = sq_fail(s->db, rc, "read token", err);
    }
    done(q);
    return ret;
}

static enum fl_status token_record(struct sq_store *s, const char *token, const char *collection,
                                   const char *digest, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_TOKEN_INSERT);
    bind_text(q, 1, token);
    bind_text(q, 2, collection);
    bind_text(q, 3, digest);
    sqlite3_bind_double(q, 4, fl_time_now());
    return exec_stmt(s, q, "record token", err);
}

/* Common head of the token-carrying user operations, inside a write
 * transaction: collection exists, token digest computed and checked. */
static enum fl_status user_op_head(struct sq_store *s, const char *op, const char *collection,
                                   const char *user_id, const char *const *ids, size_t n,
                                   const char *token, char digest[65], bool *replay,
                                   struct fl_err *err)
{
    enum fl_status rc = coll_exists(s, collection, err);
    *replay = false;
    if (rc == FL_OK && token) {
        rc = token_digest(op, collection, user_id, ids, n, digest, err);
        if (rc == FL_OK)
            rc = token_check(s, token, digest, replay, err);
    }
    return rc;
}

static enum fl_status sq_user_create(struct fl_store *st, const char *collection,
                                     const char *user_id, const char *token, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_user u;
    char digest[65];
    bool replay = false;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = user_op_head(s, "CreateUser", collection, user_id, NULL, 0, token, digest, &replay, err);
    if (rc == FL_OK && !replay) {
        rc = user_read(s, collection, user_id, &u, err);
        if (rc == FL_OK) {
            rc = fl_err_set(err, FL_ERR_CONFLICT, "store: user %s already exists in collection %s",
                            user_id, collection);
        } else if (rc == FL_ERR_NOT_FOUND) {
            sqlite3_stmt *q = stmt(s, S_USER_INSERT);
            bind_text(q, 1, collection);
            bind_text(q, 2, user_id);
            sqlite3_bind_int(q, 3, FL_STORE_USER_CREATED);
            sqlite3_bind_double(q, 4, fl_time_now());
            rc = exec_stmt(s, q, "create user", err);
            if (rc == FL_OK)
                rc = coll_add(s, S_COLL_ADD_USERS, collection, 1, err);
            if (rc == FL_OK)
                rc = change_add(s, FL_STORE_CHANGE_USER_CREATE, collection, 0, user_id, err);
            if (rc == FL_OK && token)
                rc = token_record(s, token, collection, digest, err);
        }
    }
    return tx_end(s, rc, err);
}

static enum fl_status sq_user_get(struct fl_store *st, const char *collection, const char *user_id,
                                  struct fl_store_user *out, struct fl_err *err)
{
    struct fl_store_user u;
    enum fl_status rc = user_read(sq(st), collection, user_id, &u, err);
    if (rc == FL_OK)
        *out = u;
    return rc;
}

static enum fl_status sq_users_list(struct fl_store *st, const char *collection, const char *after,
                                    size_t limit, struct fl_arena *a,
                                    struct fl_store_user_page *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_USERS_LIST);
    struct fl_store_user *v = NULL;
    size_t n = 0, cap = 0;
    enum fl_status ret = tx_begin(s, false, err);
    int rc = SQLITE_DONE;
    if (ret != FL_OK)
        return ret;
    ret = coll_exists(s, collection, err);
    if (ret == FL_OK) {
        bind_text(q, 1, collection);
        bind_text(q, 2, after);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)limit + 1);
        for (;;) {
            rc = sqlite3_step(q);
            if (rc != SQLITE_ROW)
                break;
            sqlite3_int64 status = sqlite3_column_int64(q, 1);
            ret = grow(a, (void **)&v, n, &cap, sizeof(*v), err);
            if (ret == FL_OK)
                ret = col_fixed(q, 0, v[n].user_id, sizeof(v[n].user_id), err);
            if (ret == FL_OK && (status < FL_STORE_USER_ACTIVE || status > FL_STORE_USER_CREATED))
                ret = fl_err_set(err, FL_ERR_CORRUPT, "store: user with status %lld",
                                 (long long)status);
            if (ret != FL_OK)
                break;
            v[n].status = (enum fl_store_user_status)status;
            v[n].created = sqlite3_column_double(q, 2);
            v[n].face_count = (uint32_t)sqlite3_column_int64(q, 3);
            n++;
        }
        if (ret == FL_OK && rc != SQLITE_DONE)
            ret = sq_fail(s->db, rc, "list users", err);
        done(q);
    }
    ret = tx_end(s, ret, err);
    if (ret != FL_OK)
        return ret;
    out->next = NULL;
    if (n > limit) {
        n = limit;
        out->next = v[n - 1].user_id;
    }
    out->v = v;
    out->n = n;
    return FL_OK;
}

static enum fl_status sq_user_delete(struct fl_store *st, const char *collection,
                                     const char *user_id, const char *token, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_user u;
    char digest[65];
    bool replay = false;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = user_op_head(s, "DeleteUser", collection, user_id, NULL, 0, token, digest, &replay, err);
    if (rc == FL_OK && !replay) {
        rc = user_read(s, collection, user_id, &u, err);
        if (rc == FL_OK) {
            sqlite3_stmt *q = stmt(s, S_USER_CLEAR_FACES);
            bind_text(q, 1, collection);
            bind_text(q, 2, user_id);
            rc = exec_stmt(s, q, "disassociate faces", err);
        }
        if (rc == FL_OK) {
            sqlite3_stmt *q = stmt(s, S_USER_DELETE);
            bind_text(q, 1, collection);
            bind_text(q, 2, user_id);
            rc = exec_stmt(s, q, "delete user", err);
        }
        if (rc == FL_OK)
            rc = coll_add(s, S_COLL_ADD_USERS, collection, -1, err);
        if (rc == FL_OK)
            rc = change_add(s, FL_STORE_CHANGE_USER_DELETE, collection, 0, user_id, err);
        if (rc == FL_OK && token)
            rc = token_record(s, token, collection, digest, err);
    }
    return tx_end(s, rc, err);
}

/* Count the faces of a user and store the status that follows from it. */
static enum fl_status user_settle(struct sq_store *s, const char *collection, const char *user_id,
                                  enum fl_store_user_status old, uint32_t max_faces,
                                  enum fl_store_user_status *out_status, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_USER_FACE_COUNT);
    enum fl_store_user_status status;
    enum fl_status ret = FL_OK;
    sqlite3_int64 count = 0;
    int rc;
    bind_text(q, 1, collection);
    bind_text(q, 2, user_id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        count = sqlite3_column_int64(q, 0);
    else
        ret = sq_fail(s->db, rc, "count user faces", err);
    done(q);
    if (ret != FL_OK)
        return ret;
    if (max_faces && count > (sqlite3_int64)max_faces)
        return fl_err_set(err, FL_ERR_QUOTA,
                          "store: user %s would have %lld faces; the limit is %u", user_id,
                          (long long)count, max_faces);
    status = count > 0 ? FL_STORE_USER_ACTIVE : FL_STORE_USER_CREATED;
    if (status != old)
        ret = user_set_status(s, collection, user_id, status, err);
    if (ret == FL_OK)
        *out_status = status;
    return ret;
}

/* AssociateFaces (associate == true) and DisassociateFaces. */
static enum fl_status user_faces(struct sq_store *s, bool associate, const char *collection,
                                 const char *user_id, const char *const *face_ids, size_t n,
                                 uint32_t max_faces, const char *token,
                                 struct fl_store_outcome *out,
                                 enum fl_store_user_status *out_status, struct fl_err *err)
{
    struct fl_store_outcome *res = NULL;
    struct fl_store_user u;
    enum fl_store_user_status status = FL_STORE_USER_CREATED;
    char digest[65];
    bool replay = false;
    int64_t key;
    enum fl_status rc;

    res = fl_calloc(n ? n : 1, sizeof(*res));
    if (!res)
        return fl_err_set(err, FL_ERR_NOMEM, "store: out of memory");
    rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        goto out;
    rc = user_op_head(s, associate ? "AssociateFaces" : "DisassociateFaces", collection, user_id,
                      face_ids, n, token, digest, &replay, err);
    if (rc == FL_OK)
        rc = user_read(s, collection, user_id, &u, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        struct fl_store_outcome *o = &res[i];
        const char *set_to = NULL;
        bool change = false;
        rc = face_probe(s, collection, face_ids[i], &key, o->user_id, err);
        if (rc != FL_OK)
            break;
        if (key == 0) {
            o->code = FL_STORE_FACE_NOT_FOUND;
        } else if (associate) {
            if (!o->user_id[0]) {
                o->code = FL_STORE_DONE;
                set_to = user_id;
                change = true;
            } else if (strcmp(o->user_id, user_id) == 0) {
                o->code = FL_STORE_DONE;
            } else {
                o->code = FL_STORE_FACE_OTHER_USER;
            }
        } else {
            if (!o->user_id[0]) {
                o->code = FL_STORE_FACE_NOT_ASSOCIATED;
            } else if (strcmp(o->user_id, user_id) == 0) {
                o->code = FL_STORE_DONE;
                change = true;
            } else {
                o->code = FL_STORE_FACE_OTHER_USER;
            }
        }
        if (o->code != FL_STORE_FACE_OTHER_USER && o->code != FL_STORE_FACE_NOT_ASSOCIATED)
            o->user_id[0] = '\0';
        if (change) {
            sqlite3_stmt *q = stmt(s, S_FACE_SET_USER);
            sqlite3_bind_int64(q, 1, key);
            bind_text(q, 2, set_to);
            rc = exec_stmt(s, q, "set face user", err);
            if (rc == FL_OK)
                rc = change_add(s, FL_STORE_CHANGE_FACE_USER, collection, key, face_ids[i], err);
        }
    }
    if (rc == FL_OK)
        rc = user_settle(s, collection, user_id, u.status, associate ? max_faces : 0, &status, err);
    if (rc == FL_OK && token && !replay)
        rc = token_record(s, token, collection, digest, err);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK) {
        if (n)
            memcpy(out, res, n * sizeof(*res));
        *out_status = status;
    }
out:
    fl_free(res);
    return rc;
}

static enum fl_status sq_faces_associate(struct fl_store *st, const char *collection,
                                         const char *user_id, const char *const *face_ids, size_t n,
                                         uint32_t max_faces_per_user, const char *token,
                                         struct fl_store_outcome *out,
                                         enum fl_store_user_status *out_status, struct fl_err *err)
{
    return user_faces(sq(st), true, collection, user_id, face_ids, n, max_faces_per_user, token,
                      out, out_status, err);
}

static enum fl_status sq_faces_disassociate(struct fl_store *st, const char *collection,
                                            const char *user_id, const char *const *face_ids,
                                            size_t n, const char *token,
                                            struct fl_store_outcome *out,
                                            enum fl_store_user_status *out_status,
                                            struct fl_err *err)
{
    return user_faces(sq(st), false, collection, user_id, face_ids, n, 0, token, out, out_status,
                      err);
}

/* ================================== Tags ================================== */

static enum fl_status sq_tags_set(struct fl_store *st, const char *collection,
                                  const struct fl_store_tag *tags, size_t n, uint32_t max_tags,
                                  struct fl_err *err)
{
    struct sq_store *s = sq(st);
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        sqlite3_stmt *q = stmt(s, S_TAG_UPSERT);
        bind_text(q, 1, collection);
        bind_text(q, 2, tags[i].key);
        bind_text(q, 3, tags[i].value);
        rc = exec_stmt(s, q, "set tag", err);
    }
    if (rc == FL_OK && max_tags) {
        sqlite3_stmt *q = stmt(s, S_TAG_COUNT);
        int src;
        bind_text(q, 1, collection);
        src = sqlite3_step(q);
        if (src != SQLITE_ROW)
            rc = sq_fail(s->db, src, "count tags", err);
        else if (sqlite3_column_int64(q, 0) > (sqlite3_int64)max_tags)
            rc = fl_err_set(err, FL_ERR_QUOTA, "store: collection %s would have more than %u tags",
                            collection, max_tags);
        done(q);
    }
    if (rc == FL_OK)
        rc = change_add(s, FL_STORE_CHANGE_TAGS, collection, 0, NULL, err);
    return tx_end(s, rc, err);
}

static enum fl_status sq_tags_remove(struct fl_store *st, const char *collection,
                                     const char *const *keys, size_t n, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        sqlite3_stmt *q = stmt(s, S_TAG_DELETE);
        bind_text(q, 1, collection);
        bind_text(q, 2, keys[i]);
        rc = exec_stmt(s, q, "remove tag", err);
    }
    if (rc == FL_OK)
        rc = change_add(s, FL_STORE_CHANGE_TAGS, collection, 0, NULL, err);
    return tx_end(s, rc, err);
}

static enum fl_status sq_tags_list(struct fl_store *st, const char *collection, struct fl_arena *a,
                                   struct fl_store_tag_list *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_TAG_LIST);
    struct fl_store_tag *v = NULL;
    size_t n = 0, cap = 0;
    enum fl_status ret = tx_begin(s, false, err);
    int rc = SQLITE_DONE;
    if (ret != FL_OK)
        return ret;
    ret = coll_exists(s, collection, err);
    if (ret == FL_OK) {
        bind_text(q, 1, collection);
        for (;;) {
            rc = sqlite3_step(q);
            if (rc != SQLITE_ROW)
                break;
            ret = grow(a, (void **)&v, n, &cap, sizeof(*v), err);
            if (ret == FL_OK)
                ret = col_str(q, 0, a, &v[n].key, err);
            if (ret == FL_OK)
                ret = col_str(q, 1, a, &v[n].value, err);
            if (ret == FL_OK && (!v[n].key || !v[n].value))
                ret = fl_err_set(err, FL_ERR_CORRUPT, "store: NULL tag");
            if (ret != FL_OK)
                break;
            n++;
        }
        if (ret == FL_OK && rc != SQLITE_DONE)
            ret = sq_fail(s->db, rc, "list tags", err);
        done(q);
    }
    ret = tx_end(s, ret, err);
    if (ret != FL_OK)
        return ret;
    out->v = v;
    out->n = n;
    return FL_OK;
}

/* ================================== Jobs ================================== */

static enum fl_status sq_job_create(struct fl_store *st, const struct fl_store_job *job,
                                    struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_JOB_INSERT);
    enum fl_status rc;
    bind_text(q, 1, job->id);
    bind_text(q, 2, job->type);
    bind_text(q, 3, job->collection);
    sqlite3_bind_int(q, 4, (int)job->state);
    sqlite3_bind_double(q, 5, job->progress);
    bind_text(q, 6, job->params);
    bind_text(q, 7, job->message);
    sqlite3_bind_double(q, 8, fl_time_now());
    rc = exec_stmt(s, q, "create job", err);
    if (rc == FL_ERR_EXISTS)
        fl_err_set(err, FL_ERR_EXISTS, "store: job %s already exists", job->id);
    return rc;
}

static enum fl_status sq_job_update(struct fl_store *st, const char *id,
                                    enum fl_store_job_state state, double progress,
                                    const char *message, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_JOB_UPDATE);
    enum fl_status rc;
    bind_text(q, 1, id);
    sqlite3_bind_int(q, 2, (int)state);
    sqlite3_bind_double(q, 3, progress);
    bind_text(q, 4, message);
    sqlite3_bind_double(q, 5, fl_time_now());
    rc = exec_stmt(s, q, "update job", err);
    if (rc == FL_OK && sqlite3_changes(s->db) == 0)
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "store: job %s not found", id);
    return rc;
}

static enum fl_status sq_job_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                 struct fl_store_job *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_JOB_GET);
    struct fl_store_job j;
    enum fl_status ret = FL_OK;
    int rc;
    memset(&j, 0, sizeof(j));
    bind_text(q, 1, id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 state = sqlite3_column_int64(q, 3);
        ret = col_str(q, 0, a, &j.id, err);
        if (ret == FL_OK)
            ret = col_str(q, 1, a, &j.type, err);
        if (ret == FL_OK)
            ret = col_str(q, 2, a, &j.collection, err);
        if (ret == FL_OK)
            ret = col_str(q, 5, a, &j.params, err);
        if (ret == FL_OK)
            ret = col_str(q, 6, a, &j.message, err);
        if (ret == FL_OK && (!j.id || !j.type || state < 0 || state > FL_STORE_JOB_FAILED))
            ret = fl_err_set(err, FL_ERR_CORRUPT, "store: malformed job row");
        j.state = (enum fl_store_job_state)state;
        j.progress = sqlite3_column_double(q, 4);
        j.created = sqlite3_column_double(q, 7);
        j.updated = sqlite3_column_double(q, 8);
    } else if (rc == SQLITE_DONE) {
        ret = fl_err_set(err, FL_ERR_NOT_FOUND, "store: job %s not found", id);
    } else {
        ret = sq_fail(s->db, rc, "read job", err);
    }
    done(q);
    if (ret == FL_OK)
        *out = j;
    return ret;
}

/* ============================ Change sequence ============================ */

static enum fl_status sq_change_seq(struct fl_store *st, uint64_t *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_CHANGE_SEQ);
    enum fl_status ret = FL_OK;
    uint64_t v = 0;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        v = (uint64_t)sqlite3_column_int64(q, 0);
    else if (rc != SQLITE_DONE)
        ret = sq_fail(s->db, rc, "read change sequence", err);
    done(q);
    if (ret == FL_OK)
        *out = v;
    return ret;
}

static enum fl_status sq_changes_since(struct fl_store *st, uint64_t after, size_t limit,
                                       struct fl_arena *a, struct fl_store_change_list *out,
                                       struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_CHANGES_SINCE);
    struct fl_store_change *v = NULL;
    size_t n = 0, cap = 0;
    enum fl_status ret = FL_OK;
    int rc;
    if (after > (uint64_t)INT64_MAX)
        after = (uint64_t)INT64_MAX;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
    for (;;) {
        rc = sqlite3_step(q);
        if (rc != SQLITE_ROW)
            break;
        ret = grow(a, (void **)&v, n, &cap, sizeof(*v), err);
        if (ret == FL_OK)
            ret = col_str(q, 2, a, &v[n].collection, err);
        if (ret == FL_OK)
            ret = col_str(q, 4, a, &v[n].id, err);
        if (ret != FL_OK)
            break;
        v[n].seq = (uint64_t)sqlite3_column_int64(q, 0);
        v[n].op = (enum fl_store_change_op)sqlite3_column_int(q, 1);
        v[n].face_key = sqlite3_column_int64(q, 3);
        n++;
    }
    if (ret == FL_OK && rc != SQLITE_DONE)
        ret = sq_fail(s->db, rc, "read changes", err);
    done(q);
    if (ret != FL_OK)
        return ret;
    out->v = v;
    out->n = n;
    return FL_OK;
}

static enum fl_status sq_changes_prune(struct fl_store *st, uint64_t upto, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_CHANGES_PRUNE);
    if (upto > (uint64_t)INT64_MAX)
        upto = (uint64_t)INT64_MAX;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)upto);
    return exec_stmt(s, q, "prune changes", err);
}

/* ============================== Maintenance ============================== */

static enum fl_status sq_check(struct fl_store *st, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_INTEGRITY);
    enum fl_status ret = FL_OK;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(q, 0);
        if (!t)
            ret = sq_fail(s->db, SQLITE_NOMEM, "integrity check", err);
        else if (strcmp((const char *)t, "ok") != 0)
            ret = fl_err_set(err, FL_ERR_CORRUPT, "store: integrity check: %s", (const char *)t);
    } else {
        ret = sq_fail(s->db, rc, "integrity check", err);
    }
    done(q);
    if (ret != FL_OK)
        return ret;
    q = stmt(s, S_FK_CHECK);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(q, 0);
        ret = fl_err_set(err, FL_ERR_CORRUPT, "store: a row of %s breaks a foreign key",
                         t ? (const char *)t : "?");
    } else if (rc != SQLITE_DONE) {
        ret = sq_fail(s->db, rc, "foreign key check", err);
    }
    done(q);
    return ret;
}

/* ============================== Reindexing ============================== */

static enum fl_status sq_reindex_scan_crops(struct fl_store *st, const char *collection,
                                            bool only_unstaged, fl_store_crop_fn fn, void *ud,
                                            struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, only_unstaged ? S_CROP_SCAN_UNSTAGED : S_CROP_SCAN);
    char face_id[FL_UUID_STR_LEN + 1];
    enum fl_status ret = tx_begin(s, false, err);
    int rc = SQLITE_DONE;

    if (ret != FL_OK)
        return ret;
    ret = coll_exists(s, collection, err);
    if (ret == FL_OK) {
        bind_text(q, 1, collection);
        for (;;) {
            rc = sqlite3_step(q);
            if (rc != SQLITE_ROW)
                break;
            const void *b;
            int nb;
            ret = col_fixed(q, 1, face_id, sizeof(face_id), err);
            if (ret != FL_OK)
                break;
            b = sqlite3_column_blob(q, 2);
            nb = sqlite3_column_bytes(q, 2);
            if (!b && nb > 0) {
                ret = fl_err_set(err, FL_ERR_NOMEM, "store: out of memory reading a crop");
                break;
            }
            ret = fn(ud, sqlite3_column_int64(q, 0), face_id, b, (size_t)nb);
            if (ret != FL_OK)
                break;
        }
        if (ret == FL_OK && rc != SQLITE_DONE)
            ret = sq_fail(s->db, rc, "scan crops", err);
        done(q);
    }
    if (ret == FL_OK)
        return tx_end(s, FL_OK, err);
    tx_rollback(s);
    return ret;
}

static enum fl_status sq_reindex_stage(struct fl_store *st, const char *collection,
                                       const struct fl_store_embedding *items, size_t n,
                                       size_t *out_staged, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    size_t staged = 0;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        sqlite3_stmt *q = stmt(s, S_STAGE_PUT);
        void *tmp = NULL;
        int src;
        sqlite3_bind_int64(q, 1, items[i].key);
        bind_text(q, 2, collection);
        sqlite3_bind_int64(q, 3, items[i].dim);
        src = bind_floats(q, 4, items[i].embedding, items[i].dim, &tmp);
        if (src != SQLITE_OK) {
            done(q);
            rc = sq_fail(s->db, src, "bind embedding", err);
        } else {
            rc = exec_stmt(s, q, "stage embedding", err);
            if (rc == FL_OK)
                staged += (size_t)sqlite3_changes(s->db);
        }
        fl_free(tmp);
    }
    rc = tx_end(s, rc, err);
    if (rc == FL_OK && out_staged)
        *out_staged = staged;
    return rc;
}

static enum fl_status sq_reindex_commit(struct fl_store *st, const struct fl_store_collection *m,
                                        struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, m->id, err);
    if (rc == FL_OK) {
        int src;
        q = stmt(s, S_STAGE_MISSING);
        bind_text(q, 1, m->id);
        sqlite3_bind_int64(q, 2, m->dim);
        src = sqlite3_step(q);
        if (src != SQLITE_ROW)
            rc = sq_fail(s->db, src, "count unstaged faces", err);
        else if (sqlite3_column_int64(q, 0) > 0)
            rc = fl_err_set(err, FL_ERR_CONFLICT,
                            "store: %lld faces of collection %s have no new embedding of "
                            "dimension %u",
                            (long long)sqlite3_column_int64(q, 0), m->id, m->dim);
        done(q);
    }
    if (rc == FL_OK) {
        q = stmt(s, S_STAGE_APPLY);
        bind_text(q, 1, m->id);
        sqlite3_bind_int64(q, 2, m->dim);
        bind_text(q, 3, m->face_model_version);
        rc = exec_stmt(s, q, "swap embeddings", err);
    }
    if (rc == FL_OK) {
        q = stmt(s, S_COLL_SET_MODEL);
        bind_text(q, 1, m->id);
        bind_text(q, 2, m->model_id);
        bind_text(q, 3, m->face_model_version);
        sqlite3_bind_int64(q, 4, m->dim);
        rc = exec_stmt(s, q, "switch model", err);
    }
    if (rc == FL_OK) {
        q = stmt(s, S_STAGE_CLEAR);
        bind_text(q, 1, m->id);
        rc = exec_stmt(s, q, "clear staging", err);
    }
    if (rc == FL_OK)
        rc = change_add(s, FL_STORE_CHANGE_COLLECTION_REINDEX, m->id, 0, NULL, err);
    return tx_end(s, rc, err);
}

static enum fl_status sq_reindex_abort(struct fl_store *st, const char *collection,
                                       struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_STAGE_CLEAR);
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = coll_exists(s, collection, err);
    if (rc == FL_OK) {
        bind_text(q, 1, collection);
        rc = exec_stmt(s, q, "clear staging", err);
    }
    return tx_end(s, rc, err);
}

/* ============================ Staged imports ============================ */

static enum fl_status sq_faces_key_max(struct fl_store *st, const char *collection, int64_t *out,
                                       struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_KEY_MAX);
    enum fl_status ret = tx_begin(s, false, err);
    int64_t v = 0;
    int rc;
    if (ret != FL_OK)
        return ret;
    ret = coll_exists(s, collection, err);
    if (ret == FL_OK) {
        bind_text(q, 1, collection);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0); /* NULL reads as 0 */
        else
            ret = sq_fail(s->db, rc, "read largest face key", err);
        done(q);
    }
    ret = tx_end(s, ret, err);
    if (ret == FL_OK)
        *out = v;
    return ret;
}

/* Read the row of S_IMP_GET (already bound and stepped to a row) into *o. */
static enum fl_status import_read(sqlite3_stmt *q, struct fl_arena *a, struct fl_store_import *o,
                                  struct fl_err *err)
{
    enum fl_status rc;
    sqlite3_int64 dim = sqlite3_column_int64(q, 4);
    memset(o, 0, sizeof(*o));
    rc = col_str(q, 0, a, &o->id, err);
    if (rc == FL_OK)
        rc = col_str(q, 1, a, &o->collection, err);
    if (rc == FL_OK)
        rc = col_str(q, 2, a, &o->model_id, err);
    if (rc == FL_OK)
        rc = col_str(q, 3, a, &o->face_model_version, err);
    if (rc != FL_OK)
        return rc;
    if (!o->id || !o->collection || !o->model_id || !o->face_model_version || dim <= 0 ||
        dim > FL_STORE_DIM_MAX)
        return fl_err_set(err, FL_ERR_CORRUPT, "store: malformed import row");
    o->dim = (uint32_t)dim;
    o->collection_created = sqlite3_column_double(q, 5);
    o->committed = sqlite3_column_int64(q, 6) != 0;
    o->faces_imported = (uint64_t)sqlite3_column_int64(q, 7);
    o->faces_present = (uint64_t)sqlite3_column_int64(q, 8);
    o->users_created = (uint64_t)sqlite3_column_int64(q, 9);
    o->created_collection = sqlite3_column_int64(q, 10) != 0;
    o->created = sqlite3_column_double(q, 11);
    o->updated = sqlite3_column_double(q, 12);
    o->faces_staged = (uint64_t)sqlite3_column_int64(q, 13);
    o->users_staged = (uint64_t)sqlite3_column_int64(q, 14);
    o->expected_faces = sqlite3_column_int64(q, 15);
    return FL_OK;
}

/* The import record inside an open transaction; FL_ERR_NOT_FOUND. */
static enum fl_status import_load(struct sq_store *s, const char *id, struct fl_arena *a,
                                  struct fl_store_import *out, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_IMP_GET);
    enum fl_status ret;
    int rc;
    bind_text(q, 1, id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        ret = import_read(q, a, out, err);
    else if (rc == SQLITE_DONE)
        ret = fl_err_set(err, FL_ERR_NOT_FOUND, "store: import %s not found", id);
    else
        ret = sq_fail(s->db, rc, "read import", err);
    done(q);
    return ret;
}

static enum fl_status sq_import_open(struct fl_store *st, const struct fl_store_import *imp,
                                     struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_IMP_INSERT);
    double now = fl_time_now();
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    bind_text(q, 1, imp->id);
    bind_text(q, 2, imp->collection);
    bind_text(q, 3, imp->model_id);
    bind_text(q, 4, imp->face_model_version);
    sqlite3_bind_int64(q, 5, imp->dim);
    sqlite3_bind_double(q, 6, imp->collection_created > 0 ? imp->collection_created : now);
    sqlite3_bind_double(q, 7, now);
    sqlite3_bind_int64(q, 8, imp->expected_faces < 0 ? -1 : imp->expected_faces);
    rc = exec_stmt(s, q, "open import", err);
    if (rc == FL_ERR_EXISTS)
        fl_err_set(err, FL_ERR_EXISTS, "store: import %s exists", imp->id);
    return tx_end(s, rc, err);
}

static enum fl_status sq_import_get(struct fl_store *st, const char *id, struct fl_arena *a,
                                    struct fl_store_import *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_import o;
    enum fl_status rc = tx_begin(s, false, err);
    if (rc != FL_OK)
        return rc;
    rc = import_load(s, id, a, &o, err);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK)
        *out = o;
    return rc;
}

/* Bind a staged face's columns ?2..?15 (see S_IMP_FACE_PUT) and ?1 = id. */
static int bind_staged_face(sqlite3_stmt *q, const char *id, const struct fl_store_face *f,
                            void **tmp)
{
    bind_face_cols(q, id, f);
    if (f->crop)
        sqlite3_bind_blob(q, 14, f->crop, (int)f->crop_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 14);
    sqlite3_bind_double(q, 15, f->created > 0 ? f->created : 0);
    return bind_floats(q, 13, f->embedding, f->dim, tmp);
}

/* Stage one face inside the open write transaction. */
static enum fl_status stage_face(struct sq_store *s, const char *id, const struct fl_store_face *f,
                                 struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, S_IMP_FACE_PUT);
    void *tmp = NULL;
    enum fl_status rc;
    int src;
    if (f->crop_len > (size_t)INT32_MAX)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "store: crop of %zu bytes too large",
                          f->crop_len);
    src = bind_staged_face(q, id, f, &tmp);
    if (src != SQLITE_OK) {
        done(q);
        fl_free(tmp);
        return sq_fail(s->db, src, "bind embedding", err);
    }
    rc = exec_stmt(s, q, "stage face", err);
    if (rc == FL_OK && sqlite3_changes(s->db) == 0) {
        /* staged before: the same content is a repeated page, other content a conflict */
        q = stmt(s, S_IMP_FACE_SAME);
        fl_free(tmp);
        tmp = NULL;
        src = bind_staged_face(q, id, f, &tmp);
        if (src == SQLITE_OK)
            src = sqlite3_step(q);
        if (src != SQLITE_ROW)
            rc = sq_fail(s->db, src, "compare staged face", err);
        else if (sqlite3_column_int64(q, 0) == 0)
            rc = fl_err_set(err, FL_ERR_CONFLICT,
                            "store: face %s is staged in import %s with other content", f->face_id,
                            id);
        done(q);
    }
    fl_free(tmp);
    return rc;
}

static enum fl_status sq_import_stage(struct fl_store *st, const char *id,
                                      const struct fl_store_face *faces, size_t n,
                                      const char *const *user_ids, size_t n_users,
                                      struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_import imp;
    struct fl_arena a;
    enum fl_status rc;
    fl_arena_init(&a, 0);
    rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        goto out;
    rc = import_load(s, id, &a, &imp, err);
    if (rc == FL_OK && imp.committed)
        rc = fl_err_set(err, FL_ERR_CONFLICT, "store: import %s is committed already", id);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        if (faces[i].dim != imp.dim)
            rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                            "store: face %zu has dimension %u, import %s wants %u", i, faces[i].dim,
                            id, imp.dim);
        else
            rc = stage_face(s, id, &faces[i], err);
    }
    for (size_t i = 0; rc == FL_OK && i < n_users; i++) {
        sqlite3_stmt *q = stmt(s, S_IMP_USER_PUT);
        bind_text(q, 1, id);
        bind_text(q, 2, user_ids[i]);
        rc = exec_stmt(s, q, "stage user", err);
    }
    if (rc == FL_OK) {
        sqlite3_stmt *q = stmt(s, S_IMP_TOUCH);
        bind_text(q, 1, id);
        sqlite3_bind_double(q, 2, fl_time_now());
        rc = exec_stmt(s, q, "touch import", err);
    }
    rc = tx_end(s, rc, err);
out:
    fl_arena_fini(&a);
    return rc;
}

/* Run statement q (bound here: ?1 id, ?2 collection, ?3 x when x_kind is
 * 1 (int64) or 2 (double)) and return the changed rows in *out_n (may be NULL). */
static enum fl_status imp_exec(struct sq_store *s, enum sq_stmt which, const char *id,
                               const char *collection, int x_kind, int64_t xi, double xd,
                               const char *what, int64_t *out_n, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, which);
    enum fl_status rc;
    bind_text(q, 1, id);
    bind_text(q, 2, collection);
    if (x_kind == 1)
        sqlite3_bind_int64(q, 3, xi);
    else if (x_kind == 2)
        sqlite3_bind_double(q, 3, xd);
    rc = exec_stmt(s, q, what, err);
    if (rc == FL_OK && out_n)
        *out_n = sqlite3_changes(s->db);
    return rc;
}

/* Step a one-row, one-integer query bound with ?1 id, ?2 collection. */
static enum fl_status imp_count(struct sq_store *s, enum sq_stmt which, const char *id,
                                const char *collection, int64_t *out, struct fl_err *err)
{
    sqlite3_stmt *q = stmt(s, which);
    enum fl_status ret = FL_OK;
    int rc;
    if (id)
        bind_text(q, 1, id);
    if (collection)
        bind_text(q, 2, collection);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    else
        ret = sq_fail(s->db, rc, "count", err);
    done(q);
    return ret;
}

/* The commit's steps inside the open write transaction; *o (loaded, open)
 * receives the counts. */
static enum fl_status import_apply(struct sq_store *s, struct fl_store_import *o,
                                   struct fl_err *err)
{
    const char *id = o->id, *coll = o->collection;
    double now = fl_time_now();
    int64_t kmax = 0, n_new = 0, n_present = 0, n_users = 0;
    sqlite3_stmt *q = stmt(s, S_IMP_COLL);
    enum fl_status rc = FL_OK;
    bool create = false;
    int src;

    if (o->expected_faces >= 0 && o->faces_staged != (uint64_t)o->expected_faces)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "store: import %s has %llu faces staged, %lld expected", id,
                          (unsigned long long)o->faces_staged, (long long)o->expected_faces);
    bind_text(q, 1, coll);
    src = sqlite3_step(q);
    if (src == SQLITE_ROW) {
        const unsigned char *mid = sqlite3_column_text(q, 0);
        if (!mid || strcmp((const char *)mid, o->model_id) != 0 ||
            sqlite3_column_int64(q, 1) != (sqlite3_int64)o->dim)
            rc = fl_err_set(err, FL_ERR_CONFLICT,
                            "store: collection %s uses another model than import %s (%s)", coll, id,
                            o->model_id);
    } else if (src == SQLITE_DONE) {
        create = true;
    } else {
        rc = sq_fail(s->db, src, "read collection", err);
    }
    done(q);
    if (rc == FL_OK && create) {
        q = stmt(s, S_COLL_INSERT);
        bind_text(q, 1, coll);
        bind_text(q, 2, o->model_id);
        bind_text(q, 3, o->face_model_version);
        sqlite3_bind_int64(q, 4, o->dim);
        sqlite3_bind_double(q, 5, o->collection_created > 0 ? o->collection_created : now);
        rc = exec_stmt(s, q, "create collection", err);
        if (rc == FL_OK)
            rc = change_add(s, FL_STORE_CHANGE_COLLECTION_CREATE, coll, 0, NULL, err);
    }
    if (rc == FL_OK && !create) {
        q = stmt(s, S_IMP_CONFLICT);
        bind_text(q, 1, id);
        bind_text(q, 2, coll);
        src = sqlite3_step(q);
        if (src == SQLITE_ROW)
            rc = fl_err_set(err, FL_ERR_CONFLICT,
                            "store: FaceId %s is already in collection %s with other content",
                            (const char *)sqlite3_column_text(q, 0), coll);
        else if (src != SQLITE_DONE)
            rc = sq_fail(s->db, src, "compare faces", err);
        done(q);
        if (rc == FL_OK)
            rc = imp_count(s, S_IMP_PRESENT, id, coll, &n_present, err);
    }
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_USERS_LOG, id, coll, 0, 0, 0, "log users", NULL, err);
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_USERS_ADD, id, coll, 2, 0, now, "add users", &n_users, err);
    if (rc == FL_OK)
        rc = imp_count(s, S_KEY_MAX_ALL, NULL, NULL, &kmax, err);
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_FACES_ADD, id, coll, 2, 0, now, "add faces", &n_new, err);
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_CROPS_ADD, id, coll, 1, kmax, 0, "add crops", NULL, err);
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_FACES_LOG, id, coll, 1, kmax, 0, "log faces", NULL, err);
    if (rc == FL_OK) {
        q = stmt(s, S_IMP_USERS_ACTIVE);
        bind_text(q, 1, coll);
        rc = exec_stmt(s, q, "activate users", err);
    }
    if (rc == FL_OK && n_new)
        rc = coll_add(s, S_COLL_ADD_FACES, coll, n_new, err);
    if (rc == FL_OK && n_users)
        rc = coll_add(s, S_COLL_ADD_USERS, coll, n_users, err);
    if (rc == FL_OK) {
        q = stmt(s, S_IMP_DONE);
        bind_text(q, 1, id);
        sqlite3_bind_int64(q, 2, n_new);
        sqlite3_bind_int64(q, 3, n_present);
        sqlite3_bind_int64(q, 4, n_users);
        sqlite3_bind_int(q, 5, create ? 1 : 0);
        sqlite3_bind_double(q, 6, now);
        rc = exec_stmt(s, q, "mark import committed", err);
    }
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_CLEAR_FACES, id, NULL, 0, 0, 0, "clear staged faces", NULL, err);
    if (rc == FL_OK)
        rc = imp_exec(s, S_IMP_CLEAR_USERS, id, NULL, 0, 0, 0, "clear staged users", NULL, err);
    if (rc == FL_OK) {
        o->committed = true;
        o->faces_imported = (uint64_t)n_new;
        o->faces_present = (uint64_t)n_present;
        o->users_created = (uint64_t)n_users;
        o->created_collection = create;
        o->faces_staged = o->users_staged = 0;
        o->updated = now;
    }
    return rc;
}

static enum fl_status sq_import_commit(struct fl_store *st, const char *id, struct fl_arena *a,
                                       struct fl_store_import *out, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    struct fl_store_import o;
    struct fl_arena tmp;
    enum fl_status rc;
    fl_arena_init(&tmp, 0);
    rc = tx_begin(s, true, err);
    if (rc == FL_OK)
        rc = import_load(s, id, a ? a : &tmp, &o, err);
    if (rc == FL_OK && !o.committed)
        rc = import_apply(s, &o, err);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK && out)
        *out = o;
    fl_arena_fini(&tmp);
    return rc;
}

static enum fl_status sq_import_abort(struct fl_store *st, const char *id, struct fl_err *err)
{
    struct sq_store *s = sq(st);
    int64_t n = 0;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    rc = imp_exec(s, S_IMP_DELETE, id, NULL, 0, 0, 0, "drop import", &n, err);
    if (rc == FL_OK && n == 0)
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "store: import %s not found", id);
    return tx_end(s, rc, err);
}

static enum fl_status sq_import_expire(struct fl_store *st, double before, size_t *out_n,
                                       struct fl_err *err)
{
    struct sq_store *s = sq(st);
    sqlite3_stmt *q = stmt(s, S_IMP_EXPIRE);
    size_t n = 0;
    enum fl_status rc = tx_begin(s, true, err);
    if (rc != FL_OK)
        return rc;
    sqlite3_bind_double(q, 1, before);
    rc = exec_stmt(s, q, "expire imports", err);
    if (rc == FL_OK)
        n = (size_t)sqlite3_changes(s->db);
    rc = tx_end(s, rc, err);
    if (rc == FL_OK && out_n)
        *out_n = n;
    return rc;
}

/* ================================ The table ================================ */

static const struct fl_store_methods sq_methods = {
    .version = FL_STORE_METHODS_VERSION,
    .name = "sqlite",
    .x_close = sq_close,
    .x_collection_create = sq_collection_create,
    .x_collection_get = sq_collection_get,
    .x_collection_list = sq_collection_list,
    .x_collection_delete = sq_collection_delete,
    .x_faces_put = sq_faces_put,
    .x_faces_get = sq_faces_get,
    .x_faces_list = sq_faces_list,
    .x_faces_delete = sq_faces_delete,
    .x_faces_find_by_image = sq_faces_find_by_image,
    .x_faces_scan = sq_faces_scan,
    .x_user_create = sq_user_create,
    .x_user_get = sq_user_get,
    .x_users_list = sq_users_list,
    .x_user_delete = sq_user_delete,
    .x_faces_associate = sq_faces_associate,
    .x_faces_disassociate = sq_faces_disassociate,
    .x_tags_set = sq_tags_set,
    .x_tags_remove = sq_tags_remove,
    .x_tags_list = sq_tags_list,
    .x_job_create = sq_job_create,
    .x_job_update = sq_job_update,
    .x_job_get = sq_job_get,
    .x_change_seq = sq_change_seq,
    .x_changes_since = sq_changes_since,
    .x_changes_prune = sq_changes_prune,
    .x_check = sq_check,
    .x_reindex_scan_crops = sq_reindex_scan_crops,
    .x_reindex_stage = sq_reindex_stage,
    .x_reindex_commit = sq_reindex_commit,
    .x_reindex_abort = sq_reindex_abort,
    .x_faces_put_dedup = sq_faces_put_dedup,
    .x_faces_key_max = sq_faces_key_max,
    .x_import_open = sq_import_open,
    .x_import_get = sq_import_get,
    .x_import_stage = sq_import_stage,
    .x_import_commit = sq_import_commit,
    .x_import_abort = sq_import_abort,
    .x_import_expire = sq_import_expire,
};
