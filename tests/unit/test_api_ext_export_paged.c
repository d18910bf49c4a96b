/* test_api_ext_export_paged.c: ExportCollection in pages and the staged
 * import (StartImport, ImportFaces pages, CommitImport, AbortImport,
 * DescribeImport) on collections larger than one page, in process through
 * fl_service_call, with synthetic faces (no models needed):
 *   - a paged export assembled as a client does (append, patch, crops) is
 *     byte for byte the one-piece export, and holds exactly the seeded
 *     faces, vectors (bit for bit) and users;
 *   - staged import into a fresh data dir, then export again: identical
 *     files, ListFaces, ListUsers and SearchFacesByEmbedding answers;
 *     importing again is idempotent; a repeated page is harmless;
 *   - faces added by another thread during a paged export are left out and
 *     the export stays point-in-time; a face deleted mid-export is reported
 *     (PointInTime false);
 *   - an import whose process is killed half-way leaves the target
 *     untouched and is retried; an abandoned import can be aborted, its
 *     staged faces never appear;
 *   - errors: unknown ImportId (ResourceNotFound), damaged or foreign
 *     NextToken (InvalidPaginationToken), wrong model or dimension refused
 *     before anything is written, conflicts change nothing;
 *   - allocation torture of CommitImport and of an export page. */
#include "t.h"
#include "api/api.h"
#include "core/core.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

T_MAIN_STATE;

#define DIM     128
#define N_FACES 2500
#define N_USERS 20

static char g_root[256];
static int g_seq;

/* ============================== Helpers ============================== */

static void new_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/d%d", g_root, ++g_seq);
}

static struct fl_service *open_dir(const char *dir, const char *model)
{
    struct fl_service_config cfg;
    struct fl_err err;
    struct fl_service *svc;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.n_workers = 2;
    cfg.default_model = model;
    svc = fl_service_open(&cfg, &err);
    if (!svc)
        printf("# open %s: %s\n", dir, err.msg);
    return svc;
}

/* Call op (a full target) with req (stolen); the answer or NULL (*rc). */
static json_t *call(struct fl_service *svc, const char *target, json_t *req, enum fl_status *rc)
{
    char *txt = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(17)), *out = NULL;
    size_t n = 0;
    struct fl_err err;
    enum fl_status r;
    json_t *v = NULL;
    json_decref(req);
    r = fl_service_call(svc, target, txt, strlen(txt), &out, &n, &err);
    fl_free(txt);
    if (r == FL_OK)
        v = json_loadb(out, n, 0, NULL);
    fl_free_string(out);
    if (rc)
        *rc = r;
    else if (r != FL_OK)
        printf("# %s: %s: %s\n", target, fl_status_exception(r), err.msg);
    return v;
}

#define REK(op) "RekognitionService." op
#define EXT(op) "FaceLinkService." op

/* The seeded faces: ids and vectors, the reference of every comparison. */
struct seeded {
    char id[N_FACES][FL_UUID_STR_LEN + 1];
    float v[N_FACES][DIM];
    int n;
};
static struct seeded g_seed;

struct seed_ud {
    const char *coll;
    int from, n;
    struct seeded *s;
};

/* Put faces [from, from+n) of s into coll through the store and the index. */
static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct seed_ud *u = ud;
    struct fl__api_coll *c;
    struct fl_store_face *f = fl_calloc((size_t)u->n, sizeof(*f));
    static const uint8_t crop[7] = {'F', 'L', 'C', '1', 0, 1, 2};
    enum fl_status rc = fl__api_coll_require(ctx->svc, u->coll, &c, err);
    if (!f)
        return FL_ERR_NOMEM;
    for (int i = 0; rc == FL_OK && i < u->n; i++) {
        int k = u->from + i;
        memcpy(f[i].face_id, u->s->id[k], sizeof(f[i].face_id));
        memcpy(f[i].image_id, "11111111-2222-4333-8444-555555555555", 37);
        if (k % 3 == 0)
            f[i].external_image_id = k % 2 ? "photo-odd" : "photo-even";
        f[i].bbox = (struct fl_store_bbox){0.125f, 0.25f, 0.5f, 0.375f};
        f[i].confidence = 99.5f;
        f[i].model_version = c->model->face_model_version;
        f[i].embedding = u->s->v[k];
        f[i].dim = DIM;
        f[i].created = 1700000000.25 + k;
        if (k % 25 == 0) { /* a few retained "crops" (opaque bytes to the store) */
            f[i].crop = crop;
            f[i].crop_len = sizeof(crop);
        }
    }
    if (rc == FL_OK)
        rc = fl__api_faces_commit(ctx, c, f, (size_t)u->n, err);
    fl_free(f);
    return rc;
}

static void make_faces(struct seeded *s, int n, uint64_t seed)
{
    struct fl_rng rng;
    fl_rng_seed(&rng, seed);
    s->n = n;
    for (int k = 0; k < n; k++) {
        FL_ASSERT(fl_uuid_v4(s->id[k], NULL) == FL_OK);
        for (int d = 0; d < DIM; d++)
            s->v[k][d] = (float)(fl_rng_double(&rng) * 0.2 - 0.1);
    }
}

