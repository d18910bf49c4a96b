/* test_store.c: the store interface over the SQLite backend: every operation
 * with its error paths, pagination stability, transaction atomicity, client
 * request tokens, the change sequence, schema migration checks, threads on
 * one file, and allocation torture (SQLite's own heap included).
 *
 * Expected values come from what the test itself put in (ids, embeddings
 * drawn from a seeded RNG, sorted with qsort as the reference order) and from
 * reading the database file back through a separate plain SQLite connection,
 * never from the store's own earlier answers. The crash test (SIGKILL while
 * indexing) is test_store_crash.c. */
#include "t.h"
#include "store/store_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

T_MAIN_STATE;

/* The files in src/store/sql/sqlite/: 0001_init.sql, 0002_reindex.sql, 0003_import.sql. */
#define N_MIGRATIONS 3

static char g_dir[256];
static int g_seq;

/* A fresh database path in the test's temp directory. */
static const char *db_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/t%d.db", g_dir, ++g_seq);
    return buf;
}

static struct fl_store *open_store(const char *path)
{
    struct fl_store *st = NULL;
    struct fl_err e;
    if (fl_store_open(path, NULL, &st, &e) != FL_OK) {
        printf("# open %s: %s\n", path, e.msg);
        return NULL;
    }
    return st;
}

/* One integer from a query on a separate plain SQLite connection (-1 on error). */
static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static const char *raw_text(const char *path, const char *sql, char *buf, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    const char *r = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(q, 0));
        r = buf;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return r;
}

static enum fl_status make_collection(struct fl_store *st, const char *id, uint32_t dim)
{
    struct fl_store_collection c = {
        .id = id, .model_id = "test-model@1", .face_model_version = "101.0", .dim = dim};
    return fl_store_collection_create(st, &c, NULL);
}

/* A face with a random id and an embedding drawn from rng (caller's storage
 * for the embedding: emb[dim]). */
static void make_face(struct fl_store_face *f, struct fl_rng *rng, float *emb, uint32_t dim)
{
    memset(f, 0, sizeof(*f));
    FL_ASSERT(fl_uuid_v4(f->face_id, NULL) == FL_OK);
    FL_ASSERT(fl_uuid_v4(f->image_id, NULL) == FL_OK);
    for (uint32_t i = 0; i < dim; i++)
        emb[i] = (float)(fl_rng_double(rng) * 2.0 - 1.0);
    f->embedding = emb;
    f->dim = dim;
    f->bbox = (struct fl_store_bbox){0.25f, 0.125f, 0.5f, 0.625f};
    f->confidence = 99.5f;
    f->model_version = "101.0";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Number of faces in a collection, read through the store's listing. */
static long count_faces(struct fl_store *st, const char *coll)
{
    struct fl_arena a;
    struct fl_store_face_list l;
    struct fl_store_face_query q = {.collection = coll, .limit = FL_STORE_PAGE_MAX};
    long n = -1;
    fl_arena_init(&a, 0);
    if (fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK)
        n = (long)l.n;
    fl_arena_fini(&a);
    return n;
}

/* ============================== Open / schema ============================== */

static void test_open_creates_wal_schema(void)
{
    char path[300], buf[64];
    struct fl_store *st;

    st = open_store(db_path(path, sizeof(path)));
    T_REQUIRE(st != NULL);
    T_CHECK_EQ_STR(fl_store_backend(st), "sqlite");
    fl_store_close(st);
    T_CHECK_EQ_STR(raw_text(path, "PRAGMA journal_mode", buf, sizeof(buf)), "wal");
    T_CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), N_MIGRATIONS);
    T_CHECK_EQ_INT(raw_int(path, "PRAGMA application_id"), 0x464c4b31);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                                 "name IN ('collections','faces','face_crops','users','tags',"
                                 "'request_tokens','jobs','changes','reindex_staging')"),
                   9);
    /* reopening an up-to-date file migrates nothing and works */
    st = open_store(path);
    T_CHECK(st != NULL);
    fl_store_close(st);
    T_CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), N_MIGRATIONS);
}

/* The text embedded by tools/sql2c.py must equal the .sql files, and
 * migrations must be numbered 1..N. */
static void test_embedded_sql_matches_file(void)
{
    size_t n = 0;
    const struct fl__store_migration *m = fl__store_sqlite_migrations(&n);
    char file[512];
    T_REQUIRE(n >= 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t *sql = NULL;
        size_t len = 0;
        T_CHECK_EQ_INT(m[i].version, (int)i + 1);
        snprintf(file, sizeof(file), "src/store/sql/sqlite/%s", m[i].name);
        if (fl_file_read(file, 1 << 20, &sql, &len, NULL) != FL_OK)
            T_SKIP("src/store/sql/sqlite not readable from the working directory");
        T_CHECK_EQ_INT(strlen(m[i].sql), len);
        T_CHECK(len == strlen(m[i].sql) && memcmp(m[i].sql, sql, len) == 0);
        fl_free(sql);
    }
}

static void test_open_rejects_newer_and_foreign(void)
{
    char path[300];
    struct fl_store *st = NULL;
    struct fl_err e;
    sqlite3 *db = NULL;
    FILE *f;

    /* a schema newer than this build */
    st = open_store(db_path(path, sizeof(path)));
    T_REQUIRE(st != NULL);
    fl_store_close(st);
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    st = NULL;
    T_CHECK_EQ_INT(fl_store_open(path, NULL, &st, &e), FL_ERR_STORE);
    T_CHECK(st == NULL);
    T_CHECK(strstr(e.msg, "newer") != NULL);

    /* another application's SQLite file */
    db_path(path, sizeof(path));
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    T_CHECK_EQ_INT(fl_store_open(path, NULL, &st, &e), FL_ERR_CORRUPT);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM sqlite_schema"), 1);

    /* not a database at all */
    db_path(path, sizeof(path));
    f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    for (int i = 0; i < 200; i++)
        fputs("this is not an sqlite file ", f);
    fclose(f);
    T_CHECK_EQ_INT(fl_store_open(path, NULL, &st, &e), FL_ERR_CORRUPT);

    /* a directory that does not exist */
    T_CHECK_EQ_INT(fl_store_open("/nonexistent-dir-facelink/x.db", NULL, &st, &e), FL_ERR_IO);
    /* PostgreSQL is not built */
    T_CHECK_EQ_INT(fl_store_open("postgres://localhost/x", NULL, &st, &e), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_store_open("", NULL, &st, &e), FL_ERR_INVALID_ARG);
    /* an in-memory store for tests: works, private to its connection */
    T_REQUIRE(fl_store_open(":memory:", NULL, &st, &e) == FL_OK);
    T_CHECK_EQ_INT(make_collection(st, "m", 4), FL_OK);
    T_CHECK_EQ_INT(make_collection(st, "m", 4), FL_ERR_EXISTS);
    fl_store_close(st);
    T_REQUIRE(fl_store_open(":memory:", NULL, &st, &e) == FL_OK);
    T_CHECK_EQ_INT(make_collection(st, "m", 4), FL_OK);
    fl_store_close(st);
    /* "sqlite:" prefix */
    snprintf(path, sizeof(path), "sqlite:%s/prefixed.db", g_dir);
    T_CHECK_EQ_INT(fl_store_open(path, NULL, &st, &e), FL_OK);
    fl_store_close(st);
}

/* ============================== Collections ============================== */