static int seed_collection(struct fl_service *svc, const char *coll, struct seeded *s, int from,
                           int n)
{
    struct fl_err err;
    for (int i = from; i < from + n; i += 500) {
        struct seed_ud u = {coll, i, from + n - i < 500 ? from + n - i : 500, s};
        if (fl__api_with_ctx(svc, seed_fn, &u, &err) != FL_OK) {
            printf("# seed: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* Collection `coll` of g_seed with N_USERS users (user-k has faces
 * 5k..5k+4, the last user none). */
static struct fl_service *build_a(const char *dir, const char *coll)
{
    struct fl_service *svc = open_dir(dir, "dlib");
    enum fl_status rc;
    if (!svc)
        return NULL;
    json_decref(call(svc, REK("CreateCollection"), json_pack("{s:s}", "CollectionId", coll), &rc));
    if (rc != FL_OK || seed_collection(svc, coll, &g_seed, 0, g_seed.n) != 0)
        goto fail;
    for (int u = 0; u < N_USERS; u++) {
        char uid[32];
        json_t *ids = json_array();
        snprintf(uid, sizeof(uid), "user-%02d", u);
        json_decref(call(svc, REK("CreateUser"),
                         json_pack("{s:s,s:s}", "CollectionId", coll, "UserId", uid), &rc));
        if (rc != FL_OK)
            goto fail;
        if (u == N_USERS - 1) {
            json_decref(ids);
            continue;
        }
        for (int k = 5 * u; k < 5 * u + 5; k++)
            json_array_append_new(ids, json_string(g_seed.id[k]));
        json_decref(call(
            svc, REK("AssociateFaces"),
            json_pack("{s:s,s:s,s:o}", "CollectionId", coll, "UserId", uid, "FaceIds", ids), &rc));
        if (rc != FL_OK)
            goto fail;
    }
    return svc;
fail:
    fl_service_close(svc);
    return NULL;
}

/* ------------------------------ exports ------------------------------ */

static const char *const k_parts[4] = {"faces.jsonl", "embeddings.npy", "users.jsonl",
                                       "pgvector.sql"};

/* An export assembled as a client writes it. */
struct exp {
    struct fl_buf part[4];
    json_t *crops;    /* name -> base64 */
    json_t *manifest; /* ManifestJson + Files, parsed */
    json_t *snapshot; /* Manifest.Snapshot (borrowed from manifest) */
    int pages;
};

static void exp_init(struct exp *e)
{
    memset(e, 0, sizeof(*e));
    for (int i = 0; i < 4; i++)
        fl_buf_init(&e->part[i], (size_t)1 << 30);
    e->crops = json_object();
}

static void exp_fini(struct exp *e)
{
    for (int i = 0; i < 4; i++)
        fl_buf_fini(&e->part[i]);
    json_decref(e->crops);
    json_decref(e->manifest);
}

static int b64_into(const char *s, struct fl_buf *b, size_t off, bool overwrite)
{
    size_t n = 0;
    uint8_t *p = fl_malloc(fl_base64_decoded_max(strlen(s)) + 1);
    int rc = -1;
    if (p && fl_base64_decode(s, strlen(s), p, &n, NULL) == FL_OK) {
        if (!overwrite)
            rc = fl_buf_append(b, p, n, NULL) == FL_OK ? 0 : -1;
        else if (off + n <= b->len) {
            memcpy(b->data + off, p, n);
            rc = 0;
        }
    }
    fl_free(p);
    return rc;
}

typedef void (*page_hook)(int page, void *ud);

/* Export coll in pages of max; hook (may be NULL) runs after every page. */
static enum fl_status paged_export(struct fl_service *svc, const char *coll, int max, bool crops,
                                   struct exp *e, page_hook hook, void *ud)
{
    char *token = NULL;
    enum fl_status rc = FL_OK;
    for (;;) {
        json_t *req = json_pack("{s:s,s:b,s:i}", "CollectionId", coll, "IncludeCrops", crops,
                                "MaxResults", max);
        json_t *r, *v;
        const char *k, *next;
        if (token)
            json_object_set_new(req, "NextToken", json_string(token));
        r = call(svc, EXT("ExportCollection"), req, &rc);
        if (!r)
            break;
        e->pages++;
        json_object_foreach(json_object_get(r, "Append"), k, v)
        {
            for (int i = 0; i < 4; i++)
                if (strcmp(k, k_parts[i]) == 0 &&
                    b64_into(json_string_value(v), &e->part[i], 0, false) != 0)
                    rc = FL_ERR_CORRUPT;
        }
        json_object_update(e->crops, json_object_get(r, "Files"));
        next = json_string_value(json_object_get(r, "NextToken"));
        free(token);
        token = next ? strdup(next) : NULL;
        if (!next) {
            size_t i;
            json_t *p, *files = json_object();
            json_array_foreach(json_object_get(r, "Patch"), i, p)
            {
                if (strcmp(json_string_value(json_object_get(p, "File")), "embeddings.npy") != 0 ||
                    b64_into(json_string_value(json_object_get(p, "Bytes")), &e->part[1],
                             (size_t)json_integer_value(json_object_get(p, "Offset")), true) != 0)
                    rc = FL_ERR_CORRUPT;
            }
            e->manifest =
                json_loads(json_string_value(json_object_get(r, "ManifestJson")), 0, NULL);
            for (int k2 = 0; k2 < 4; k2++) {
                char hex[65];
                fl_sha256_hex(e->part[k2].data ? e->part[k2].data : "", e->part[k2].len, hex);
                json_object_set_new(
                    files, k_parts[k2],
                    json_pack("{s:I,s:s}", "Bytes", (json_int_t)e->part[k2].len, "Sha256", hex));
            }
            json_object_set_new(e->manifest, "Files", files);
            e->snapshot = json_object_get(e->manifest, "Snapshot");
            json_decref(r);
            break;
        }
        json_decref(r);
        if (hook)
            hook(e->pages, ud);
    }
    free(token);
    return rc;
}

/* part i of e equals base64 b. */
static bool part_equals(const struct exp *e, int i, const char *b64)
{
    struct fl_buf b;
    bool eq;
    fl_buf_init(&b, (size_t)1 << 30);
    eq = b64 && b64_into(b64, &b, 0, false) == 0 && b.len == e->part[i].len &&
         (b.len == 0 || memcmp(b.data, e->part[i].data, b.len) == 0);
    fl_buf_fini(&b);
    return eq;
}

static bool exp_equal(const struct exp *a, const struct exp *b)
{
    json_t *ma = json_deep_copy(a->manifest), *mb = json_deep_copy(b->manifest);
    bool eq = json_equal(a->crops, b->crops);
    for (int i = 0; i < 4; i++)
        eq = eq && a->part[i].len == b->part[i].len &&
             (a->part[i].len == 0 || memcmp(a->part[i].data, b->part[i].data, a->part[i].len) == 0);
    json_object_del(ma, "ExportedAt");
    json_object_del(mb, "ExportedAt");
    json_object_del(ma, "Snapshot");
    json_object_del(mb, "Snapshot");
    eq = eq && json_equal(ma, mb);
    json_decref(ma);
    json_decref(mb);
    return eq;
}

/* ------------------------------ imports ------------------------------ */

static bool g_send_twice; /* every page is sent twice (a client retrying) */

/* Staged import of e into svc with pages of `page` faces; stop (leaving the
 * import open) after `stop_after` pages when > 0. The commit's answer, or
 * NULL (*rc); *import_id receives the id (caller's buffer). */
static json_t *staged_import(struct fl_service *svc, const struct exp *e, const char *coll,
                             int page, int stop_after, char *import_id, enum fl_status *rc)
{
    char *man = json_dumps(e->manifest, JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *man64 = fl_base64(man, strlen(man));
    json_t *req = json_pack("{s:{s:s}}", "Files", "manifest.json", man64), *r;
    const char *p = e->part[0].data, *end = p + e->part[0].len;
    int pages = 0;
    fl_free(man64);
    fl_free(man);
    if (coll)
        json_object_set_new(req, "CollectionId", json_string(coll));
    r = call(svc, EXT("StartImport"), req, rc);
    if (!r)
        return NULL;
    snprintf(import_id, FL_UUID_STR_LEN + 1, "%s",
             json_string_value(json_object_get(r, "ImportId")));
    json_decref(r);
    while (p < end) {
        const char *q = p;
        json_t *files = json_object();
        for (int n = 0; n < page && q < end; n++) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            json_t *line = json_loadb(q, (size_t)(nl - q), 0, NULL);
            const char *crop = json_string_value(json_object_get(line, "Crop"));
            if (crop)
                json_object_set(files, crop, json_object_get(e->crops, crop));
            json_decref(line);
            q = nl + 1;
        }
        {
            char *b = fl_base64(p, (size_t)(q - p));
            json_object_set_new(files, "faces.jsonl", json_string(b));
            fl_free(b);
        }
        r = call(svc, EXT("ImportFaces"),
                 json_pack("{s:s,s:o}", "ImportId", import_id, "Files", files), rc);
        if (!r)
            return NULL;
        json_decref(r);
        p = q;
        if (stop_after > 0 && ++pages == stop_after)
            return NULL;
    }
    if (e->part[2].len) {
        char *b = fl_base64(e->part[2].data, e->part[2].len);
        r = call(svc, EXT("ImportFaces"),
                 json_pack("{s:s,s:{s:s}}", "ImportId", import_id, "Files", "users.jsonl", b), rc);
        fl_free(b);
        if (!r)
            return NULL;
        json_decref(r);
    }
    return call(svc, EXT("CommitImport"), json_pack("{s:s}", "ImportId", import_id), rc);
}

/* ------------------------------ views ------------------------------ */

static json_t *list_all(struct fl_service *svc, const char *op, const char *member,
                        const char *coll)
{
    json_t *all = json_array();
    char *token = NULL;
    char target[64];
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    for (;;) {
        json_t *req = json_pack("{s:s,s:i}", "CollectionId", coll, "MaxResults",
                                strcmp(op, "ListFaces") == 0 ? 4096 : 500);
        json_t *r;
        const char *next;
        if (token)
            json_object_set_new(req, "NextToken", json_string(token));
        r = call(svc, target, req, NULL);
        if (!r) {
            json_decref(all);
            all = NULL;
            break;
        }
        json_array_extend(all, json_object_get(r, member));
        next = json_string_value(json_object_get(r, "NextToken"));
        free(token);
        token = next ? strdup(next) : NULL;
        json_decref(r);
        if (!token)
            break;
    }
    free(token);
    return all;
}

static json_t *search(struct fl_service *svc, const char *coll, const float *v)
{
    json_t *vec = json_array(), *r;
    for (int d = 0; d < DIM; d++)
        json_array_append_new(vec, json_real(v[d]));
    r = call(svc, EXT("SearchFacesByEmbedding"),
             json_pack("{s:s,s:o,s:i,s:f}", "CollectionId", coll, "Embedding", vec, "MaxFaces", 25,
                       "FaceMatchThreshold", 0.0),
             NULL);
    return r;
}

/* faces.jsonl of e holds exactly the seeded faces [0, n) of s (FaceId order,
 * vectors bit for bit), and embeddings.npy the same vectors. */
static bool holds_seed(const struct exp *e, const struct seeded *s, int n)
{
    const char *p = e->part[0].data, *end = p + e->part[0].len;
    int count = 0;
    bool ok = e->part[1].len == 128 + (size_t)n * DIM * 4;
    char prev[FL_UUID_STR_LEN + 1] = "";
    while (ok && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
        const char *fid = json_string_value(json_object_get(o, "FaceId"));
        const char *emb = json_string_value(json_object_get(o, "Embedding"));
        uint8_t raw[DIM * 4];
        size_t rn = 0;
        int k;
        for (k = 0; k < n && fid && strcmp(s->id[k], fid) != 0; k++)
            ;
        ok = fid && k < n && strcmp(prev, fid) < 0 && emb &&
             fl_base64_decode(emb, strlen(emb), raw, &rn, NULL) == FL_OK && rn == sizeof(raw) &&
             memcmp(raw, s->v[k], sizeof(raw)) == 0 && /* little-endian host */
             memcmp(e->part[1].data + 128 + (size_t)count * DIM * 4, s->v[k], sizeof(raw)) == 0;
        if (!ok)
            printf("# holds_seed: line %d (%s): %s\n", count, fid ? fid : "?",
                   !fid || k == n ? "not a seeded face" : "order or vector differs");
        if (fid)
            snprintf(prev, sizeof(prev), "%s", fid);
        json_decref(o);
        count++;
        p = nl + 1;
    }
    if (ok && count != n)
        printf("# holds_seed: %d faces, want %d\n", count, n);
    return ok && count == n;
}

/* ============================== Tests ============================== */

static struct fl_service *g_a;
static struct exp g_exp; /* of A, paged */

static void test_paged_equals_whole(void)
{
    enum fl_status rc;
    json_t *whole, *files;
    char dir[300];
    new_dir(dir, sizeof(dir));
    g_a = build_a(dir, "big");
    T_REQUIRE(g_a);
    whole = call(g_a, EXT("ExportCollection"), json_pack("{s:s}", "CollectionId", "big"), &rc);
    T_REQUIRE(whole);
    exp_init(&g_exp);
    T_REQUIRE(paged_export(g_a, "big", 700, true, &g_exp, NULL, NULL) == FL_OK);
    T_CHECK_EQ_INT(g_exp.pages, 4); /* 4 pages of faces, the users fit into the last */
    files = json_object_get(whole, "Files");
    for (int i = 0; i < 4; i++)
        if (!part_equals(&g_exp, i, json_string_value(json_object_get(files, k_parts[i])))) {
            printf("# %s: paged != whole\n", k_parts[i]);
            T_CHECK(0);
        }
    {
        const char *k;
        json_t *v;
        size_t n_crops = 0;
        json_object_foreach(files, k, v)
        {
            if (strncmp(k, "crops/", 6) == 0) {
                n_crops++;
                T_CHECK(json_equal(v, json_object_get(g_exp.crops, k)));
            }
        }
        T_CHECK_EQ_INT(n_crops, json_object_size(g_exp.crops));
        T_CHECK_EQ_INT(n_crops, (N_FACES + 24) / 25);
    }
    {
        /* the manifest: manifest.json of the one-piece export is byte for byte
         * ManifestJson + Files written as the CLI writes it (but for the time) */
        struct fl_buf mtext;
        json_t *mw, *mp = json_deep_copy(g_exp.manifest);
        char *dumped;
        fl_buf_init(&mtext, (size_t)1 << 30);
        T_REQUIRE(b64_into(json_string_value(json_object_get(files, "manifest.json")), &mtext, 0,
                           false) == 0);
        T_REQUIRE(fl_buf_append(&mtext, "", 1, NULL) == FL_OK);
        mw = json_loads(mtext.data, 0, NULL);
        T_REQUIRE(mw && mp);
        json_object_set(mp, "ExportedAt", json_object_get(mw, "ExportedAt"));
        dumped = json_dumps(mp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        T_CHECK(dumped && strcmp(dumped, mtext.data) == 0);
        fl_free(dumped);
        fl_buf_fini(&mtext);
        T_CHECK(json_is_true(json_object_get(g_exp.snapshot, "PointInTime")));
        T_CHECK_EQ_INT(
            json_integer_value(json_object_get(json_object_get(g_exp.manifest, "Counts"), "Faces")),
            N_FACES);
        T_CHECK_EQ_INT(
            json_integer_value(json_object_get(json_object_get(g_exp.manifest, "Counts"), "Users")),
            N_USERS);
        json_decref(mw);
        json_decref(mp);
    }
    T_CHECK(holds_seed(&g_exp, &g_seed, N_FACES));
    json_decref(whole);
}

static void test_round_trip(void)
{
    enum fl_status rc;
    char dir[300], iid[FL_UUID_STR_LEN + 1];
    struct fl_service *b;
    struct exp e2;
    json_t *r, *fa, *fb, *ua, *ub;
    if (!g_a)
        T_SKIP("no collection A");
    new_dir(dir, sizeof(dir));
    b = open_dir(dir, "dlib");
    T_REQUIRE(b);
    r = staged_import(b, &g_exp, NULL, 600, 0, iid, &rc);
    T_REQUIRE(r);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "FacesImported")), N_FACES);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "UsersCreated")), N_USERS);
    T_CHECK(json_is_true(json_object_get(r, "CollectionCreated")));
    json_decref(r);
    /* the commit is idempotent */
    r = call(b, EXT("CommitImport"), json_pack("{s:s}", "ImportId", iid), &rc);
    T_CHECK(r && json_integer_value(json_object_get(r, "FacesImported")) == N_FACES);
    json_decref(r);
    fa = list_all(g_a, "ListFaces", "Faces", "big");
    fb = list_all(b, "ListFaces", "Faces", "big");
    T_CHECK(fa && json_array_size(fa) == N_FACES && json_equal(fa, fb));
    ua = list_all(g_a, "ListUsers", "Users", "big");
    ub = list_all(b, "ListUsers", "Users", "big");
    T_CHECK(ua && json_array_size(ua) == N_USERS && json_equal(ua, ub));
    for (int k = 0; k < N_FACES; k += 499) {
        json_t *sa = search(g_a, "big", g_seed.v[k]), *sb = search(b, "big", g_seed.v[k]);
        T_CHECK(sa && sb && json_equal(sa, sb));
        T_CHECK(sa && json_array_size(json_object_get(sa, "FaceMatches")) == 25);
        json_decref(sa);
        json_decref(sb);
    }
    exp_init(&e2);
    T_CHECK(paged_export(b, "big", 1000, true, &e2, NULL, NULL) == FL_OK);
    T_CHECK(exp_equal(&g_exp, &e2));
    exp_fini(&e2);
    /* import again, every page sent twice: nothing new, nothing changed */
    g_send_twice = true;
    r = staged_import(b, &g_exp, NULL, 800, 0, iid, &rc);
    g_send_twice = false;
    T_CHECK(r && json_integer_value(json_object_get(r, "FacesImported")) == 0 &&
            json_integer_value(json_object_get(r, "FacesAlreadyPresent")) == N_FACES &&
            json_integer_value(json_object_get(r, "UsersCreated")) == 0 &&
            json_is_false(json_object_get(r, "CollectionCreated")));
    json_decref(r);
    json_decref(fb);
    fb = list_all(b, "ListFaces", "Faces", "big");
    T_CHECK(json_equal(fa, fb));
    json_decref(fa);
    json_decref(fb);
    json_decref(ua);
    json_decref(ub);
    fl_service_close(b);
}