static void test_collections(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_arena a;
    struct fl_store_collection c;
    struct fl_err e;
    char long_id[FL_STORE_COLLECTION_ID_MAX + 2];
    double t0 = fl_time_now();

    T_REQUIRE(st != NULL);
    fl_arena_init(&a, 0);
    T_CHECK_EQ_INT(make_collection(st, "photos", 128), FL_OK);
    T_CHECK_EQ_INT(make_collection(st, "Photos", 128), FL_OK); /* case-sensitive */
    T_CHECK_EQ_INT(make_collection(st, "photos", 64), FL_ERR_EXISTS);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "photos", &a, &c, &e), FL_OK);
    T_CHECK_EQ_STR(c.id, "photos");
    T_CHECK_EQ_STR(c.model_id, "test-model@1");
    T_CHECK_EQ_STR(c.face_model_version, "101.0");
    T_CHECK_EQ_INT(c.dim, 128);
    T_CHECK_EQ_INT(c.face_count, 0);
    T_CHECK_EQ_INT(c.user_count, 0);
    T_CHECK(c.created >= t0 - 1 && c.created <= fl_time_now() + 1);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "nope", &a, &c, &e), FL_ERR_NOT_FOUND);

    /* argument checks */
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    T_CHECK_EQ_INT(make_collection(st, long_id, 128), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(make_collection(st, "", 128), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(make_collection(st, "zero-dim", 0), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(make_collection(st, "huge-dim", FL_STORE_DIM_MAX + 1), FL_ERR_INVALID_ARG);

    /* explicit creation time is kept */
    {
        struct fl_store_collection cc = {.id = "dated",
                                         .model_id = "m",
                                         .face_model_version = "1",
                                         .dim = 4,
                                         .created = 1234567890.125};
        T_CHECK_EQ_INT(fl_store_collection_create(st, &cc, NULL), FL_OK);
        T_CHECK_EQ_INT(fl_store_collection_get(st, "dated", &a, &c, NULL), FL_OK);
        T_CHECK(c.created == 1234567890.125);
    }

    T_CHECK_EQ_INT(fl_store_collection_delete(st, "Photos", &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "Photos", &a, &c, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_collection_delete(st, "Photos", &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "photos", &a, &c, &e), FL_OK);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_collection_pagination(void)
{
    char path[300], ids[40][16];
    const char *sorted[40];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_arena a;
    struct fl_store_collection_page p;
    const char *after = NULL;
    char after_buf[300];
    size_t seen = 0;
    struct fl_rng rng;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 7);
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof(ids[i]), "c%08x", (unsigned)(fl_rng_next(&rng) & 0xffffffffu));
        sorted[i] = ids[i];
        T_REQUIRE(make_collection(st, ids[i], 8) == FL_OK);
    }
    qsort(sorted, 40, sizeof(sorted[0]), cmp_str);
    fl_arena_init(&a, 0);
    for (int page = 0; page < 20; page++) {
        T_REQUIRE(fl_store_collection_list(st, after, 7, &a, &p, NULL) == FL_OK);
        T_CHECK(p.n <= 7);
        for (size_t i = 0; i < p.n; i++) {
            T_REQUIRE(seen < 40);
            T_CHECK_EQ_STR(p.v[i].id, sorted[seen]);
            T_CHECK_EQ_INT(p.v[i].dim, 8);
            seen++;
        }
        if (!p.next)
            break;
        T_CHECK_EQ_STR(p.next, p.v[p.n - 1].id);
        snprintf(after_buf, sizeof(after_buf), "%s", p.next);
        after = after_buf;
        fl_arena_reset(&a);
    }
    T_CHECK_EQ_INT(seen, 40);
    /* exactly one page: no next */
    T_CHECK_EQ_INT(fl_store_collection_list(st, NULL, 40, &a, &p, NULL), FL_OK);
    T_CHECK_EQ_INT(p.n, 40);
    T_CHECK(p.next == NULL);
    T_CHECK_EQ_INT(fl_store_collection_list(st, NULL, 0, &a, &p, NULL), FL_ERR_INVALID_ARG);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ================================= Faces ================================= */

static void test_faces_put_get_roundtrip(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[3], g;
    float emb[3][128];
    unsigned char crop[300];
    struct fl_arena a;
    struct fl_store_collection c;
    struct fl_rng rng;
    struct fl_err e;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 1);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", 128) == FL_OK);
    for (int i = 0; i < 3; i++)
        make_face(&f[i], &rng, emb[i], 128);
    /* special values survive bit-exactly */
    emb[0][0] = -0.0f;
    emb[0][1] = 1e-38f;
    emb[0][2] = 3.4e38f;
    for (size_t i = 0; i < sizeof(crop); i++)
        crop[i] = (unsigned char)(i * 7);
    f[1].crop = crop;
    f[1].crop_len = sizeof(crop);
    f[1].external_image_id = "camera:1";
    f[2].created = 1000.5;
    T_REQUIRE(fl_store_faces_put(st, "c", f, 3, &e) == FL_OK);
    T_CHECK(f[0].key > 0 && f[1].key > f[0].key && f[2].key > f[1].key);
    T_CHECK(f[0].created > 1e9);
    T_CHECK(f[2].created == 1000.5);

    for (int i = 0; i < 3; i++) {
        T_REQUIRE(fl_store_face_get(st, "c", f[i].face_id,
                                    FL_STORE_WANT_EMBEDDING | FL_STORE_WANT_CROP, &a, &g,
                                    &e) == FL_OK);
        T_CHECK_EQ_INT(g.key, f[i].key);
        T_CHECK_EQ_STR(g.face_id, f[i].face_id);
        T_CHECK_EQ_STR(g.image_id, f[i].image_id);
        T_CHECK_EQ_INT(g.dim, 128);
        T_REQUIRE(g.embedding != NULL);
        T_CHECK(memcmp(g.embedding, emb[i], sizeof(emb[i])) == 0);
        T_CHECK(g.bbox.left == 0.25f && g.bbox.top == 0.125f && g.bbox.width == 0.5f &&
                g.bbox.height == 0.625f);
        T_CHECK(g.confidence == 99.5f);
        T_CHECK_EQ_STR(g.model_version, "101.0");
        T_CHECK(g.user_id == NULL);
        T_CHECK(g.created == f[i].created);
    }
    /* crop and external id only where given */
    T_REQUIRE(fl_store_face_get(st, "c", f[1].face_id, FL_STORE_WANT_CROP, &a, &g, &e) == FL_OK);
    T_CHECK(g.embedding == NULL);
    T_REQUIRE(g.crop != NULL);
    T_CHECK_EQ_INT(g.crop_len, sizeof(crop));
    T_CHECK(memcmp(g.crop, crop, sizeof(crop)) == 0);
    T_CHECK_EQ_STR(g.external_image_id, "camera:1");
    T_REQUIRE(fl_store_face_get(st, "c", f[0].face_id, FL_STORE_WANT_CROP, &a, &g, &e) == FL_OK);
    T_CHECK(g.crop == NULL && g.crop_len == 0);
    T_CHECK(g.external_image_id == NULL);

    /* the blob on disk is little-endian float32, read independently */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        T_REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        T_REQUIRE(sqlite3_prepare_v2(db, "SELECT embedding FROM faces WHERE face_id = ?1", -1, &q,
                                     NULL) == SQLITE_OK);
        sqlite3_bind_text(q, 1, f[2].face_id, -1, SQLITE_STATIC);
        T_REQUIRE(sqlite3_step(q) == SQLITE_ROW);
        T_REQUIRE(sqlite3_column_bytes(q, 0) == 128 * 4);
        {
            const unsigned char *b = sqlite3_column_blob(q, 0);
            for (int i = 0; i < 128; i++) {
                uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                             (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
                float v;
                memcpy(&v, &u, 4);
                T_CHECK(v == emb[2][i]);
            }
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    /* faces_get: order asked, missing left out, repeats repeated */
    {
        const char *ids[4] = {f[2].face_id, "00000000-0000-4000-8000-000000000000", f[0].face_id,
                              f[2].face_id};
        struct fl_store_face_list l;
        T_REQUIRE(fl_store_faces_get(st, "c", ids, 4, 0, &a, &l, &e) == FL_OK);
        T_REQUIRE(l.n == 3);
        T_CHECK_EQ_STR(l.v[0].face_id, f[2].face_id);
        T_CHECK_EQ_STR(l.v[1].face_id, f[0].face_id);
        T_CHECK_EQ_STR(l.v[2].face_id, f[2].face_id);
        T_CHECK(l.v[0].embedding == NULL);
        T_CHECK_EQ_INT(fl_store_faces_get(st, "nope", ids, 4, 0, &a, &l, &e), FL_ERR_NOT_FOUND);
    }
    T_CHECK_EQ_INT(
        fl_store_face_get(st, "c", "00000000-0000-4000-8000-000000000000", 0, &a, &g, &e),
        FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, &e), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 3);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* A batch failing in its middle writes nothing, whatever the cause. */
static void test_faces_put_atomic(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[5];
    float emb[5][16], wrong[8];
    struct fl_rng rng;
    struct fl_err e;
    struct fl_arena a;
    struct fl_store_collection c;
    uint64_t seq0, seq1;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 2);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", 16) == FL_OK);
    T_REQUIRE(fl_store_change_seq(st, &seq0, NULL) == FL_OK);
    for (int i = 0; i < 5; i++)
        make_face(&f[i], &rng, emb[i], 16);

    /* face 3 has the wrong dimension: faces 0-2 were inserted before it */
    f[3].embedding = wrong;
    f[3].dim = 8;
    memset(wrong, 0, sizeof(wrong));
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", f, 5, &e), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(f[0].key, 0); /* outputs untouched */
    T_CHECK_EQ_INT(count_faces(st, "c"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 0);

    /* face 4 repeats face 1's id: unique violation in the middle */
    f[3].embedding = emb[3];
    f[3].dim = 16;
    memcpy(f[4].face_id, f[1].face_id, sizeof(f[4].face_id));
    f[2].crop = "crop";
    f[2].crop_len = 4;
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", f, 5, &e), FL_ERR_EXISTS);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 0);

    /* face 2 names a user that does not exist */
    FL_ASSERT(fl_uuid_v4(f[4].face_id, NULL) == FL_OK);
    f[2].user_id = "ghost";
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", f, 5, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);

    /* the collection does not exist */
    f[2].user_id = NULL;
    T_CHECK_EQ_INT(fl_store_faces_put(st, "nope", f, 5, &e), FL_ERR_NOT_FOUND);
    /* bad arguments are refused before any write */
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", f, 0, &e), FL_ERR_INVALID_ARG);

    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 0);
    T_REQUIRE(fl_store_change_seq(st, &seq1, NULL) == FL_OK);
    T_CHECK_EQ_INT(seq1, seq0);

    /* and the same batch, now valid, goes in whole */
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", f, 5, &e), FL_OK);
    T_CHECK_EQ_INT(count_faces(st, "c"), 5);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 1);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 5);
    /* putting an existing face again is EXISTS, not a duplicate */
    T_CHECK_EQ_INT(fl_store_faces_put(st, "c", &f[0], 1, &e), FL_ERR_EXISTS);
    T_CHECK_EQ_INT(count_faces(st, "c"), 5);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* Keyset pagination: rows inserted or deleted between pages never make a row
 * that existed throughout appear twice or go missing. */
static void test_faces_pagination_stable(void)
{
    enum { N0 = 60, DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f;
    float emb[DIM];
    char ids[N0][FL_UUID_STR_LEN + 1];
    bool deleted[N0], seen[N0];
    char after[FL_UUID_STR_LEN + 1] = "";
    char last[FL_UUID_STR_LEN + 1] = "";
    struct fl_rng rng;
    struct fl_arena a;
    int pages = 0;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 3);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < N0; i++) {
        make_face(&f, &rng, emb, DIM);
        T_REQUIRE(fl_store_faces_put(st, "c", &f, 1, NULL) == FL_OK);
        memcpy(ids[i], f.face_id, sizeof(ids[i]));
        deleted[i] = seen[i] = false;
    }
    for (;;) {
        struct fl_store_face_list l;
        struct fl_store_face_query q = {.collection = "c", .after = after, .limit = 7};
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        pages++;
        for (size_t i = 0; i < l.n; i++) {
            T_CHECK(strcmp(l.v[i].face_id, last) > 0); /* strictly increasing: no repeats */
            memcpy(last, l.v[i].face_id, sizeof(last));
            for (int k = 0; k < N0; k++)
                if (strcmp(ids[k], l.v[i].face_id) == 0)
                    seen[k] = true;
        }
        if (!l.next)
            break;
        memcpy(after, l.next, sizeof(after));
        fl_arena_reset(&a);
        /* between pages: add 3 faces, delete 2 of the original ones */
        for (int k = 0; k < 3; k++) {
            make_face(&f, &rng, emb, DIM);
            T_REQUIRE(fl_store_faces_put(st, "c", &f, 1, NULL) == FL_OK);
        }
        for (int k = 0; k < 2; k++) {
            int victim = (int)(fl_rng_next(&rng) % N0);
            struct fl_store_outcome o;
            const char *id = ids[victim];
            if (deleted[victim] || seen[victim])
                continue;
            T_REQUIRE(fl_store_faces_delete(st, "c", &id, 1, &o, NULL) == FL_OK);
            T_CHECK_EQ_INT(o.code, FL_STORE_DONE);
            deleted[victim] = true;
        }
    }
    T_CHECK(pages > 5);
    for (int k = 0; k < N0; k++)
        if (!deleted[k])
            T_CHECK(seen[k]);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_faces_list_filters(void)
{
    enum { N = 12, DIM = 8 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N];
    float emb[N][DIM];
    const char *sorted[N];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_face_list l;
    struct fl_store_outcome o[N];
    enum fl_store_user_status us;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 4);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < N; i++) {
        make_face(&f[i], &rng, emb[i], DIM);
        sorted[i] = f[i].face_id;
    }
    T_REQUIRE(fl_store_faces_put(st, "c", f, N, NULL) == FL_OK);
    qsort(sorted, N, sizeof(sorted[0]), cmp_str);

    /* all, in FaceId order, with embeddings when asked */
    {
        struct fl_store_face_query q = {
            .collection = "c", .limit = 100, .flags = FL_STORE_WANT_EMBEDDING};
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == N);
        T_CHECK(l.next == NULL);
        for (int i = 0; i < N; i++) {
            T_CHECK_EQ_STR(l.v[i].face_id, sorted[i]);
            T_CHECK(l.v[i].embedding != NULL);
        }
    }
    /* user filter: faces of user u1 are sorted[0], sorted[5], sorted[9] */
    {
        const char *mine[3] = {sorted[9], sorted[0], sorted[5]};
        T_REQUIRE(fl_store_user_create(st, "c", "u1", NULL, NULL) == FL_OK);
        T_REQUIRE(fl_store_faces_associate(st, "c", "u1", mine, 3, 0, NULL, o, &us, NULL) == FL_OK);
        struct fl_store_face_query q = {.collection = "c", .user_id = "u1", .limit = 2};
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == 2);
        T_CHECK_EQ_STR(l.v[0].face_id, sorted[0]);
        T_CHECK_EQ_STR(l.v[1].face_id, sorted[5]);
        T_CHECK_EQ_STR(l.v[0].user_id, "u1");
        T_REQUIRE(l.next != NULL);
        q.after = l.next;
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == 1);
        T_CHECK_EQ_STR(l.v[0].face_id, sorted[9]);
        T_CHECK(l.next == NULL);
        q.user_id = "nobody";
        q.after = NULL;
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_CHECK_EQ_INT(l.n, 0);
    }
    /* FaceIds filter: unsorted, repeated, unknown ids; paginated */
    {
        const char *want[6] = {sorted[7],  "ffffffff-ffff-4fff-bfff-ffffffffffff",
                               sorted[2],  sorted[7],
                               sorted[11], sorted[5]};
        struct fl_store_face_query q = {
            .collection = "c", .face_ids = want, .n_face_ids = 6, .limit = 3};
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == 3);
        T_CHECK_EQ_STR(l.v[0].face_id, sorted[2]);
        T_CHECK_EQ_STR(l.v[1].face_id, sorted[5]);
        T_CHECK_EQ_STR(l.v[2].face_id, sorted[7]);
        T_REQUIRE(l.next != NULL);
        q.after = l.next;
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == 1);
        T_CHECK_EQ_STR(l.v[0].face_id, sorted[11]);
        T_CHECK(l.next == NULL);
        /* combined with the user filter: only sorted[5] is u1's */
        q.after = NULL;
        q.user_id = "u1";
        T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, NULL) == FL_OK);
        T_REQUIRE(l.n == 1);
        T_CHECK_EQ_STR(l.v[0].face_id, sorted[5]);
    }
    {
        struct fl_store_face_query q = {.collection = "nope", .limit = 3};
        T_CHECK_EQ_INT(fl_store_faces_list(st, &q, &a, &l, NULL), FL_ERR_NOT_FOUND);
        q.collection = "c";
        q.limit = 0;
        T_CHECK_EQ_INT(fl_store_faces_list(st, &q, &a, &l, NULL), FL_ERR_INVALID_ARG);
    }
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_faces_delete(void)
{
    enum { DIM = 8 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[4];
    float emb[4][DIM];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_outcome o[5];
    enum fl_store_user_status us;
    struct fl_store_collection c;
    struct fl_err e;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 5);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < 4; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    f[0].crop = "abc";
    f[0].crop_len = 3;
    T_REQUIRE(fl_store_faces_put(st, "c", f, 4, NULL) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "c", "u", NULL, NULL) == FL_OK);
    {
        const char *one = f[1].face_id;
        T_REQUIRE(fl_store_faces_associate(st, "c", "u", &one, 1, 0, NULL, o, &us, NULL) == FL_OK);
    }
    {
        const char *ids[5] = {f[0].face_id, f[1].face_id, "00000000-0000-4000-8000-000000000000",
                              f[2].face_id, f[0].face_id};
        T_REQUIRE(fl_store_faces_delete(st, "c", ids, 5, o, &e) == FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[1].code, FL_STORE_FACE_HAS_USER);
        T_CHECK_EQ_STR(o[1].user_id, "u");
        T_CHECK_EQ_INT(o[2].code, FL_STORE_FACE_NOT_FOUND);
        T_CHECK_EQ_INT(o[3].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[4].code, FL_STORE_FACE_NOT_FOUND); /* already gone */
        T_CHECK_EQ_STR(o[0].user_id, "");
    }
    T_CHECK_EQ_INT(count_faces(st, "c"), 2);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 0); /* cascade */
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 2);
    {
        const char *id = f[3].face_id;
        T_CHECK_EQ_INT(fl_store_faces_delete(st, "nope", &id, 1, o, &e), FL_ERR_NOT_FOUND);
        T_CHECK_EQ_INT(count_faces(st, "c"), 2);
    }
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_find_by_image(void)
{
    enum { DIM = 4 };
    char path[300], img[FL_UUID_STR_LEN + 1];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[4];
    float emb[4][DIM];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_face_list l;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 6);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < 4; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    memcpy(img, f[0].image_id, sizeof(img));
    /* f0, f1: same image, ext "x"; f2: same image, no ext; f3: other image, ext "x" */
    memcpy(f[1].image_id, img, sizeof(img));
    memcpy(f[2].image_id, img, sizeof(img));
    f[0].external_image_id = "x";
    f[1].external_image_id = "x";
    f[3].external_image_id = "x";
    T_REQUIRE(fl_store_faces_put(st, "c", f, 4, NULL) == FL_OK);
    T_REQUIRE(fl_store_faces_find_by_image(st, "c", img, "x", &a, &l, NULL) == FL_OK);
    T_REQUIRE(l.n == 2);
    T_CHECK_EQ_STR(l.v[0].face_id, f[0].face_id); /* key order = insertion order */
    T_CHECK_EQ_STR(l.v[1].face_id, f[1].face_id);
    T_REQUIRE(fl_store_faces_find_by_image(st, "c", img, NULL, &a, &l, NULL) == FL_OK);
    T_REQUIRE(l.n == 1);
    T_CHECK_EQ_STR(l.v[0].face_id, f[2].face_id);
    T_REQUIRE(fl_store_faces_find_by_image(st, "c", img, "y", &a, &l, NULL) == FL_OK);
    T_CHECK_EQ_INT(l.n, 0);
    T_CHECK_EQ_INT(fl_store_faces_find_by_image(st, "nope", img, "x", &a, &l, NULL),
                   FL_ERR_NOT_FOUND);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_put_dedup(void)
{
    enum { DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[2], g[2], h;
    float emb[2][DIM], gemb[2][DIM], hemb[DIM];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_face_list ex;
    struct fl_err e;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 19);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < 2; i++) {
        make_face(&f[i], &rng, emb[i], DIM);
        make_face(&g[i], &rng, gemb[i], DIM);
        f[i].external_image_id = "x";
        g[i].external_image_id = "x";
    }
    memcpy(f[1].image_id, f[0].image_id, sizeof(f[0].image_id));
    memcpy(g[0].image_id, f[0].image_id, sizeof(f[0].image_id));
    memcpy(g[1].image_id, f[0].image_id, sizeof(f[0].image_id));
    T_REQUIRE(fl_store_faces_put_dedup(st, "c", f, 2, &a, &ex, &e) == FL_OK);
    T_CHECK_EQ_INT(ex.n, 0);
    T_CHECK(f[0].key > 0 && f[1].key > 0);
    /* the same image and ExternalImageId again: the stored faces come back */
    T_REQUIRE(fl_store_faces_put_dedup(st, "c", g, 2, &a, &ex, &e) == FL_OK);
    T_REQUIRE(ex.n == 2);
    T_CHECK_EQ_STR(ex.v[0].face_id, f[0].face_id);
    T_CHECK_EQ_STR(ex.v[1].face_id, f[1].face_id);
    T_CHECK_EQ_INT(g[0].key, 0);
    T_CHECK_EQ_INT(count_faces(st, "c"), 2);
    /* another ExternalImageId for the same image is another indexing */
    g[0].external_image_id = g[1].external_image_id = NULL;
    T_REQUIRE(fl_store_faces_put_dedup(st, "c", g, 2, &a, &ex, &e) == FL_OK);
    T_CHECK_EQ_INT(ex.n, 0);
    T_CHECK_EQ_INT(count_faces(st, "c"), 4);
    /* a batch from two images is refused */
    make_face(&h, &rng, hemb, DIM);
    {
        struct fl_store_face two[2] = {f[0], h};
        T_CHECK_EQ_INT(fl_store_faces_put_dedup(st, "c", two, 2, &a, &ex, &e), FL_ERR_INVALID_ARG);
    }
    T_CHECK_EQ_INT(fl_store_faces_put_dedup(st, "nope", &h, 1, &a, &ex, &e), FL_ERR_NOT_FOUND);
    fl_arena_fini(&a);
    fl_store_close(st);
}