/* ------------------------- concurrent additions ------------------------- */

struct adder {
    struct fl_service *svc;
    struct seeded *extra;
    volatile int stop;
    int added;
};

static void *adder_main(void *arg)
{
    struct adder *ad = arg;
    while (!ad->stop && ad->added < ad->extra->n) {
        if (seed_collection(ad->svc, "big", ad->extra, ad->added, 10) != 0)
            break;
        ad->added += 10;
        usleep(200);
    }
    return NULL;
}

static struct seeded g_extra;

struct adder_hook {
    struct adder *ad;
    pthread_t th;
    bool started;
};

/* After the first page (the snapshot point), start adding faces. */
static void start_adder(int page, void *ud)
{
    struct adder_hook *h = ud;
    if (page == 1)
        h->started = pthread_create(&h->th, NULL, adder_main, h->ad) == 0;
}

static void test_concurrent_additions(void)
{
    struct adder ad;
    struct adder_hook h;
    struct exp e;
    if (!g_a)
        T_SKIP("no collection A");
    make_faces(&g_extra, 400, 99);
    memset(&ad, 0, sizeof(ad));
    ad.svc = g_a;
    ad.extra = &g_extra;
    h.ad = &ad;
    h.started = false;
    exp_init(&e);
    T_CHECK(paged_export(g_a, "big", 97, false, &e, start_adder, &h) == FL_OK);
    ad.stop = 1;
    T_REQUIRE(h.started);
    pthread_join(h.th, NULL);
    printf("# %d faces added during an export of %d pages\n", ad.added, e.pages);
    T_CHECK(ad.added > 0);
    /* exactly the faces there at the start, and still point-in-time */
    T_CHECK(holds_seed(&e, &g_seed, N_FACES));
    T_CHECK(json_is_true(json_object_get(e.snapshot, "PointInTime")));
    exp_fini(&e);
    /* the next export has them all */
    exp_init(&e);
    T_CHECK(paged_export(g_a, "big", 4096, false, &e, NULL, NULL) == FL_OK);
    T_CHECK_EQ_INT(
        json_integer_value(json_object_get(json_object_get(e.manifest, "Counts"), "Faces")),
        N_FACES + ad.added);
    exp_fini(&e);
}