struct dedup_arg {
    const char *path;
    pthread_barrier_t *bar;
    int seed;
    int inserted; /* calls that inserted */
    enum fl_status err;
};

static void *dedup_main(void *p)
{
    struct dedup_arg *d = p;
    struct fl_store *st = NULL;
    struct fl_rng rng;
    float emb[4];
    d->err = fl_store_open(d->path, NULL, &st, NULL);
    for (int i = 0; i < 20; i++) {
        struct fl_store_face f;
        struct fl_arena a;
        struct fl_store_face_list ex;
        enum fl_status rc;
        fl_rng_seed(&rng, (uint64_t)d->seed * 1000 + (uint64_t)i);
        make_face(&f, &rng, emb, 4);
        /* both threads use image i */
        snprintf(f.image_id, sizeof(f.image_id), "00000000-0000-5000-8000-%012d", i);
        f.external_image_id = "same";
        pthread_barrier_wait(d->bar);
        if (d->err != FL_OK)
            continue;
        fl_arena_init(&a, 0);
        rc = fl_store_faces_put_dedup(st, "c", &f, 1, &a, &ex, NULL);
        if (rc != FL_OK)
            d->err = rc;
        else if (ex.n == 0)
            d->inserted++;
        fl_arena_fini(&a);
    }
    fl_store_close(st);
    return NULL;
}

/* Two connections indexing the same image at the same moment: exactly one
 * of them stores faces, every time. */
static void test_put_dedup_concurrent(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    pthread_barrier_t bar;
    pthread_t th[2];
    struct dedup_arg d[2];

    T_REQUIRE(st != NULL);
    T_REQUIRE(make_collection(st, "c", 4) == FL_OK);
    T_REQUIRE(pthread_barrier_init(&bar, NULL, 2) == 0);
    for (int i = 0; i < 2; i++) {
        d[i] = (struct dedup_arg){.path = path, .bar = &bar, .seed = i + 1};
        T_REQUIRE(pthread_create(&th[i], NULL, dedup_main, &d[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        T_CHECK_EQ_INT(d[i].err, FL_OK);
    }
    pthread_barrier_destroy(&bar);
    T_CHECK_EQ_INT(d[0].inserted + d[1].inserted, 20);
    T_CHECK_EQ_INT(count_faces(st, "c"), 20);
    fl_store_close(st);
}

struct scan_ctx {
    int n;
    int stop_at; /* return FL_ERR_INTERNAL at this call (0 = never) */
    char ids[64][FL_UUID_STR_LEN + 1];
    float emb[64][32];
    int64_t keys[64];
};

static enum fl_status scan_cb(void *ud, int64_t key, const char *face_id, const float *e,
                              uint32_t dim)
{
    struct scan_ctx *c = ud;
    if (c->stop_at && c->n + 1 == c->stop_at)
        return FL_ERR_INTERNAL;
    if (c->n >= 64 || dim != 32 || ((uintptr_t)e % alignof(float)) != 0)
        return FL_ERR_CORRUPT;
    memcpy(c->ids[c->n], face_id, sizeof(c->ids[0]));
    memcpy(c->emb[c->n], e, sizeof(c->emb[0]));
    c->keys[c->n] = key;
    c->n++;
    return FL_OK;
}

struct scan_sum {
    long n;
    double sum;
};

/* Sums every embedding value into ud (struct scan_sum). */
static enum fl_status scan_sum_cb(void *ud, int64_t key, const char *face_id, const float *e,
                                  uint32_t dim)
{
    struct scan_sum *acc = ud;
    (void)key;
    (void)face_id;
    for (uint32_t i = 0; i < dim; i++)
        acc->sum += e[i];
    acc->n++;
    return FL_OK;
}

static void test_faces_scan(void)
{
    enum { N = 40, DIM = 32 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    static struct fl_store_face f[N];
    static float emb[N][DIM];
    static struct scan_ctx ctx;
    struct fl_rng rng;
    int found = 0;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 8);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    T_REQUIRE(make_collection(st, "other", DIM) == FL_OK);
    for (int i = 0; i < N; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    T_REQUIRE(fl_store_faces_put(st, "c", f, N - 5, NULL) == FL_OK);
    T_REQUIRE(fl_store_faces_put(st, "other", f + N - 5, 5, NULL) == FL_OK);
    memset(&ctx, 0, sizeof(ctx));
    T_REQUIRE(fl_store_faces_scan(st, "c", scan_cb, &ctx, NULL) == FL_OK);
    T_CHECK_EQ_INT(ctx.n, N - 5);
    for (int k = 0; k < ctx.n; k++) {
        if (k > 0)
            T_CHECK(strcmp(ctx.ids[k - 1], ctx.ids[k]) < 0);
        for (int i = 0; i < N - 5; i++) {
            if (strcmp(f[i].face_id, ctx.ids[k]) == 0) {
                found++;
                T_CHECK_EQ_INT(ctx.keys[k], f[i].key);
                T_CHECK(memcmp(ctx.emb[k], emb[i], sizeof(emb[i])) == 0);
            }
        }
    }
    T_CHECK_EQ_INT(found, N - 5);
    /* the callback's error stops the scan and comes back */
    memset(&ctx, 0, sizeof(ctx));
    ctx.stop_at = 4;
    T_CHECK_EQ_INT(fl_store_faces_scan(st, "c", scan_cb, &ctx, NULL), FL_ERR_INTERNAL);
    T_CHECK_EQ_INT(ctx.n, 3);
    T_CHECK_EQ_INT(fl_store_faces_scan(st, "nope", scan_cb, &ctx, NULL), FL_ERR_NOT_FOUND);
    /* the connection is usable afterwards (no transaction left open) */
    T_CHECK_EQ_INT(make_collection(st, "after-scan", DIM), FL_OK);
    fl_store_close(st);
}

/* ================================= Users ================================= */

static void test_users(void)
{
    enum { DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_user u;
    struct fl_store_collection c;
    struct fl_arena a;
    struct fl_err e;

    T_REQUIRE(st != NULL);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "alice", NULL, &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "alice", NULL, &e), FL_ERR_CONFLICT);
    T_CHECK_EQ_INT(fl_store_user_create(st, "nope", "alice", NULL, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_user_get(st, "c", "alice", &u, &e), FL_OK);
    T_CHECK_EQ_STR(u.user_id, "alice");
    T_CHECK_EQ_INT(u.status, FL_STORE_USER_CREATED);
    T_CHECK_EQ_STR(fl_store_user_status_name(u.status), "CREATED");
    T_CHECK_EQ_INT(u.face_count, 0);
    T_CHECK_EQ_INT(fl_store_user_get(st, "c", "bob", &u, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.user_count, 1);

    /* tokens: same token + same params = success without change */
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "bob", "tok-1", &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "bob", "tok-1", &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.user_count, 2);
    /* same token, other parameters */
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "carol", "tok-1", &e), FL_ERR_IDEMPOTENT_MISMATCH);
    T_CHECK(strstr(e.msg, "tok-1") != NULL);
    T_CHECK_EQ_INT(fl_store_user_get(st, "c", "carol", &u, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_user_delete(st, "c", "bob", "tok-1", &e), FL_ERR_IDEMPOTENT_MISMATCH);
    T_CHECK_EQ_INT(fl_store_user_get(st, "c", "bob", &u, &e), FL_OK);
    /* a new token for an existing user: conflict, and the token is not kept */
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "bob", "tok-2", &e), FL_ERR_CONFLICT);
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "dave", "tok-2", &e), FL_OK);

    /* delete with token, replay */
    T_CHECK_EQ_INT(fl_store_user_delete(st, "c", "bob", "tok-3", &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_user_get(st, "c", "bob", &u, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_user_delete(st, "c", "bob", "tok-3", &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_user_delete(st, "c", "bob", NULL, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_user_delete(st, "c", "bob", "tok-4", &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.user_count, 2); /* alice, dave */
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM request_tokens"), 3);

    /* argument checks */
    {
        char longu[FL_STORE_USER_ID_MAX + 2], longt[FL_STORE_TOKEN_MAX + 2];
        memset(longu, 'u', sizeof(longu) - 1);
        longu[sizeof(longu) - 1] = '\0';
        memset(longt, 't', sizeof(longt) - 1);
        longt[sizeof(longt) - 1] = '\0';
        T_CHECK_EQ_INT(fl_store_user_create(st, "c", longu, NULL, &e), FL_ERR_INVALID_ARG);
        T_CHECK_EQ_INT(fl_store_user_create(st, "c", "x", longt, &e), FL_ERR_INVALID_ARG);
        T_CHECK_EQ_INT(fl_store_user_create(st, "c", "", NULL, &e), FL_ERR_INVALID_ARG);
    }
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_users_pagination(void)
{
    char path[300], ids[30][16];
    const char *sorted[30];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_arena a;
    struct fl_store_user_page p;
    char after[FL_STORE_USER_ID_MAX + 1] = "";
    size_t seen = 0;
    struct fl_rng rng;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 9);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", 4) == FL_OK);
    T_REQUIRE(make_collection(st, "d", 4) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "d", "elsewhere", NULL, NULL) == FL_OK);
    for (int i = 0; i < 30; i++) {
        snprintf(ids[i], sizeof(ids[i]), "u:%06u", (unsigned)(fl_rng_next(&rng) % 1000000));
        sorted[i] = ids[i];
        T_REQUIRE(fl_store_user_create(st, "c", ids[i], NULL, NULL) == FL_OK);
    }
    qsort(sorted, 30, sizeof(sorted[0]), cmp_str);
    for (;;) {
        T_REQUIRE(fl_store_users_list(st, "c", after, 4, &a, &p, NULL) == FL_OK);
        for (size_t i = 0; i < p.n; i++) {
            T_REQUIRE(seen < 30);
            T_CHECK_EQ_STR(p.v[i].user_id, sorted[seen]);
            T_CHECK_EQ_INT(p.v[i].status, FL_STORE_USER_CREATED);
            seen++;
        }
        if (!p.next)
            break;
        snprintf(after, sizeof(after), "%s", p.next);
        fl_arena_reset(&a);
    }
    T_CHECK_EQ_INT(seen, 30);
    T_CHECK_EQ_INT(fl_store_users_list(st, "nope", NULL, 4, &a, &p, NULL), FL_ERR_NOT_FOUND);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_associate_disassociate(void)
{
    enum { DIM = 4, N = 6 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N];
    float emb[N][DIM];
    struct fl_rng rng;
    struct fl_store_outcome o[8];
    enum fl_store_user_status us = FL_STORE_USER_UPDATING;
    struct fl_store_user u;
    struct fl_arena a;
    struct fl_store_face g;
    struct fl_err e;
    const char *missing = "00000000-0000-4000-8000-000000000000";

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 10);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < N; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    T_REQUIRE(fl_store_faces_put(st, "c", f, N, NULL) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "c", "alice", NULL, NULL) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "c", "bob", NULL, NULL) == FL_OK);

    {
        const char *ids[3] = {f[0].face_id, f[1].face_id, missing};
        T_REQUIRE(fl_store_faces_associate(st, "c", "alice", ids, 3, 100, "a-1", o, &us, &e) ==
                  FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[1].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[2].code, FL_STORE_FACE_NOT_FOUND);
        T_CHECK_EQ_INT(us, FL_STORE_USER_ACTIVE);
        /* replay with the same token: same outcome, no change */
        T_REQUIRE(fl_store_faces_associate(st, "c", "alice", ids, 3, 100, "a-1", o, &us, &e) ==
                  FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[2].code, FL_STORE_FACE_NOT_FOUND);
        /* same token, other faces */
        T_CHECK_EQ_INT(fl_store_faces_associate(st, "c", "alice", ids, 2, 100, "a-1", o, &us, &e),
                       FL_ERR_IDEMPOTENT_MISMATCH);
    }
    T_REQUIRE(fl_store_user_get(st, "c", "alice", &u, NULL) == FL_OK);
    T_CHECK_EQ_INT(u.face_count, 2);
    T_CHECK_EQ_INT(u.status, FL_STORE_USER_ACTIVE);
    T_REQUIRE(fl_store_face_get(st, "c", f[0].face_id, 0, &a, &g, NULL) == FL_OK);
    T_CHECK_EQ_STR(g.user_id, "alice");

    /* bob cannot take alice's face; already-associated is fine for alice */
    {
        const char *ids[2] = {f[0].face_id, f[2].face_id};
        T_REQUIRE(fl_store_faces_associate(st, "c", "bob", ids, 2, 0, NULL, o, &us, &e) == FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_FACE_OTHER_USER);
        T_CHECK_EQ_STR(o[0].user_id, "alice");
        T_CHECK_EQ_INT(o[1].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(us, FL_STORE_USER_ACTIVE);
    }
    /* quota: alice has 2, adding 2 more with a limit of 3 fails whole */
    {
        const char *ids[2] = {f[3].face_id, f[4].face_id};
        T_CHECK_EQ_INT(fl_store_faces_associate(st, "c", "alice", ids, 2, 3, NULL, o, &us, &e),
                       FL_ERR_QUOTA);
        T_REQUIRE(fl_store_user_get(st, "c", "alice", &u, NULL) == FL_OK);
        T_CHECK_EQ_INT(u.face_count, 2);
        T_REQUIRE(fl_store_face_get(st, "c", f[3].face_id, 0, &a, &g, NULL) == FL_OK);
        T_CHECK(g.user_id == NULL);
    }
    T_CHECK_EQ_INT(fl_store_faces_associate(st, "c", "carol", &missing, 1, 0, NULL, o, &us, &e),
                   FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_faces_associate(st, "nope", "alice", &missing, 1, 0, NULL, o, &us, &e),
                   FL_ERR_NOT_FOUND);

    /* disassociate */
    {
        const char *ids[4] = {f[0].face_id, f[2].face_id, f[5].face_id, missing};
        T_REQUIRE(fl_store_faces_disassociate(st, "c", "alice", ids, 4, "d-1", o, &us, &e) ==
                  FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_DONE);
        T_CHECK_EQ_INT(o[1].code, FL_STORE_FACE_OTHER_USER);
        T_CHECK_EQ_STR(o[1].user_id, "bob");
        T_CHECK_EQ_INT(o[2].code, FL_STORE_FACE_NOT_ASSOCIATED);
        T_CHECK_EQ_INT(o[3].code, FL_STORE_FACE_NOT_FOUND);
        T_CHECK_EQ_INT(us, FL_STORE_USER_ACTIVE); /* f1 is still hers */
        T_CHECK_EQ_INT(fl_store_faces_disassociate(st, "c", "alice", ids, 3, "d-1", o, &us, &e),
                       FL_ERR_IDEMPOTENT_MISMATCH);
    }
    {
        const char *one = f[1].face_id;
        T_REQUIRE(fl_store_faces_disassociate(st, "c", "alice", &one, 1, NULL, o, &us, &e) ==
                  FL_OK);
        T_CHECK_EQ_INT(us, FL_STORE_USER_CREATED);
        T_REQUIRE(fl_store_user_get(st, "c", "alice", &u, NULL) == FL_OK);
        T_CHECK_EQ_INT(u.status, FL_STORE_USER_CREATED);
        T_CHECK_EQ_INT(u.face_count, 0);
    }
    /* deleting bob disassociates f2, which can then be deleted */
    T_REQUIRE(fl_store_user_delete(st, "c", "bob", NULL, &e) == FL_OK);
    T_REQUIRE(fl_store_face_get(st, "c", f[2].face_id, 0, &a, &g, NULL) == FL_OK);
    T_CHECK(g.user_id == NULL);
    {
        const char *one = f[2].face_id;
        T_REQUIRE(fl_store_faces_delete(st, "c", &one, 1, o, &e) == FL_OK);
        T_CHECK_EQ_INT(o[0].code, FL_STORE_DONE);
    }
    /* a face put with a user makes the user ACTIVE */
    {
        struct fl_store_face h;
        float he[DIM];
        make_face(&h, &rng, he, DIM);
        h.user_id = "alice";
        T_REQUIRE(fl_store_faces_put(st, "c", &h, 1, &e) == FL_OK);
        T_REQUIRE(fl_store_user_get(st, "c", "alice", &u, NULL) == FL_OK);
        T_CHECK_EQ_INT(u.status, FL_STORE_USER_ACTIVE);
        T_CHECK_EQ_INT(u.face_count, 1);
    }
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ============================ Tags, jobs, cascade ============================ */

static void test_tags(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_arena a;
    struct fl_store_tag_list l;
    struct fl_err e;
    struct fl_store_tag t1[3] = {{"team", "red"}, {"env", "prod"}, {"owner", ""}};
    struct fl_store_tag t2[2] = {{"team", "blue"}, {"zone", "eu"}};
    const char *rm[2] = {"env", "absent"};

    T_REQUIRE(st != NULL);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", 4) == FL_OK);
    T_CHECK_EQ_INT(fl_store_tags_set(st, "c", t1, 3, 200, &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_tags_set(st, "c", t2, 2, 200, &e), FL_OK);
    T_REQUIRE(fl_store_tags_list(st, "c", &a, &l, &e) == FL_OK);
    T_REQUIRE(l.n == 4);
    T_CHECK_EQ_STR(l.v[0].key, "env");
    T_CHECK_EQ_STR(l.v[1].key, "owner");
    T_CHECK_EQ_STR(l.v[1].value, "");
    T_CHECK_EQ_STR(l.v[2].key, "team");
    T_CHECK_EQ_STR(l.v[2].value, "blue");
    T_CHECK_EQ_STR(l.v[3].key, "zone");
    T_CHECK_EQ_INT(fl_store_tags_remove(st, "c", rm, 2, &e), FL_OK);
    T_REQUIRE(fl_store_tags_list(st, "c", &a, &l, &e) == FL_OK);
    T_CHECK_EQ_INT(l.n, 3);
    /* quota: 3 tags now, adding 2 new with max 4 fails and changes nothing */
    {
        struct fl_store_tag t3[2] = {{"a", "1"}, {"b", "2"}};
        T_CHECK_EQ_INT(fl_store_tags_set(st, "c", t3, 2, 4, &e), FL_ERR_QUOTA);
        T_REQUIRE(fl_store_tags_list(st, "c", &a, &l, &e) == FL_OK);
        T_CHECK_EQ_INT(l.n, 3);
    }
    T_CHECK_EQ_INT(fl_store_tags_set(st, "nope", t1, 1, 0, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_tags_list(st, "nope", &a, &l, &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_tags_remove(st, "nope", rm, 1, &e), FL_ERR_NOT_FOUND);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_jobs(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_arena a;
    struct fl_store_job j = {.id = "job-1",
                             .type = "reindex",
                             .collection = "c",
                             .state = FL_STORE_JOB_QUEUED,
                             .params = "{\"to\":\"102.0\"}"};
    struct fl_store_job g;
    struct fl_err e;

    T_REQUIRE(st != NULL);
    fl_arena_init(&a, 0);
    T_CHECK_EQ_INT(fl_store_job_create(st, &j, &e), FL_OK);
    T_CHECK_EQ_INT(fl_store_job_create(st, &j, &e), FL_ERR_EXISTS);
    T_REQUIRE(fl_store_job_get(st, "job-1", &a, &g, &e) == FL_OK);
    T_CHECK_EQ_STR(g.type, "reindex");
    T_CHECK_EQ_STR(g.collection, "c");
    T_CHECK_EQ_STR(g.params, "{\"to\":\"102.0\"}");
    T_CHECK(g.message == NULL);
    T_CHECK_EQ_INT(g.state, FL_STORE_JOB_QUEUED);
    T_CHECK(g.created > 1e9 && g.updated == g.created);
    T_CHECK_EQ_INT(fl_store_job_update(st, "job-1", FL_STORE_JOB_RUNNING, 0.5, "half", &e), FL_OK);
    T_REQUIRE(fl_store_job_get(st, "job-1", &a, &g, &e) == FL_OK);
    T_CHECK_EQ_INT(g.state, FL_STORE_JOB_RUNNING);
    T_CHECK(g.progress == 0.5);
    T_CHECK_EQ_STR(g.message, "half");
    T_CHECK(g.updated >= g.created);
    T_CHECK_EQ_INT(fl_store_job_update(st, "job-2", FL_STORE_JOB_FAILED, 0, NULL, &e),
                   FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_job_update(st, "job-1", FL_STORE_JOB_FAILED, 1.5, NULL, &e),
                   FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_store_job_get(st, "job-2", &a, &g, &e), FL_ERR_NOT_FOUND);
    fl_arena_fini(&a);
    fl_store_close(st);
}

static void test_collection_delete_cascades(void)
{
    enum { DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[3];
    float emb[3][DIM];
    struct fl_rng rng;
    struct fl_store_outcome o[3];
    enum fl_store_user_status us;
    struct fl_store_tag t = {"k", "v"};
    const char *ids[2];
    struct fl_arena a;
    struct fl_store_collection c;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 11);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    T_REQUIRE(make_collection(st, "keep", DIM) == FL_OK);
    for (int i = 0; i < 3; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    f[0].crop = "crop";
    f[0].crop_len = 4;
    T_REQUIRE(fl_store_faces_put(st, "c", f, 2, NULL) == FL_OK);
    T_REQUIRE(fl_store_faces_put(st, "keep", f + 2, 1, NULL) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "c", "u", "tok", NULL) == FL_OK);
    ids[0] = f[0].face_id;
    ids[1] = f[1].face_id;
    T_REQUIRE(fl_store_faces_associate(st, "c", "u", ids, 2, 0, NULL, o, &us, NULL) == FL_OK);
    T_REQUIRE(fl_store_tags_set(st, "c", &t, 1, 0, NULL) == FL_OK);
    T_REQUIRE(fl_store_collection_delete(st, "c", NULL) == FL_OK);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 1);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM users"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM tags"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM request_tokens"), 0);
    T_CHECK_EQ_INT(raw_int(path, "PRAGMA foreign_key_check"), -1); /* no violation rows */
    T_CHECK_EQ_INT(fl_store_collection_get(st, "keep", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 1);
    /* the same id can be created again, empty; the old token is gone */
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    T_CHECK_EQ_INT(count_faces(st, "c"), 0);
    T_CHECK_EQ_INT(fl_store_user_create(st, "c", "u", "tok", NULL), FL_OK);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ============================ Change sequence ============================ */

static void test_changes(void)
{
    enum { DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[2];
    float emb[2][DIM];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_change_list l;
    struct fl_store_outcome o[1];
    uint64_t s0, s1;
    const char *id;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 12);
    fl_arena_init(&a, 0);
    T_REQUIRE(fl_store_change_seq(st, &s0, NULL) == FL_OK);
    T_CHECK_EQ_INT(s0, 0);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (int i = 0; i < 2; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    T_REQUIRE(fl_store_faces_put(st, "c", f, 2, NULL) == FL_OK);
    id = f[0].face_id;
    T_REQUIRE(fl_store_faces_delete(st, "c", &id, 1, o, NULL) == FL_OK);
    T_REQUIRE(fl_store_user_create(st, "c", "u", NULL, NULL) == FL_OK);
    T_REQUIRE(fl_store_change_seq(st, &s1, NULL) == FL_OK);
    T_CHECK_EQ_INT(s1, 5);
    T_REQUIRE(fl_store_changes_since(st, 0, 100, &a, &l, NULL) == FL_OK);
    T_REQUIRE(l.n == 5);
    for (size_t i = 0; i < l.n; i++) {
        T_CHECK_EQ_INT(l.v[i].seq, i + 1);
        T_CHECK_EQ_STR(l.v[i].collection, "c");
    }
    T_CHECK_EQ_INT(l.v[0].op, FL_STORE_CHANGE_COLLECTION_CREATE);
    T_CHECK_EQ_INT(l.v[1].op, FL_STORE_CHANGE_FACE_PUT);
    T_CHECK_EQ_INT(l.v[1].face_key, f[0].key);
    T_CHECK_EQ_STR(l.v[1].id, f[0].face_id);
    T_CHECK_EQ_INT(l.v[2].op, FL_STORE_CHANGE_FACE_PUT);
    T_CHECK_EQ_INT(l.v[2].face_key, f[1].key);
    T_CHECK_EQ_INT(l.v[3].op, FL_STORE_CHANGE_FACE_DELETE);
    T_CHECK_EQ_INT(l.v[3].face_key, f[0].key);
    T_CHECK_EQ_INT(l.v[4].op, FL_STORE_CHANGE_USER_CREATE);
    T_CHECK_EQ_STR(l.v[4].id, "u");
    T_REQUIRE(fl_store_changes_since(st, 3, 1, &a, &l, NULL) == FL_OK);
    T_REQUIRE(l.n == 1);
    T_CHECK_EQ_INT(l.v[0].seq, 4);
    /* pruning everything keeps the sequence going */
    T_REQUIRE(fl_store_changes_prune(st, 5, NULL) == FL_OK);
    T_REQUIRE(fl_store_changes_since(st, 0, 100, &a, &l, NULL) == FL_OK);
    T_CHECK_EQ_INT(l.n, 0);
    T_REQUIRE(fl_store_change_seq(st, &s1, NULL) == FL_OK);
    T_CHECK_EQ_INT(s1, 5);
    T_REQUIRE(fl_store_collection_delete(st, "c", NULL) == FL_OK);
    T_REQUIRE(fl_store_changes_since(st, 0, 100, &a, &l, NULL) == FL_OK);
    T_REQUIRE(l.n == 1);
    T_CHECK_EQ_INT(l.v[0].seq, 6);
    T_CHECK_EQ_INT(l.v[0].op, FL_STORE_CHANGE_COLLECTION_DELETE);
    /* keys are never reused, even after the newest face is deleted */
    {
        struct fl_store_face h;
        float he[DIM];
        T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
        make_face(&h, &rng, he, DIM);
        T_REQUIRE(fl_store_faces_put(st, "c", &h, 1, NULL) == FL_OK);
        T_CHECK(h.key > f[1].key);
    }
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ============================== Maintenance ============================== */

static void test_check_and_read_only(void)
{
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store *ro = NULL;
    struct fl_store_opts opts = {.read_only = 1};
    struct fl_store_face f;
    float emb[4];
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_collection c;
    struct fl_err e;
    sqlite3 *db = NULL;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 15);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", 4) == FL_OK);
    make_face(&f, &rng, emb, 4);
    T_REQUIRE(fl_store_faces_put(st, "c", &f, 1, NULL) == FL_OK);
    T_CHECK_EQ_INT(fl_store_check(st, &e), FL_OK);

    /* a read-only store reads, and refuses writes without changing anything */
    T_REQUIRE(fl_store_open(path, &opts, &ro, &e) == FL_OK);
    T_CHECK_EQ_INT(fl_store_collection_get(ro, "c", &a, &c, &e), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 1);
    T_CHECK(make_collection(ro, "d", 4) != FL_OK);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "d", &a, &c, &e), FL_ERR_NOT_FOUND);
    fl_store_close(ro);

    /* a row written behind the store's back that breaks a foreign key */
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_CHECK(sqlite3_exec(db, "PRAGMA foreign_keys = OFF; UPDATE faces SET collection = 'gone'",
                         NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    T_CHECK_EQ_INT(fl_store_check(st, &e), FL_ERR_CORRUPT);
    T_CHECK(strstr(e.msg, "faces") != NULL);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* Many faces through the scan, with rates printed (no assertion on speed). */
static void test_scan_many(void)
{
    enum { N = 5000, DIM = 128, B = 50 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    static struct fl_store_face f[B];
    static float emb[B][DIM];
    static double want_sum;
    struct fl_rng rng;
    uint64_t t0, t1, t2;
    struct scan_sum acc = {0, 0};

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 16);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    want_sum = 0;
    t0 = fl_time_mono_ns();
    for (int b = 0; b < N / B; b++) {
        for (int i = 0; i < B; i++) {
            make_face(&f[i], &rng, emb[i], DIM);
            for (int k = 0; k < DIM; k++)
                want_sum += emb[i][k];
        }
        T_REQUIRE(fl_store_faces_put(st, "c", f, B, NULL) == FL_OK);
    }
    t1 = fl_time_mono_ns();
    T_REQUIRE(fl_store_faces_scan(st, "c", scan_sum_cb, &acc, NULL) == FL_OK);
    t2 = fl_time_mono_ns();
    T_CHECK_EQ_INT(acc.n, N);
    T_CHECK_NEAR(acc.sum, want_sum, 1e-6 * N * DIM);
    printf("# %d faces dim %d: put %.0f faces/s (batches of %d, one commit each), "
           "scan %.0f faces/s (%s)\n",
           N, DIM, N / ((double)(t1 - t0) * 1e-9), B, N / ((double)(t2 - t1) * 1e-9), g_dir);
    fl_store_close(st);
}

/* A file made by an older FaceLink (schema version 1, with data) is brought
 * to the current version at open, keeping its data. */
static void test_migrate_from_v1(void)
{
    char path[300];
    size_t n = 0;
    const struct fl__store_migration *m = fl__store_sqlite_migrations(&n);
    sqlite3 *db = NULL;
    struct fl_store *st;
    struct fl_arena a;
    struct fl_store_collection c;
    struct fl_store_face g;

    T_REQUIRE(n == N_MIGRATIONS);
    db_path(path, sizeof(path));
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_REQUIRE(sqlite3_exec(db, m[0].sql, NULL, NULL, NULL) == SQLITE_OK);
    T_REQUIRE(
        sqlite3_exec(db,
                     "PRAGMA user_version = 1; PRAGMA application_id = 1179405105;"
                     "INSERT INTO collections(id, model_id, face_model_version, dim, created, "
                     "face_count) VALUES ('old', 'm', '101.0', 1, 5.0, 1);"
                     "INSERT INTO faces(collection, face_id, image_id, bbox_left, bbox_top, "
                     "bbox_width, bbox_height, confidence, model_version, dim, embedding, "
                     "created) VALUES ('old', '11111111-1111-4111-8111-111111111111', "
                     "'22222222-2222-5222-8222-222222222222', 0, 0, 1, 1, 90, '101.0', 1, "
                     "x'0000803f', 5.0);",
                     NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    st = open_store(path);
    T_REQUIRE(st != NULL);
    T_CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), N_MIGRATIONS);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), 0);
    fl_arena_init(&a, 0);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "old", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, 1);
    T_REQUIRE(fl_store_face_get(st, "old", "11111111-1111-4111-8111-111111111111",
                                FL_STORE_WANT_EMBEDDING, &a, &g, NULL) == FL_OK);
    T_CHECK(g.dim == 1 && g.embedding[0] == 1.0f); /* 0x3f800000 little-endian */
    T_CHECK_EQ_INT(fl_store_check(st, NULL), FL_OK);
    fl_arena_fini(&a);
    fl_store_close(st);
}

struct crop_seen {
    int n;
    int64_t keys[16];
    size_t lens[16];
    unsigned char first[16];
};

static enum fl_status crop_cb(void *ud, int64_t key, const char *face_id, const void *crop,
                              size_t len)
{
    struct crop_seen *c = ud;
    (void)face_id;
    if (c->n >= 16)
        return FL_ERR_INTERNAL;
    c->keys[c->n] = key;
    c->lens[c->n] = len;
    c->first[c->n] = len ? *(const unsigned char *)crop : 0;
    c->n++;
    return FL_OK;
}

static void test_reindex(void)
{
    enum { N = 4, OLD = 8, NEW = 12 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N], other, g;
    float emb[N][OLD], oemb[OLD], nemb[N][NEW];
    unsigned char crops[N][5];
    struct fl_store_embedding items[N + 1];
    struct crop_seen seen;
    struct fl_rng rng;
    struct fl_arena a;
    struct fl_store_collection c;
    struct fl_store_collection model = {
        .id = "c", .model_id = "new-model@2", .face_model_version = "102.0", .dim = NEW};
    struct fl_store_change_list ch;
    struct fl_store_outcome o;
    struct fl_err e;
    size_t staged = 0;
    uint64_t seq;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 17);
    fl_arena_init(&a, 0);
    T_REQUIRE(make_collection(st, "c", OLD) == FL_OK);
    T_REQUIRE(make_collection(st, "d", OLD) == FL_OK);
    for (int i = 0; i < N; i++) {
        make_face(&f[i], &rng, emb[i], OLD);
        memset(crops[i], 'a' + i, sizeof(crops[i]));
        f[i].crop = crops[i];
        f[i].crop_len = sizeof(crops[i]);
        for (int k = 0; k < NEW; k++)
            nemb[i][k] = (float)(i * 100 + k);
    }
    f[3].crop = NULL; /* this one cannot be re-embedded */
    f[3].crop_len = 0;
    T_REQUIRE(fl_store_faces_put(st, "c", f, N, NULL) == FL_OK);
    make_face(&other, &rng, oemb, OLD);
    T_REQUIRE(fl_store_faces_put(st, "d", &other, 1, NULL) == FL_OK);

    /* the crops: faces 0..2 only */
    memset(&seen, 0, sizeof(seen));
    T_REQUIRE(fl_store_reindex_scan_crops(st, "c", false, crop_cb, &seen, &e) == FL_OK);
    T_REQUIRE(seen.n == 3);
    for (int k = 0; k < seen.n; k++) {
        int i = -1;
        for (int j = 0; j < 3; j++)
            if (f[j].key == seen.keys[k])
                i = j;
        T_REQUIRE(i >= 0);
        T_CHECK_EQ_INT(seen.lens[k], 5);
        T_CHECK_EQ_INT(seen.first[k], 'a' + i);
    }
    /* stage faces 0 and 1, and a key of another collection (skipped) */
    items[0] = (struct fl_store_embedding){f[0].key, nemb[0], NEW};
    items[1] = (struct fl_store_embedding){f[1].key, nemb[1], NEW};
    items[2] = (struct fl_store_embedding){other.key, nemb[2], NEW};
    T_REQUIRE(fl_store_reindex_stage(st, "c", items, 3, &staged, &e) == FL_OK);
    T_CHECK_EQ_INT(staged, 2);
    memset(&seen, 0, sizeof(seen));
    T_REQUIRE(fl_store_reindex_scan_crops(st, "c", true, crop_cb, &seen, &e) == FL_OK);
    T_REQUIRE(seen.n == 1);
    T_CHECK_EQ_INT(seen.keys[0], f[2].key);
    /* mixed dimensions are refused */
    items[1].dim = OLD;
    T_CHECK_EQ_INT(fl_store_reindex_stage(st, "c", items, 2, NULL, &e), FL_ERR_INVALID_ARG);
    items[1].dim = NEW;

    /* commit refused while faces 2 and 3 lack embeddings; nothing changes */
    T_REQUIRE(fl_store_change_seq(st, &seq, NULL) == FL_OK);
    T_CHECK_EQ_INT(fl_store_reindex_commit(st, &model, &e), FL_ERR_CONFLICT);
    T_CHECK(strstr(e.msg, "2 faces") != NULL);
    T_REQUIRE(fl_store_collection_get(st, "c", &a, &c, NULL) == FL_OK);
    T_CHECK_EQ_INT(c.dim, OLD);
    items[0] = (struct fl_store_embedding){f[2].key, nemb[2], NEW};
    T_REQUIRE(fl_store_reindex_stage(st, "c", items, 1, &staged, &e) == FL_OK);
    T_CHECK_EQ_INT(fl_store_reindex_commit(st, &model, &e), FL_ERR_CONFLICT);
    T_CHECK(strstr(e.msg, "1 faces") != NULL);
    /* face 3 (no crop) is deleted by the job's owner; then the switch works */
    {
        const char *id = f[3].face_id;
        T_REQUIRE(fl_store_faces_delete(st, "c", &id, 1, &o, NULL) == FL_OK);
    }
    T_REQUIRE(fl_store_reindex_commit(st, &model, &e) == FL_OK);
    T_REQUIRE(fl_store_collection_get(st, "c", &a, &c, NULL) == FL_OK);
    T_CHECK_EQ_INT(c.dim, NEW);
    T_CHECK_EQ_STR(c.model_id, "new-model@2");
    T_CHECK_EQ_STR(c.face_model_version, "102.0");
    T_CHECK_EQ_INT(c.face_count, 3);
    for (int i = 0; i < 3; i++) {
        T_REQUIRE(fl_store_face_get(st, "c", f[i].face_id, FL_STORE_WANT_EMBEDDING, &a, &g, NULL) ==
                  FL_OK);
        T_CHECK_EQ_INT(g.key, f[i].key); /* same face, same key */
        T_CHECK_EQ_INT(g.dim, NEW);
        T_CHECK(memcmp(g.embedding, nemb[i], sizeof(nemb[i])) == 0);
        T_CHECK_EQ_STR(g.model_version, "102.0");
    }
    T_REQUIRE(fl_store_face_get(st, "d", other.face_id, FL_STORE_WANT_EMBEDDING, &a, &g, NULL) ==
              FL_OK);
    T_CHECK(g.dim == OLD && memcmp(g.embedding, oemb, sizeof(oemb)) == 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), 0);
    T_REQUIRE(fl_store_changes_since(st, seq, 100, &a, &ch, NULL) == FL_OK);
    T_REQUIRE(ch.n == 2); /* the face delete, then the switch */
    T_CHECK_EQ_INT(ch.v[1].op, FL_STORE_CHANGE_COLLECTION_REINDEX);
    /* new faces must now have the new dimension */
    {
        struct fl_store_face h;
        float he[OLD];
        make_face(&h, &rng, he, OLD);
        T_CHECK_EQ_INT(fl_store_faces_put(st, "c", &h, 1, NULL), FL_ERR_INVALID_ARG);
    }
    /* abort drops staged rows */
    items[0] = (struct fl_store_embedding){f[0].key, nemb[0], NEW};
    T_REQUIRE(fl_store_reindex_stage(st, "c", items, 1, NULL, &e) == FL_OK);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), 1);
    T_REQUIRE(fl_store_reindex_abort(st, "c", &e) == FL_OK);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), 0);
    T_CHECK_EQ_INT(fl_store_reindex_abort(st, "nope", &e), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_reindex_scan_crops(st, "nope", false, crop_cb, &seen, &e),
                   FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_check(st, &e), FL_OK);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ============================== Threads ============================== */

struct writer_arg {
    const char *path;
    int id;
    int n_ok;
    enum fl_status first_err;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    struct fl_store *st = NULL;
    struct fl_rng rng;
    float emb[8];
    w->first_err = fl_store_open(w->path, NULL, &st, NULL);
    if (w->first_err != FL_OK)
        return NULL;
    fl_rng_seed(&rng, (uint64_t)w->id + 100);
    for (int i = 0; i < 25; i++) {
        struct fl_store_face f;
        struct fl_arena a;
        struct fl_store_collection c;
        enum fl_status rc;
        make_face(&f, &rng, emb, 8);
        rc = fl_store_faces_put(st, "c", &f, 1, NULL);
        if (rc == FL_OK) {
            w->n_ok++;
        } else if (w->first_err == FL_OK) {
            w->first_err = rc;
        }
        fl_arena_init(&a, 0);
        rc = fl_store_collection_get(st, "c", &a, &c, NULL);
        if (rc != FL_OK && w->first_err == FL_OK)
            w->first_err = rc;
        fl_arena_fini(&a);
    }
    fl_store_close(st);
    return NULL;
}

/* One connection per thread on one file: writers wait for each other (busy
 * timeout), nothing fails and nothing is lost. */
static void test_threads_one_file(void)
{
    enum { T = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    pthread_t th[T];
    struct writer_arg w[T];
    struct fl_arena a;
    struct fl_store_collection c;

    T_REQUIRE(st != NULL);
    T_REQUIRE(make_collection(st, "c", 8) == FL_OK);
    for (int i = 0; i < T; i++) {
        w[i] = (struct writer_arg){.path = path, .id = i};
        T_REQUIRE(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        T_CHECK_EQ_INT(w[i].first_err, FL_OK);
        T_CHECK_EQ_INT(w[i].n_ok, 25);
    }
    fl_arena_init(&a, 0);
    T_CHECK_EQ_INT(fl_store_collection_get(st, "c", &a, &c, NULL), FL_OK);
    T_CHECK_EQ_INT(c.face_count, T * 25);
    T_CHECK_EQ_INT(count_faces(st, "c"), T * 25);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* ============================ Allocation torture ============================ */

/* Count of faces in "c" whose FaceId is one of ids, through a plain
 * connection (the store's own heap is not involved). */
static long raw_count_ids(const char *path, struct fl_store_face *f, size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long k = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*) FROM faces WHERE face_id = ?1", -1, &q, NULL) !=
            SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(q, 1, f[i].face_id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            k += sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return k;
}

/* IndexFaces-like batches under allocation failure: every call either
 * succeeds with all faces written or fails with FL_ERR_NOMEM having written
 * none; the same for deleting them. Runs until a call sees no injection. */
static void test_torture_faces_put_delete(void)
{
    enum { DIM = 64, B = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[B];
    float emb[B][DIM];
    struct fl_rng rng;
    struct fl_store_outcome o[B];
    const char *ids[B];
    long n, put_fails = 0, del_fails = 0;
    bool put_done = false, del_done = false;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 13);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (n = 1; n < 20000 && !(put_done && del_done); n++) {
        enum fl_status rc;
        long injected;
        for (int i = 0; i < B; i++) {
            make_face(&f[i], &rng, emb[i], DIM);
            ids[i] = f[i].face_id;
        }
        f[1].crop = "crop-bytes";
        f[1].crop_len = 10;
        fl_test_fail_alloc_at(put_done ? 0 : n);
        rc = fl_store_faces_put(st, "c", f, B, NULL);
        injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        if (injected == 0)
            put_done = true;
        if (rc == FL_OK) {
            T_CHECK_EQ_INT(raw_count_ids(path, f, B), B);
        } else {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(raw_count_ids(path, f, B), 0);
            put_fails++;
            T_REQUIRE(fl_store_faces_put(st, "c", f, B, NULL) == FL_OK);
        }
        fl_test_fail_alloc_at(del_done ? 0 : n);
        rc = fl_store_faces_delete(st, "c", ids, B, o, NULL);
        injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        if (injected == 0)
            del_done = true;
        if (rc == FL_OK) {
            T_CHECK_EQ_INT(raw_count_ids(path, f, B), 0);
            for (int i = 0; i < B; i++)
                T_CHECK_EQ_INT(o[i].code, FL_STORE_DONE);
        } else {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(raw_count_ids(path, f, B), B);
            del_fails++;
            T_REQUIRE(fl_store_faces_delete(st, "c", ids, B, o, NULL) == FL_OK);
        }
    }
    T_CHECK(put_done && del_done);
    T_CHECK(put_fails > 0 && del_fails > 0);
    {
        struct fl_arena a;
        struct fl_store_collection c;
        fl_arena_init(&a, 0);
        T_REQUIRE(fl_store_collection_get(st, "c", &a, &c, NULL) == FL_OK);
        T_CHECK_EQ_INT(c.face_count, 0);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 0);
        fl_arena_fini(&a);
    }
    printf("# torture put/delete: %ld injection points, %ld put and %ld delete failures\n", n - 1,
           put_fails, del_fails);
    fl_store_close(st);
}

/* CreateUser with a token, and AssociateFaces, under allocation failure. */
static void test_torture_users(void)
{
    enum { DIM = 4 };
    char path[300], uid[32], tok[32];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[2];
    float emb[2][DIM];
    struct fl_rng rng;
    struct fl_store_outcome o[2];
    enum fl_store_user_status us;
    struct fl_store_user u;
    long n, fails = 0;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 14);
    T_REQUIRE(make_collection(st, "c", DIM) == FL_OK);
    for (n = 1; n < 20000; n++) {
        enum fl_status rc;
        long injected;
        const char *ids[2];
        snprintf(uid, sizeof(uid), "user-%ld", n);
        snprintf(tok, sizeof(tok), "token-%ld", n);
        fl_test_fail_alloc_at(n);
        rc = fl_store_user_create(st, "c", uid, tok, NULL);
        injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        if (rc != FL_OK) {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(fl_store_user_get(st, "c", uid, &u, NULL), FL_ERR_NOT_FOUND);
            fails++;
            T_REQUIRE(fl_store_user_create(st, "c", uid, tok, NULL) == FL_OK);
        }
        /* the token was stored exactly when the user was: a replay is OK */
        T_CHECK_EQ_INT(fl_store_user_create(st, "c", uid, tok, NULL), FL_OK);
        for (int i = 0; i < 2; i++) {
            make_face(&f[i], &rng, emb[i], DIM);
            ids[i] = f[i].face_id;
        }
        T_REQUIRE(fl_store_faces_put(st, "c", f, 2, NULL) == FL_OK);
        fl_test_fail_alloc_at(n);
        snprintf(tok, sizeof(tok), "assoc-%ld", n);
        rc = fl_store_faces_associate(st, "c", uid, ids, 2, 0, tok, o, &us, NULL);
        injected += fl_test_injected();
        fl_test_fail_alloc_at(0);
        T_REQUIRE(fl_store_user_get(st, "c", uid, &u, NULL) == FL_OK);
        if (rc == FL_OK) {
            T_CHECK_EQ_INT(u.face_count, 2);
            T_CHECK_EQ_INT(u.status, FL_STORE_USER_ACTIVE);
        } else {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(u.face_count, 0);
            T_CHECK_EQ_INT(u.status, FL_STORE_USER_CREATED);
            fails++;
        }
        if (injected == 0)
            break;
    }
    T_CHECK(n < 20000);
    T_CHECK(fails > 0);
    printf("# torture users: %ld injection points, %ld failures\n", n, fails);
    fl_store_close(st);
}

/* The reindex switch under allocation failure: until it succeeds, each
 * attempt fails with FL_ERR_NOMEM and leaves the old model and embeddings. */
static void test_torture_reindex_commit(void)
{
    enum { N = 6, OLD = 4, NEW = 6 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N];
    float emb[N][OLD], nemb[NEW] = {1, 2, 3, 4, 5, 6};
    struct fl_store_embedding items[N];
    struct fl_store_collection model = {
        .id = "c", .model_id = "m2", .face_model_version = "102.0", .dim = NEW};
    struct fl_rng rng;
    long n, fails = 0;
    enum fl_status rc = FL_ERR_NOMEM;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 18);
    T_REQUIRE(make_collection(st, "c", OLD) == FL_OK);
    for (int i = 0; i < N; i++)
        make_face(&f[i], &rng, emb[i], OLD);
    T_REQUIRE(fl_store_faces_put(st, "c", f, N, NULL) == FL_OK);
    for (int i = 0; i < N; i++)
        items[i] = (struct fl_store_embedding){f[i].key, nemb, NEW};
    T_REQUIRE(fl_store_reindex_stage(st, "c", items, N, NULL, NULL) == FL_OK);
    for (n = 1; n < 20000 && rc != FL_OK; n++) {
        fl_test_fail_alloc_at(n);
        rc = fl_store_reindex_commit(st, &model, NULL);
        fl_test_fail_alloc_at(0);
        if (rc != FL_OK) {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(raw_int(path, "SELECT dim FROM collections WHERE id = 'c'"), OLD);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces WHERE dim = 4"), N);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), N);
            fails++;
        }
    }
    T_CHECK_EQ_INT(rc, FL_OK);
    T_CHECK(fails > 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT dim FROM collections WHERE id = 'c'"), NEW);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces WHERE dim = 6"), N);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM reindex_staging"), 0);
    printf("# torture reindex commit: %ld failures before success\n", fails);
    fl_store_close(st);
}

/* Opening (and creating + migrating) a database under allocation failure:
 * either an error or a working store, and a later plain open always works
 * (a failed migration left nothing half-done). An open makes thousands of
 * allocations (SQLite parses the schema and prepares every statement), so
 * after the first 64 injection points the test strides geometrically
 * (n += n/16) to stay fast; the other torture tests cover every point. */
static void test_torture_open(void)
{
    char path[300];
    long n, fails = 0, points = 0, by_code[FL_STATUS_COUNT_] = {0};
    for (n = 1; n < 1000000; n += n < 64 ? 1 : n / 16) {
        struct fl_store *st = NULL;
        struct fl_err e;
        enum fl_status rc;
        long injected;
        db_path(path, sizeof(path));
        fl_test_fail_alloc_at(n);
        rc = fl_store_open(path, NULL, &st, &e);
        injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        points++;
        if (rc == FL_OK) {
            T_CHECK(st != NULL);
            fl_store_close(st);
        } else {
            T_CHECK(st == NULL);
            by_code[rc]++;
            if (rc != FL_ERR_NOMEM)
                printf("# open failed with %s: %s\n", fl_status_name(rc), e.msg);
            T_CHECK(rc == FL_ERR_NOMEM);
            fails++;
        }
        st = open_store(path);
        T_CHECK(st != NULL);
        if (st)
            T_CHECK_EQ_INT(make_collection(st, "c", 4), FL_OK);
        fl_store_close(st);
        T_CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), N_MIGRATIONS);
        if (injected == 0)
            break;
    }
    T_CHECK(n < 1000000);
    T_CHECK(fails > 0);
    printf("# torture open: %ld injection points up to %ld, %ld failures\n", points, n, fails);
}