static void delete_hook(int page, void *ud)
{
    if (page == 1) {
        json_t *r =
            call(g_a, REK("DeleteFaces"),
                 json_pack("{s:s,s:[s]}", "CollectionId", "big", "FaceIds", (char *)ud), NULL);
        json_decref(r);
    }
}

static void test_delete_during_export(void)
{
    struct exp e;
    char victim[FL_UUID_STR_LEN + 1] = "";
    json_t *faces;
    if (!g_a)
        T_SKIP("no collection A");
    /* the FaceId-last face without a user: exported on the last page */
    faces = list_all(g_a, "ListFaces", "Faces", "big");
    T_REQUIRE(faces);
    for (size_t i = json_array_size(faces); i-- > 0 && !victim[0];) {
        json_t *f = json_array_get(faces, i);
        if (!json_object_get(f, "UserId"))
            snprintf(victim, sizeof(victim), "%s", json_string_value(json_object_get(f, "FaceId")));
    }
    json_decref(faces);
    exp_init(&e);
    T_CHECK(paged_export(g_a, "big", 1000, false, &e, delete_hook, victim) == FL_OK);
    T_CHECK(json_is_false(json_object_get(e.snapshot, "PointInTime")));
    T_CHECK_EQ_INT(json_integer_value(json_object_get(e.snapshot, "ChangesDuringExport")), 1);
    T_CHECK(e.part[0].data && !strstr(e.part[0].data, victim));
    exp_fini(&e);
}