/* ============================== Staged imports ============================== */

/* Staged import: pages staged (one of them twice) stay invisible until the
 * commit, which moves them in at once with users, crops, counts and change
 * rows; a repeated commit answers the same; a conflicting face anywhere
 * leaves the target as it was; abort and expiry drop staged rows. Expected
 * values are read back through a plain connection. */
static void test_import_staged(void)
{
    enum { N = 25, DIM = 8 };
    char path[300], buf[128];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N];
    float emb[N][DIM];
    uint8_t crop[3] = {1, 2, 3};
    const char *users[2] = {"u-solo", "u-face"};
    struct fl_store_import imp = {.id = "imp-1",
                                  .collection = "dst",
                                  .model_id = "test-model@1",
                                  .face_model_version = "101.0",
                                  .dim = DIM,
                                  .collection_created = 1234.5,
                                  .expected_faces = N};
    struct fl_store_import got;
    struct fl_arena a;
    struct fl_rng rng;
    int64_t kmax = -1;
    uint64_t seq0 = 0;
    size_t nexp = 0;

    T_REQUIRE(st != NULL);
    fl_arena_init(&a, 0);
    fl_rng_seed(&rng, 71);
    for (int i = 0; i < N; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    f[3].user_id = "u-face";
    f[4].crop = crop;
    f[4].crop_len = sizeof(crop);
    f[5].external_image_id = "photo-5";
    f[6].created = 777.25;

    T_CHECK_EQ_INT(fl_store_import_stage(st, "nope", f, 1, NULL, 0, NULL), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_store_import_commit(st, "nope", &a, &got, NULL), FL_ERR_NOT_FOUND);
    T_REQUIRE(fl_store_import_open(st, &imp, NULL) == FL_OK);
    T_CHECK_EQ_INT(fl_store_import_open(st, &imp, NULL), FL_ERR_EXISTS);
    /* pages of 10, 10, 5; the second page sent twice (a retried request) */
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f, 10, users, 1, NULL), FL_OK);
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f + 10, 10, NULL, 0, NULL), FL_OK);
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f + 10, 10, users, 1, NULL), FL_OK);
    /* the same FaceId with another vector: refused, nothing of the call staged */
    {
        struct fl_store_face g[2] = {f[20], f[11]};
        float other[DIM];
        memcpy(other, emb[11], sizeof(other));
        other[0] += 1.0f;
        g[1].embedding = other;
        T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", g, 2, NULL, 0, NULL), FL_ERR_CONFLICT);
    }
    {
        struct fl_store_face g = f[0];
        float e4[4] = {0};
        g.embedding = e4;
        g.dim = 4;
        T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", &g, 1, NULL, 0, NULL),
                       FL_ERR_INVALID_ARG);
    }
    T_REQUIRE(fl_store_import_get(st, "imp-1", &a, &got, NULL) == FL_OK);
    T_CHECK_EQ_INT(got.faces_staged, 20);
    T_CHECK_EQ_INT(got.users_staged, 1);
    T_CHECK(!got.committed);
    T_CHECK_EQ_STR(got.collection, "dst");
    /* invisible: the collection does not even exist yet */
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM collections"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f + 20, 4, users + 1, 1, NULL), FL_OK);
    T_CHECK_EQ_INT(fl_store_import_commit(st, "imp-1", &a, &got, NULL), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM collections"), 0);
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f + 20, 5, users + 1, 1, NULL), FL_OK);
    T_REQUIRE(fl_store_change_seq(st, &seq0, NULL) == FL_OK);

    T_REQUIRE(fl_store_import_commit(st, "imp-1", &a, &got, NULL) == FL_OK);
    T_CHECK(got.committed && got.created_collection);
    T_CHECK_EQ_INT(got.faces_imported, N);
    T_CHECK_EQ_INT(got.faces_present, 0);
    T_CHECK_EQ_INT(got.users_created, 2);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces WHERE collection = 'dst'"), N);
    T_CHECK_EQ_INT(raw_int(path, "SELECT face_count FROM collections WHERE id = 'dst'"), N);
    T_CHECK_EQ_INT(raw_int(path, "SELECT user_count FROM collections WHERE id = 'dst'"), 2);
    T_CHECK_EQ_INT(raw_int(path, "SELECT dim FROM collections WHERE id = 'dst'"), DIM);
    T_CHECK_EQ_INT(raw_int(path, "SELECT created * 2 FROM collections WHERE id = 'dst'"), 2469);
    T_CHECK_EQ_INT(raw_int(path, "SELECT status FROM users WHERE user_id = 'u-face'"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT status FROM users WHERE user_id = 'u-solo'"), 3);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM face_crops"), 1);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_users"), 0);
    {
        char q[200];
        snprintf(q, sizeof(q), "SELECT created * 4 FROM faces WHERE face_id = '%s'", f[6].face_id);
        T_CHECK_EQ_INT(raw_int(path, q), 3109);
        snprintf(q, sizeof(q), "SELECT external_image_id FROM faces WHERE face_id = '%s'",
                 f[5].face_id);
        T_CHECK_EQ_STR(raw_text(path, q, buf, sizeof(buf)), "photo-5");
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM faces WHERE collection = 'dst' AND embedding = "
                 "(SELECT embedding FROM faces WHERE face_id = '%s') ",
                 f[7].face_id);
        T_CHECK_EQ_INT(raw_int(path, q), 1);
    }
    /* the change rows: collection, 2 users, N faces, all after seq0 */
    {
        char q[200];
        snprintf(q, sizeof(q), "SELECT count(*) FROM changes WHERE seq > %llu AND op = 3",
                 (unsigned long long)seq0);
        T_CHECK_EQ_INT(raw_int(path, q), N);
        snprintf(q, sizeof(q), "SELECT count(*) FROM changes WHERE seq > %llu AND op = 6",
                 (unsigned long long)seq0);
        T_CHECK_EQ_INT(raw_int(path, q), 2);
        snprintf(q, sizeof(q), "SELECT count(*) FROM changes WHERE seq > %llu AND op = 1",
                 (unsigned long long)seq0);
        T_CHECK_EQ_INT(raw_int(path, q), 1);
    }
    T_REQUIRE(fl_store_faces_key_max(st, "dst", &kmax, NULL) == FL_OK);
    T_CHECK_EQ_INT(kmax, raw_int(path, "SELECT max(key) FROM faces"));
    T_CHECK_EQ_INT(fl_store_faces_key_max(st, "missing", &kmax, NULL), FL_ERR_NOT_FOUND);
    /* a repeated commit: same answer, nothing changes */
    memset(&got, 0, sizeof(got));
    T_CHECK_EQ_INT(fl_store_import_commit(st, "imp-1", &a, &got, NULL), FL_OK);
    T_CHECK(got.committed && got.created_collection && got.faces_imported == N);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), N);
    T_CHECK_EQ_INT(fl_store_import_stage(st, "imp-1", f, 1, NULL, 0, NULL), FL_ERR_CONFLICT);

    /* a second import of the same faces plus one new: present + imported */
    {
        struct fl_store_import i2 = imp;
        struct fl_store_face extra;
        float e[DIM];
        i2.id = "imp-2";
        i2.expected_faces = -1;
        make_face(&extra, &rng, e, DIM);
        T_REQUIRE(fl_store_import_open(st, &i2, NULL) == FL_OK);
        T_REQUIRE(fl_store_import_stage(st, "imp-2", f, N, users, 2, NULL) == FL_OK);
        T_REQUIRE(fl_store_import_stage(st, "imp-2", &extra, 1, NULL, 0, NULL) == FL_OK);
        T_REQUIRE(fl_store_import_commit(st, "imp-2", &a, &got, NULL) == FL_OK);
        T_CHECK(!got.created_collection);
        T_CHECK_EQ_INT(got.faces_imported, 1);
        T_CHECK_EQ_INT(got.faces_present, N);
        T_CHECK_EQ_INT(got.users_created, 0);
        T_CHECK_EQ_INT(raw_int(path, "SELECT face_count FROM collections WHERE id = 'dst'"), N + 1);
    }
    /* a third with one FaceId of other content: CONFLICT, the target unchanged */
    {
        struct fl_store_import i3 = imp;
        struct fl_store_face g[2];
        float e[DIM], other[DIM];
        i3.id = "imp-3";
        i3.expected_faces = -1;
        make_face(&g[0], &rng, e, DIM);
        g[1] = f[9];
        memcpy(other, emb[9], sizeof(other));
        other[DIM - 1] *= 0.5f;
        g[1].embedding = other;
        T_REQUIRE(fl_store_import_open(st, &i3, NULL) == FL_OK);
        T_REQUIRE(fl_store_import_stage(st, "imp-3", g, 2, NULL, 0, NULL) == FL_OK);
        T_CHECK_EQ_INT(fl_store_import_commit(st, "imp-3", &a, &got, NULL), FL_ERR_CONFLICT);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), N + 1);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), 2);
        T_CHECK_EQ_INT(fl_store_import_abort(st, "imp-3", NULL), FL_OK);
        T_CHECK_EQ_INT(fl_store_import_abort(st, "imp-3", NULL), FL_ERR_NOT_FOUND);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), 0);
    }
    /* another model for the same collection: CONFLICT at the commit */
    {
        struct fl_store_import i4 = imp;
        i4.id = "imp-4";
        i4.expected_faces = 0;
        i4.model_id = "other-model@2";
        T_REQUIRE(fl_store_import_open(st, &i4, NULL) == FL_OK);
        T_CHECK_EQ_INT(fl_store_import_commit(st, "imp-4", &a, &got, NULL), FL_ERR_CONFLICT);
    }
    /* expiry drops every import untouched since the time given */
    {
        struct fl_store_import i5 = imp;
        i5.id = "imp-5";
        i5.expected_faces = -1;
        T_REQUIRE(fl_store_import_open(st, &i5, NULL) == FL_OK);
        T_REQUIRE(fl_store_import_stage(st, "imp-5", f, 3, NULL, 0, NULL) == FL_OK);
        T_CHECK_EQ_INT(fl_store_import_expire(st, 1000.0, &nexp, NULL), FL_OK);
        T_CHECK_EQ_INT(nexp, 0);
        T_CHECK_EQ_INT(fl_store_import_expire(st, fl_time_now() + 1, &nexp, NULL), FL_OK);
        T_CHECK_EQ_INT(nexp, 4); /* imp-1, imp-2, imp-4, imp-5 */
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM imports"), 0);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), 0);
        T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), N + 1);
    }
    T_CHECK_EQ_INT(fl_store_check(st, NULL), FL_OK);
    fl_arena_fini(&a);
    fl_store_close(st);
}

/* The import commit under allocation failure: all or nothing each time. */
static void test_torture_import_commit(void)
{
    enum { N = 6, DIM = 4 };
    char path[300];
    struct fl_store *st = open_store(db_path(path, sizeof(path)));
    struct fl_store_face f[N];
    float emb[N][DIM];
    const char *users[1] = {"u1"};
    struct fl_store_import imp = {.id = "i",
                                  .collection = "c",
                                  .model_id = "test-model@1",
                                  .face_model_version = "101.0",
                                  .dim = DIM,
                                  .expected_faces = N};
    struct fl_rng rng;
    long n, fails = 0;
    enum fl_status rc = FL_ERR_NOMEM;

    T_REQUIRE(st != NULL);
    fl_rng_seed(&rng, 19);
    for (int i = 0; i < N; i++)
        make_face(&f[i], &rng, emb[i], DIM);
    f[1].user_id = "u2";
    T_REQUIRE(fl_store_import_open(st, &imp, NULL) == FL_OK);
    for (n = 1; n < 20000; n++) {
        fl_test_fail_alloc_at(n);
        rc = fl_store_import_stage(st, "i", f, N, users, 1, NULL);
        fl_test_fail_alloc_at(0);
        if (rc == FL_OK)
            break;
        T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
    }
    T_REQUIRE(rc == FL_OK);
    rc = FL_ERR_NOMEM;
    for (n = 1; n < 20000 && rc != FL_OK; n++) {
        fl_test_fail_alloc_at(n);
        rc = fl_store_import_commit(st, "i", NULL, NULL, NULL);
        fl_test_fail_alloc_at(0);
        if (rc != FL_OK) {
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM collections"), 0);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), 0);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM users"), 0);
            T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), N);
            fails++;
        }
    }
    T_CHECK_EQ_INT(rc, FL_OK);
    T_CHECK(fails > 0);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM faces"), N);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM users"), 2);
    T_CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM import_faces"), 0);
    printf("# torture import commit: %ld failures before success\n", fails);
    fl_store_close(st);
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    /* These tests check semantics, not durability (test_store_crash does
     * that on disk): a RAM file system, when there is one, spares them the
     * fsync of every commit. $TMPDIR overrides. */
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof(g_dir), "%s/fl-store-XXXXXX", tmp);
    if (!mkdtemp(g_dir)) {
        printf("# mkdtemp failed\n");
        return 1;
    }
    T_RUN(test_open_creates_wal_schema);
    T_RUN(test_embedded_sql_matches_file);
    T_RUN(test_open_rejects_newer_and_foreign);
    T_RUN(test_collections);
    T_RUN(test_collection_pagination);
    T_RUN(test_faces_put_get_roundtrip);
    T_RUN(test_faces_put_atomic);
    T_RUN(test_faces_pagination_stable);
    T_RUN(test_faces_list_filters);
    T_RUN(test_faces_delete);
    T_RUN(test_find_by_image);
    T_RUN(test_put_dedup);
    T_RUN(test_put_dedup_concurrent);
    T_RUN(test_faces_scan);
    T_RUN(test_users);
    T_RUN(test_users_pagination);
    T_RUN(test_associate_disassociate);
    T_RUN(test_tags);
    T_RUN(test_jobs);
    T_RUN(test_collection_delete_cascades);
    T_RUN(test_changes);
    T_RUN(test_check_and_read_only);
    T_RUN(test_scan_many);
    T_RUN(test_migrate_from_v1);
    T_RUN(test_reindex);
    T_RUN(test_threads_one_file);
    T_RUN(test_torture_faces_put_delete);
    T_RUN(test_torture_users);
    T_RUN(test_torture_reindex_commit);
    T_RUN(test_import_staged);
    T_RUN(test_torture_import_commit);
    T_RUN(test_torture_open);
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", g_dir);
    }
    return t_done();
}