/* ------------------------- interrupted imports ------------------------- */

static void test_killed_import(void)
{
    char dir[300], iid[FL_UUID_STR_LEN + 1];
    struct fl_service *b;
    enum fl_status rc;
    json_t *r;
    pid_t pid;
    int status = 0;
    if (!g_a)
        T_SKIP("no collection A");
    new_dir(dir, sizeof(dir));
    fflush(stdout);
    pid = fork();
    T_REQUIRE(pid >= 0);
    if (pid == 0) {
        /* the child stages 2 of 5 pages, writes the ImportId, and dies */
        struct fl_service *c = open_dir(dir, "dlib");
        char path[400];
        FILE *f;
        if (!c)
            _exit(3);
        staged_import(c, &g_exp, NULL, 500, 2, iid, &rc);
        snprintf(path, sizeof(path), "%s.id", dir);
        f = fopen(path, "w");
        if (f) {
            fputs(iid, f);
            fclose(f);
        }
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    T_REQUIRE(waitpid(pid, &status, 0) == pid);
    T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    {
        char path[400];
        FILE *f;
        snprintf(path, sizeof(path), "%s.id", dir);
        f = fopen(path, "r");
        T_REQUIRE(f && fgets(iid, sizeof(iid), f));
        fclose(f);
    }
    b = open_dir(dir, "dlib");
    T_REQUIRE(b);
    /* the target is untouched: no collection, nothing to search */
    r = call(b, REK("DescribeCollection"), json_pack("{s:s}", "CollectionId", "big"), &rc);
    T_CHECK(!r && rc == FL_ERR_NOT_FOUND);
    r = call(b, EXT("DescribeImport"), json_pack("{s:s}", "ImportId", iid), &rc);
    T_CHECK(r && json_integer_value(json_object_get(r, "FacesStaged")) == 1000 &&
            strcmp(json_string_value(json_object_get(r, "Status")), "OPEN") == 0);
    json_decref(r);
    /* committing the half is refused (the manifest counts N_FACES); still untouched */
    r = call(b, EXT("CommitImport"), json_pack("{s:s}", "ImportId", iid), &rc);
    T_CHECK(!r && rc == FL_ERR_INVALID_ARG);
    r = call(b, REK("ListCollections"), json_object(), &rc);
    T_CHECK(r && json_array_size(json_object_get(r, "CollectionIds")) == 0);
    json_decref(r);
    r = call(b, EXT("AbortImport"), json_pack("{s:s}", "ImportId", iid), &rc);
    T_CHECK(r && rc == FL_OK);
    json_decref(r);
    r = call(b, EXT("CommitImport"), json_pack("{s:s}", "ImportId", iid), &rc);
    T_CHECK(!r && rc == FL_ERR_NOT_FOUND);
    /* and the retry works */
    r = staged_import(b, &g_exp, NULL, 1000, 0, iid, &rc);
    T_CHECK(r && json_integer_value(json_object_get(r, "FacesImported")) == N_FACES);
    json_decref(r);
    fl_service_close(b);
}

/* ------------------------------ errors ------------------------------ */

static void test_errors(void)
{
    char dir[300], iid[FL_UUID_STR_LEN + 1];
    struct fl_service *b, *m;
    enum fl_status rc;
    json_t *r, *first;
    const char *tok;
    if (!g_a)
        T_SKIP("no collection A");
    /* unknown ImportId */
    static const char *const ops[4] = {EXT("CommitImport"), EXT("AbortImport"),
                                       EXT("DescribeImport"), EXT("ImportFaces")};
    for (int i = 0; i < 4; i++) {
        json_t *req = json_pack("{s:s}", "ImportId", "00000000-0000-4000-8000-000000000000");
        if (i == 3)
            json_object_set_new(req, "Files", json_pack("{s:s}", "faces.jsonl", ""));
        r = call(g_a, ops[i], req, &rc);
        T_CHECK(!r && rc == FL_ERR_NOT_FOUND);
    }
    /* NextToken: damaged, foreign, or for other parameters */
    first =
        call(g_a, EXT("ExportCollection"),
             json_pack("{s:s,s:i,s:b}", "CollectionId", "big", "MaxResults", 10, "IncludeCrops", 0),
             &rc);
    T_REQUIRE(first);
    tok = json_string_value(json_object_get(first, "NextToken"));
    T_REQUIRE(tok);
    {
        char bad[1100];
        const char *cases[5];
        snprintf(bad, sizeof(bad), "%s", tok);
        bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'a' ? 'b' : 'a'; /* another FaceId */
        cases[0] = bad;
        cases[1] = "garbage";
        cases[2] = "E1.0.1.2.3.4.5.6.0123456789abcdef.";
        for (int i = 0; i < 3; i++) {
            r = call(g_a, EXT("ExportCollection"),
                     json_pack("{s:s,s:s,s:i,s:b}", "CollectionId", "big", "NextToken", cases[i],
                               "MaxResults", 10, "IncludeCrops", 0),
                     &rc);
            T_CHECK(!r && rc == FL_ERR_PAGINATION);
        }
        /* the right token with IncludeCrops changed */
        r = call(
            g_a, EXT("ExportCollection"),
            json_pack("{s:s,s:s,s:i}", "CollectionId", "big", "NextToken", tok, "MaxResults", 10),
            &rc);
        T_CHECK(!r && rc == FL_ERR_PAGINATION);
        /* and as it came: fine */
        r = call(g_a, EXT("ExportCollection"),
                 json_pack("{s:s,s:s,s:i,s:b}", "CollectionId", "big", "NextToken", tok,
                           "MaxResults", 10, "IncludeCrops", 0),
                 &rc);
        T_CHECK(r && json_integer_value(json_object_get(r, "FacesInPage")) == 10);
        json_decref(r);
    }
    json_decref(first);
    /* wrong model id / dimension: refused by StartImport, nothing written */
    new_dir(dir, sizeof(dir));
    b = open_dir(dir, "dlib");
    T_REQUIRE(b);
    for (int i = 0; i < 2; i++) {
        struct exp e = g_exp;
        json_t *man = json_deep_copy(g_exp.manifest), *fm = json_object_get(man, "FaceModel");
        if (i == 0)
            json_object_set_new(fm, "Id", json_string("no-such-model@1"));
        else
            json_object_set_new(fm, "Dimension", json_integer(DIM + 1));
        e.manifest = man;
        r = staged_import(b, &e, NULL, 1000, 0, iid, &rc);
        T_CHECK(!r && rc == FL_ERR_INVALID_ARG);
        json_decref(man);
    }
    r = call(b, REK("ListCollections"), json_object(), &rc);
    T_CHECK(r && json_array_size(json_object_get(r, "CollectionIds")) == 0);
    json_decref(r);
    fl_service_close(b);
    /* a collection of another model: refused before anything is written */
    new_dir(dir, sizeof(dir));
    m = open_dir(dir, "mobilefacenet");
    T_REQUIRE(m);
    json_decref(call(m, REK("CreateCollection"), json_pack("{s:s}", "CollectionId", "big"), &rc));
    T_CHECK(rc == FL_OK);
    r = staged_import(m, &g_exp, NULL, 1000, 0, iid, &rc);
    T_CHECK(!r && rc == FL_ERR_INVALID_ARG);
    fl_service_close(m);
    /* a page with a FaceId staged before with other content, and a commit
     * that meets a FaceId with other content: ConflictException, nothing changes */
    new_dir(dir, sizeof(dir));
    b = open_dir(dir, "dlib");
    T_REQUIRE(b);
    json_decref(call(b, REK("CreateCollection"), json_pack("{s:s}", "CollectionId", "big"), &rc));
    {
        struct seeded *one = fl_calloc(1, sizeof(*one));
        T_REQUIRE(one);
        one->n = 1;
        memcpy(one->id[0], g_seed.id[7], sizeof(one->id[0]));
        memcpy(one->v[0], g_seed.v[8], sizeof(one->v[0])); /* another vector */
        T_REQUIRE(seed_collection(b, "big", one, 0, 1) == 0);
        fl_free(one);
    }
    r = staged_import(b, &g_exp, NULL, 1000, 0, iid, &rc);
    T_CHECK(!r && rc == FL_ERR_CONFLICT);
    r = call(b, REK("DescribeCollection"), json_pack("{s:s}", "CollectionId", "big"), &rc);
    T_CHECK(r && json_integer_value(json_object_get(r, "FaceCount")) == 1 &&
            json_integer_value(json_object_get(r, "UserCount")) == 0);
    json_decref(r);
    json_decref(call(b, EXT("AbortImport"), json_pack("{s:s}", "ImportId", iid), &rc));
    fl_service_close(b);
}

/* ------------------------------ torture ------------------------------ */

static void test_torture(void)
{
    char dir[300], iid[FL_UUID_STR_LEN + 1];
    struct fl_service *s;
    struct exp small;
    enum fl_status rc;
    json_t *r;
    long n, fails = 0;
    if (!g_a)
        T_SKIP("no collection A");
    new_dir(dir, sizeof(dir));
    s = open_dir(dir, "dlib");
    T_REQUIRE(s);
    json_decref(call(s, REK("CreateCollection"), json_pack("{s:s}", "CollectionId", "t"), &rc));
    T_REQUIRE(seed_collection(s, "t", &g_seed, 0, 30) == 0);
    exp_init(&small);
    T_REQUIRE(paged_export(s, "t", 7, true, &small, NULL, NULL) == FL_OK);
    /* an export page: fails cleanly or answers */
    rc = FL_ERR_NOMEM;
    for (n = 1; n < 100000 && rc != FL_OK; n++) {
        const char *body = "{\"CollectionId\":\"t\",\"MaxResults\":7}";
        char *out = NULL;
        size_t len;
        struct fl_err err;
        fl_test_fail_alloc_at(n);
        rc = fl_service_call(s, EXT("ExportCollection"), body, strlen(body), &out, &len, &err);
        fl_test_fail_alloc_at(0);
        fl_free_string(out);
        if (rc != FL_OK && rc != FL_ERR_NOMEM && rc != FL_ERR_INVALID_ARG &&
            rc != FL_ERR_SERIALIZATION && rc != FL_ERR_STORE && rc != FL_ERR_INTERNAL) {
            printf("# export page: failure %ld gave %s: %s\n", n, fl_status_exception(rc), err.msg);
            T_CHECK(0);
            break;
        }
    }
    T_CHECK_EQ_INT(rc, FL_OK);
    printf("# export page: answered after %ld injected failures\n", n - 1);
    fl_service_close(s);
    /* CommitImport into a fresh dir: until it answers, nothing is there */
    new_dir(dir, sizeof(dir));
    s = open_dir(dir, "dlib");
    T_REQUIRE(s);
    r = staged_import(s, &small, NULL, 10, 3, iid, &rc); /* every face staged, no commit */
    T_CHECK(!r);
    {
        char *b = fl_base64(small.part[2].data, small.part[2].len);
        json_decref(call(s, EXT("ImportFaces"),
                         json_pack("{s:s,s:{s:s}}", "ImportId", iid, "Files", "users.jsonl", b),
                         &rc));
        fl_free(b);
    }
    rc = FL_ERR_NOMEM;
    for (n = 1; n < 100000 && rc != FL_OK; n++) {
        char body[128], *out = NULL;
        size_t len;
        struct fl_err err;
        snprintf(body, sizeof(body), "{\"ImportId\":\"%s\"}", iid);
        fl_test_fail_alloc_at(n);
        rc = fl_service_call(s, EXT("CommitImport"), body, strlen(body), &out, &len, &err);
        fl_test_fail_alloc_at(0);
        fl_free_string(out);
        if (rc == FL_OK)
            break;
        fails++;
        r = call(s, EXT("DescribeImport"), json_pack("{s:s}", "ImportId", iid), NULL);
        if (r && strcmp(json_string_value(json_object_get(r, "Status")), "OPEN") == 0) {
            /* not committed: the collection must not be visible */
            json_t *d =
                call(s, REK("DescribeCollection"), json_pack("{s:s}", "CollectionId", "t"), &rc);
            if (d) {
                printf("# commit failure %ld left a visible collection\n", n);
                T_CHECK(0);
            }
            json_decref(d);
            rc = FL_ERR_NOMEM;
        }
        json_decref(r);
    }
    T_CHECK_EQ_INT(rc, FL_OK);
    printf("# commit: %ld injected failures before it answered\n", fails);
    {
        json_t *fa = list_all(s, "ListFaces", "Faces", "t");
        T_CHECK(fa && json_array_size(fa) == 30);
        json_decref(fa);
    }
    exp_fini(&small);
    fl_service_close(s);
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_ERROR, false);
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_root, sizeof(g_root), "%s/fl-export-paged-XXXXXX", tmp);
    if (!mkdtemp(g_root)) {
        printf("# mkdtemp failed\n");
        return 1;
    }
    make_faces(&g_seed, N_FACES, 7);
    T_RUN(test_paged_equals_whole);
    T_RUN(test_round_trip);
    T_RUN(test_concurrent_additions);
    T_RUN(test_delete_during_export);
    T_RUN(test_killed_import);
    T_RUN(test_errors);
    T_RUN(test_torture);
    exp_fini(&g_exp);
    fl_service_close(g_a);
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", g_root);
    }
    return t_done();
}
