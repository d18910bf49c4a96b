/* test_api_sequence.c: random operation sequences against an in-test model.
 *
 * A seeded random walk inserts faces (directly through the store hook, since
 * IndexFaces needs the face engine), deletes faces, creates and deletes
 * users, associates and disassociates faces and searches, on two
 * collections, while a plain C model of the expected state is kept alongside.
 * After every step the observable state (paged ListFaces, ListUsers,
 * DescribeCollection counts) is compared with the model; every search is
 * compared with a brute-force double-precision search over the model's
 * vectors mapped through fl__api_similarity(). Calls that must fail (unknown
 * user, face of another user...) are issued too, and the next comparison
 * proves they changed nothing.
 *
 * Also: allocation torture over a few operations (every allocation failure
 * point either succeeds or fails cleanly, leaves the state unchanged and
 * leaks nothing) and ListCollections pagination. */
#include "t.h"
#include "api/api.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>

T_MAIN_STATE;

#define DIM        128
#define MAX_FACES  64
#define MAX_USERS  8
#define N_CLUSTERS 6

struct mface {
    bool live;
    char id[FL_UUID_STR_LEN + 1];
    int user; /* -1 = none */
    double v[DIM];
};

struct mcoll {
    const char *name;
    struct mface faces[MAX_FACES];
    bool user_live[MAX_USERS];
};

static struct mcoll colls[2] = {{.name = "seq-a"}, {.name = "seq-b"}};
static double centers[N_CLUSTERS][DIM];
static struct fl_rng rng;

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        remove(p);
    }
    if (d)
        closedir(d);
    remove(dir);
}

static struct fl_service *open_dir(const char *dir)
{
    struct fl_service_config cfg;
    struct fl_err err;
    struct fl_service *svc;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.default_model = "dlib"; /* the in-test model keeps 128-d vectors, Euclidean */
    cfg.n_workers = 2;
    svc = fl_service_open(&cfg, &err);
    if (!svc)
        printf("# open: %s\n", err.msg);
    return svc;
}

static json_t *call(struct fl_service *svc, const char *op, json_t *body, enum fl_status *out_rc)
{
    char target[128], *txt, *out = NULL;
    size_t n = 0;
    struct fl_err err;
    enum fl_status rc;
    json_t *r = NULL;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = fl_service_call(svc, target, txt, strlen(txt), &out, &n, &err);
    fl_free(txt);
    if (rc == FL_OK)
        r = json_loadb(out, n, 0, NULL);
    fl_free_string(out);
    if (out_rc)
        *out_rc = rc;
    if (rc != FL_OK && !out_rc)
        printf("# %s failed: %s %s\n", op, fl_status_exception(rc), err.msg);
    return r;
}

static void user_name(int u, char *out)
{
    snprintf(out, 16, "user-%d", u);
}

/* ------------------------------ seeding hook ------------------------------ */

struct seed_ud {
    struct mcoll *mc;
    int slot;
};

static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct seed_ud *s = ud;
    struct fl__api_coll *c;
    struct fl_store_face f;
    float v[DIM];
    enum fl_status rc = fl__api_coll_require(ctx->svc, s->mc->name, &c, err);
    if (rc != FL_OK)
        return rc;
    memset(&f, 0, sizeof(f));
    for (int k = 0; k < DIM; k++)
        v[k] = (float)s->mc->faces[s->slot].v[k];
    memcpy(f.face_id, s->mc->faces[s->slot].id, sizeof(f.face_id));
    memcpy(f.image_id, "11111111-2222-5333-8444-555555555555", 37);
    f.bbox.width = f.bbox.height = 0.5f;
    f.confidence = 99.0f;
    f.model_version = c->model->face_model_version;
    f.embedding = v;
    f.dim = DIM;
    return fl__api_faces_commit(ctx, c, &f, 1, err);
}

static void new_face_vector(double *v)
{
    int k0 = (int)(fl_rng_next(&rng) % N_CLUSTERS);
    for (int k = 0; k < DIM; k++)
        v[k] = centers[k0][k] + (fl_rng_double(&rng) - 0.5) * 0.06;
    /* store and index see float32; the model uses the same rounded values */
    for (int k = 0; k < DIM; k++)
        v[k] = (double)(float)v[k];
}

/* ------------------------------- the checks ------------------------------- */

static int n_live_faces(const struct mcoll *mc)
{
    int n = 0;
    for (int i = 0; i < MAX_FACES; i++)
        n += mc->faces[i].live;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_state(struct fl_service *svc, const struct mcoll *mc, int step)
{
    const char *want_ids[MAX_FACES];
    int n_want = 0, n_got = 0, n_users = 0;
    json_t *token = NULL, *r;
    int page_size = 1 + (int)(fl_rng_next(&rng) % 7);
    for (int i = 0; i < MAX_FACES; i++)
        if (mc->faces[i].live)
            want_ids[n_want++] = mc->faces[i].id;
    qsort(want_ids, (size_t)n_want, sizeof(want_ids[0]), cmp_str);
    /* ListFaces, walked page by page */
    for (int pages = 0; pages < 200; pages++) {
        json_t *b = json_pack("{s:s,s:i}", "CollectionId", mc->name, "MaxResults", page_size);
        json_t *faces, *f;
        size_t i;
        if (token)
            json_object_set(b, "NextToken", token);
        json_decref(token);
        token = NULL;
        r = call(svc, "ListFaces", b, NULL);
        T_REQUIRE(r != NULL);
        faces = json_object_get(r, "Faces");
        T_CHECK(json_array_size(faces) <= (size_t)page_size);
        json_array_foreach(faces, i, f)
        {
            const char *fid = json_string_value(json_object_get(f, "FaceId"));
            const char *uid = json_string_value(json_object_get(f, "UserId"));
            int slot = -1;
            if (n_got >= n_want || strcmp(fid, want_ids[n_got]) != 0) {
                printf("# step %d %s: ListFaces #%d is %s\n", step, mc->name, n_got, fid);
                t_g.cur_failed++;
                json_decref(r);
                return;
            }
            for (int s = 0; s < MAX_FACES; s++)
                if (mc->faces[s].live && strcmp(mc->faces[s].id, fid) == 0)
                    slot = s;
            if (mc->faces[slot].user >= 0) {
                char un[16];
                user_name(mc->faces[slot].user, un);
                T_CHECK(uid && strcmp(uid, un) == 0);
            } else {
                T_CHECK(uid == NULL);
            }
            n_got++;
        }
        token = json_incref(json_object_get(r, "NextToken"));
        json_decref(r);
        if (!token)
            break;
    }
    json_decref(token);
    T_CHECK_EQ_INT(n_got, n_want);
    /* users and their status */
    r = call(svc, "ListUsers", json_pack("{s:s}", "CollectionId", mc->name), NULL);
    T_REQUIRE(r != NULL);
    for (int u = 0; u < MAX_USERS; u++) {
        char un[16];
        bool has = false, found = false;
        size_t i;
        json_t *x;
        if (!mc->user_live[u])
            continue;
        n_users++;
        user_name(u, un);
        for (int s = 0; s < MAX_FACES; s++)
            if (mc->faces[s].live && mc->faces[s].user == u)
                has = true;
        json_array_foreach(json_object_get(r, "Users"), i, x)
        {
            if (strcmp(json_string_value(json_object_get(x, "UserId")), un) == 0) {
                found = true;
                T_CHECK_EQ_STR(json_string_value(json_object_get(x, "UserStatus")),
                               has ? "ACTIVE" : "CREATED");
            }
        }
        T_CHECK(found);
    }
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "Users")), n_users);
    json_decref(r);
    r = call(svc, "DescribeCollection", json_pack("{s:s}", "CollectionId", mc->name), NULL);
    T_REQUIRE(r != NULL);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "FaceCount")), n_live_faces(mc));
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "UserCount")), n_users);
    json_decref(r);
}

struct scored {
    int slot;
    double sim;
};

static int cmp_scored(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    return x->sim > y->sim ? -1 : x->sim < y->sim ? 1 : 0;
}

static double model_sim(const double *a, const double *b)
{
    double d = 0;
    for (int k = 0; k < DIM; k++)
        d += (a[k] - b[k]) * (a[k] - b[k]);
    return fl__api_similarity("dlib", (float)d);
}

static void check_search(struct fl_service *svc, const struct mcoll *mc, int q, int step)
{
    static const double thrs[] = {0, 50, 80, 95};
    double thr = thrs[fl_rng_next(&rng) % 4];
    int max_faces = (fl_rng_next(&rng) % 2) ? 4096 : 1 + (int)(fl_rng_next(&rng) % 5);
    struct scored e[MAX_FACES];
    int n_e = 0;
    json_t *r, *m;
    size_t n_a;
    for (int s = 0; s < MAX_FACES; s++) {
        double sim;
        if (!mc->faces[s].live || s == q)
            continue;
        sim = model_sim(mc->faces[q].v, mc->faces[s].v);
        if (sim >= thr - 1e-3) {
            e[n_e].slot = s;
            e[n_e].sim = sim;
            n_e++;
        }
    }
    qsort(e, (size_t)n_e, sizeof(e[0]), cmp_scored);
    r = call(svc, "SearchFaces",
             json_pack("{s:s,s:s,s:f,s:i}", "CollectionId", mc->name, "FaceId", mc->faces[q].id,
                       "FaceMatchThreshold", thr, "MaxFaces", max_faces),
             NULL);
    T_REQUIRE(r != NULL);
    m = json_object_get(r, "FaceMatches");
    n_a = json_array_size(m);
    /* counts agree unless an expected face sits on the threshold */
    {
        int n_sure = 0;
        for (int i = 0; i < n_e; i++)
            n_sure += e[i].sim >= thr + 1e-3;
        n_sure = n_sure < max_faces ? n_sure : max_faces;
        if ((int)n_a < n_sure || (int)n_a > (n_e < max_faces ? n_e : max_faces)) {
            printf("# step %d search %s thr %g max %d: got %zu matches, want %d..%d\n", step,
                   mc->name, thr, max_faces, n_a, n_sure, n_e);
            t_g.cur_failed++;
        }
    }
    for (size_t i = 0; i < n_a && (int)i < n_e; i++) {
        json_t *x = json_array_get(m, i);
        double got = json_number_value(json_object_get(x, "Similarity"));
        const char *fid = json_string_value(json_object_get(json_object_get(x, "Face"), "FaceId"));
        /* rank by rank the similarities agree; the face too unless tied */
        T_CHECK_NEAR(got, e[i].sim, 1e-3);
        if (strcmp(fid, mc->faces[e[i].slot].id) != 0 &&
            !((int)i + 1 < n_e && fabs(e[i].sim - e[i + 1].sim) < 1e-3) &&
            !(i > 0 && fabs(e[i].sim - e[i - 1].sim) < 1e-3)) {
            printf("# step %d: rank %zu is %s, want %s\n", step, i, fid, mc->faces[e[i].slot].id);
            t_g.cur_failed++;
        }
        T_CHECK(got >= thr);
        if (fid && strcmp(fid, mc->faces[q].id) == 0) {
            printf("# step %d: search returned the query face\n", step);
            t_g.cur_failed++;
        }
    }
    json_decref(r);
}

/* ------------------------------- the walk ------------------------------- */

static int random_live(const struct mcoll *mc)
{
    int n = n_live_faces(mc), k;
    if (n == 0)
        return -1;
    k = (int)(fl_rng_next(&rng) % (uint64_t)n);
    for (int s = 0; s < MAX_FACES; s++)
        if (mc->faces[s].live && k-- == 0)
            return s;
    return -1;
}

static void step_once(struct fl_service *svc, struct mcoll *mc, int step)
{
    int what = (int)(fl_rng_next(&rng) % 10);
    enum fl_status rc;
    json_t *r;
    char un[16];
    int u = (int)(fl_rng_next(&rng) % MAX_USERS);
    user_name(u, un);
    if (what <= 2) { /* add a face */
        int slot = -1;
        struct seed_ud ud;
        struct fl_err err;
        for (int s = 0; s < MAX_FACES; s++)
            if (!mc->faces[s].live) {
                slot = s;
                break;
            }
        if (slot < 0)
            return;
        fl_uuid_v4(mc->faces[slot].id, NULL);
        new_face_vector(mc->faces[slot].v);
        mc->faces[slot].user = -1;
        ud.mc = mc;
        ud.slot = slot;
        rc = fl__api_with_ctx(svc, seed_fn, &ud, &err);
        T_CHECK_EQ_INT(rc, FL_OK);
        if (rc == FL_OK)
            mc->faces[slot].live = true;
    } else if (what == 3) { /* delete some faces, plus an unknown id */
        json_t *ids = json_array();
        int a = random_live(mc), b = random_live(mc);
        bool del_a = false, del_b = false;
        if (a >= 0)
            json_array_append_new(ids, json_string(mc->faces[a].id));
        if (b >= 0 && b != a)
            json_array_append_new(ids, json_string(mc->faces[b].id));
        json_array_append_new(ids, json_string("ffffffff-0000-4000-8000-000000000000"));
        r = call(svc, "DeleteFaces",
                 json_pack("{s:s,s:o}", "CollectionId", mc->name, "FaceIds", ids), NULL);
        T_REQUIRE(r != NULL);
        del_a = a >= 0 && mc->faces[a].user < 0;
        del_b = b >= 0 && b != a && mc->faces[b].user < 0;
        T_CHECK_EQ_INT(json_array_size(json_object_get(r, "DeletedFaces")), del_a + del_b);
        T_CHECK_EQ_INT(json_array_size(json_object_get(r, "UnsuccessfulFaceDeletions")),
                       (a >= 0) + (b >= 0 && b != a) + 1 - del_a - del_b);
        if (del_a)
            mc->faces[a].live = false;
        if (del_b)
            mc->faces[b].live = false;
        json_decref(r);
    } else if (what == 4) { /* create user */
        r = call(svc, "CreateUser", json_pack("{s:s,s:s}", "CollectionId", mc->name, "UserId", un),
                 &rc);
        T_CHECK_EQ_INT(rc, mc->user_live[u] ? FL_ERR_CONFLICT : FL_OK);
        mc->user_live[u] = true;
        json_decref(r);
    } else if (what == 5) { /* delete user: its faces lose their user */
        r = call(svc, "DeleteUser", json_pack("{s:s,s:s}", "CollectionId", mc->name, "UserId", un),
                 &rc);
        T_CHECK_EQ_INT(rc, mc->user_live[u] ? FL_OK : FL_ERR_NOT_FOUND);
        if (mc->user_live[u])
            for (int s = 0; s < MAX_FACES; s++)
                if (mc->faces[s].user == u)
                    mc->faces[s].user = -1;
        mc->user_live[u] = false;
        json_decref(r);
    } else if (what == 6) { /* associate one face, threshold 0 */
        int a = random_live(mc);
        if (a < 0)
            return;
        r = call(svc, "AssociateFaces",
                 json_pack("{s:s,s:s,s:[s],s:f}", "CollectionId", mc->name, "UserId", un, "FaceIds",
                           mc->faces[a].id, "UserMatchThreshold", 0.0),
                 &rc);
        if (!mc->user_live[u]) {
            T_CHECK_EQ_INT(rc, FL_ERR_NOT_FOUND);
        } else {
            T_CHECK_EQ_INT(rc, FL_OK);
            if (rc == FL_OK) {
                size_t n_ok = json_array_size(json_object_get(r, "AssociatedFaces"));
                size_t n_bad = json_array_size(json_object_get(r, "UnsuccessfulFaceAssociations"));
                if (mc->faces[a].user == u) {
                    T_CHECK(n_ok == 0 && n_bad == 0);
                } else if (mc->faces[a].user >= 0) {
                    T_CHECK(n_ok == 0 && n_bad == 1);
                } else {
                    T_CHECK(n_ok == 1 && n_bad == 0);
                    mc->faces[a].user = u;
                }
            }
        }
        json_decref(r);
    } else if (what == 7) { /* disassociate one face */
        int a = random_live(mc);
        if (a < 0)
            return;
        r = call(svc, "DisassociateFaces",
                 json_pack("{s:s,s:s,s:[s]}", "CollectionId", mc->name, "UserId", un, "FaceIds",
                           mc->faces[a].id),
                 &rc);
        if (!mc->user_live[u]) {
            T_CHECK_EQ_INT(rc, FL_ERR_NOT_FOUND);
        } else {
            T_CHECK_EQ_INT(rc, FL_OK);
            if (rc == FL_OK) {
                size_t n_ok = json_array_size(json_object_get(r, "DisassociatedFaces"));
                T_CHECK_EQ_INT(n_ok, mc->faces[a].user == u);
                if (mc->faces[a].user == u)
                    mc->faces[a].user = -1;
            }
        }
        json_decref(r);
    } else { /* search */
        int q = random_live(mc);
        if (q >= 0)
            check_search(svc, mc, q, step);
    }
}

static void test_random_sequence(void)
{
    char dir[] = "/tmp/fl_api_seq_XXXXXX";
    struct fl_service *svc;
    json_t *r;
    /* FL_SEQ_STEPS / FL_SEQ_SEED make a long soak run (e.g. under the
     * sanitizers: FL_SEQ_STEPS=20000 build-address-undefined/tests/test_api_sequence
     * random_sequence); the defaults keep make test quick. */
    const char *env_steps = getenv("FL_SEQ_STEPS"), *env_seed = getenv("FL_SEQ_SEED");
    long n_steps = env_steps ? strtol(env_steps, NULL, 10) : 600;
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 10) : 20261128;
    printf("# random sequence: %ld steps, seed %llu\n", n_steps, (unsigned long long)seed);
    fl_rng_seed(&rng, seed);
    for (int c = 0; c < N_CLUSTERS; c++)
        for (int k = 0; k < DIM; k++)
            centers[c][k] = (fl_rng_double(&rng) - 0.5) * 0.3;
    T_REQUIRE(mkdtemp(dir) != NULL);
    svc = open_dir(dir);
    T_REQUIRE(svc != NULL);
    for (int c = 0; c < 2; c++) {
        r = call(svc, "CreateCollection", json_pack("{s:s}", "CollectionId", colls[c].name), NULL);
        T_REQUIRE(r != NULL);
        json_decref(r);
    }
    for (int step = 0; step < n_steps && !t_g.cur_failed; step++) {
        struct mcoll *mc = &colls[fl_rng_next(&rng) % 2];
        step_once(svc, mc, step);
        if (step % 5 == 0)
            check_state(svc, mc, step);
        if (step == 300) {
            /* reopen: the indexes are rebuilt from the store */
            fl_service_close(svc);
            svc = open_dir(dir);
            T_REQUIRE(svc != NULL);
        }
    }
    for (int c = 0; c < 2; c++) {
        check_state(svc, &colls[c], -1);
        for (int s = 0; s < MAX_FACES; s++)
            if (colls[c].faces[s].live)
                check_search(svc, &colls[c], s, -1);
    }
    fl_service_close(svc);
    rm_rf(dir);
}

/* ListCollections pages chain through NextToken without loss or repeats. */
static void test_list_collections_pages(void)
{
    char dir[] = "/tmp/fl_api_lc_XXXXXX";
    struct fl_service *svc;
    json_t *token = NULL;
    int seen = 0;
    char prev[64] = "";
    T_REQUIRE(mkdtemp(dir) != NULL);
    svc = open_dir(dir);
    T_REQUIRE(svc != NULL);
    for (int i = 0; i < 23; i++) {
        char id[32];
        snprintf(id, sizeof(id), "coll-%02d", (i * 7) % 23);
        json_decref(call(svc, "CreateCollection", json_pack("{s:s}", "CollectionId", id), NULL));
    }
    for (int pages = 0; pages < 50; pages++) {
        json_t *b = json_pack("{s:i}", "MaxResults", 4), *r, *ids, *x;
        size_t i;
        if (token)
            json_object_set(b, "NextToken", token);
        json_decref(token);
        r = call(svc, "ListCollections", b, NULL);
        T_REQUIRE(r != NULL);
        ids = json_object_get(r, "CollectionIds");
        T_CHECK_EQ_INT(json_array_size(ids),
                       json_array_size(json_object_get(r, "FaceModelVersions")));
        json_array_foreach(ids, i, x)
        {
            T_CHECK(strcmp(prev, json_string_value(x)) < 0);
            snprintf(prev, sizeof(prev), "%s", json_string_value(x));
            seen++;
        }
        token = json_incref(json_object_get(r, "NextToken"));
        json_decref(r);
        if (!token)
            break;
    }
    T_CHECK_EQ_INT(seen, 23);
    fl_service_close(svc);
    rm_rf(dir);
}

/* Allocation torture: fail the n-th allocation of a call for every n until
 * the call succeeds; each failing run must leave the state unchanged. */
static json_t *snapshot(struct fl_service *svc)
{
    json_t *s = json_object();
    json_object_set_new(s, "f",
                        call(svc, "ListFaces", json_pack("{s:s}", "CollectionId", "t"), NULL));
    json_object_set_new(s, "u",
                        call(svc, "ListUsers", json_pack("{s:s}", "CollectionId", "t"), NULL));
    json_object_set_new(s, "c", call(svc, "ListCollections", json_object(), NULL));
    return s;
}

static void torture_one(struct fl_service *svc, const char *op, const char *body)
{
    char target[96];
    int n_fail = 0;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    for (long n = 1; n < 100000; n++) {
        json_t *before = snapshot(svc), *after;
        char *out = NULL;
        size_t len;
        struct fl_err err;
        enum fl_status rc;
        fl_test_fail_alloc_at(n);
        rc = fl_service_call(svc, target, body, strlen(body), &out, &len, &err);
        fl_test_fail_alloc_at(0);
        if (rc == FL_OK) {
            fl_free_string(out);
            json_decref(before);
            printf("# %s: succeeded after %d injected failures\n", op, n_fail);
            return;
        }
        n_fail++;
        /* jansson's lexer drops a character when its buffer cannot grow
         * (lex_save ignores the append result), so an injected failure
         * during parsing can also surface as a validation error. */
        if (rc != FL_ERR_NOMEM && rc != FL_ERR_SERIALIZATION && rc != FL_ERR_STORE &&
            rc != FL_ERR_INTERNAL && rc != FL_ERR_IO && rc != FL_ERR_INVALID_ARG) {
            printf("# %s: failure %ld gave %s: %s\n", op, n, fl_status_exception(rc), err.msg);
            t_g.cur_failed++;
        }
        after = snapshot(svc);
        if (!json_equal(before, after)) {
            printf("# %s: failure at allocation %ld changed the state (%s)\n", op, n, err.msg);
            t_g.cur_failed++;
        }
        json_decref(before);
        json_decref(after);
        if (t_g.cur_failed)
            return;
    }
}

/* Leaks are checked over the whole service lifetime (SQLite, whose heap goes
 * through fl_malloc, keeps page caches across calls, so a per-call count
 * would flag caches). */
static void test_alloc_torture(void)
{
    char dir[] = "/tmp/fl_api_tort_XXXXXX";
    struct fl_service *svc;
    long base = fl_alloc_live();
    T_REQUIRE(mkdtemp(dir) != NULL);
    svc = open_dir(dir);
    T_REQUIRE(svc != NULL);
    json_decref(call(svc, "CreateCollection", json_pack("{s:s}", "CollectionId", "t"), NULL));
    {
        struct seed_ud ud = {&colls[0], 0};
        struct fl_err err;
        colls[0].name = "t";
        for (int s = 0; s < 3; s++) {
            fl_uuid_v4(colls[0].faces[s].id, NULL);
            for (int k = 0; k < DIM; k++)
                colls[0].faces[s].v[k] = (s == 0 ? 1.0 : 0.9) * (k == s ? 1.0 : 0.01);
            ud.slot = s;
            T_CHECK_EQ_INT(fl__api_with_ctx(svc, seed_fn, &ud, &err), FL_OK);
        }
    }
    torture_one(svc, "CreateUser", "{\"CollectionId\":\"t\",\"UserId\":\"u1\"}");
    {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"CollectionId\":\"t\",\"UserId\":\"u1\",\"FaceIds\":[\"%s\"]}",
                 colls[0].faces[0].id);
        torture_one(svc, "AssociateFaces", body);
        snprintf(body, sizeof(body), "{\"CollectionId\":\"t\",\"FaceId\":\"%s\"}",
                 colls[0].faces[0].id);
        torture_one(svc, "SearchFaces", body);
        snprintf(body, sizeof(body), "{\"CollectionId\":\"t\",\"FaceIds\":[\"%s\",\"%s\"]}",
                 colls[0].faces[1].id, colls[0].faces[0].id);
        torture_one(svc, "DeleteFaces", body);
    }
    torture_one(svc, "CreateCollection", "{\"CollectionId\":\"t2\",\"Tags\":{\"a\":\"b\"}}");
    torture_one(svc, "DeleteCollection", "{\"CollectionId\":\"t2\"}");
    fl_service_close(svc);
    rm_rf(dir);
    T_CHECK_EQ_INT(fl_alloc_live(), base);
}

/* Concurrency: readers search and list while a writer adds and deletes
 * faces and users. Every reader answer must be a success or a
 * ResourceNotFoundException for a face deleted meanwhile; counts seen by
 * DescribeCollection never exceed what the writer ever made. Meant to run
 * under ThreadSanitizer too (SAN=thread). */
#define CONC_FACES 40

struct conc {
    struct fl_service *svc;
    char ids[CONC_FACES][FL_UUID_STR_LEN + 1];
    int bad;
    int seed;
};

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    struct fl_rng r;
    fl_rng_seed(&r, (uint64_t)__atomic_fetch_add(&c->seed, 1, __ATOMIC_RELAXED));
    for (int i = 0; i < 150; i++) {
        enum fl_status rc;
        json_t *x;
        int k = (int)(fl_rng_next(&r) % CONC_FACES);
        if (i % 3 == 0)
            x = call(c->svc, "SearchFaces",
                     json_pack("{s:s,s:s,s:f}", "CollectionId", "conc", "FaceId", c->ids[k],
                               "FaceMatchThreshold", 0.0),
                     &rc);
        else if (i % 3 == 1)
            x = call(c->svc, "ListFaces",
                     json_pack("{s:s,s:i}", "CollectionId", "conc", "MaxResults", 7), &rc);
        else
            x = call(c->svc, "DescribeCollection", json_pack("{s:s}", "CollectionId", "conc"), &rc);
        if (rc != FL_OK && rc != FL_ERR_NOT_FOUND)
            __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
        if (rc == FL_OK && i % 3 == 2 &&
            json_integer_value(json_object_get(x, "FaceCount")) > CONC_FACES)
            __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
        json_decref(x);
    }
    return NULL;
}

struct conc_seed {
    const char *id;
    float v[DIM];
};

static enum fl_status conc_seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct conc_seed *s = ud;
    struct fl__api_coll *c;
    struct fl_store_face f;
    enum fl_status rc = fl__api_coll_require(ctx->svc, "conc", &c, err);
    if (rc != FL_OK)
        return rc;
    memset(&f, 0, sizeof(f));
    memcpy(f.face_id, s->id, sizeof(f.face_id));
    memcpy(f.image_id, "11111111-2222-5333-8444-555555555555", 37);
    f.bbox.width = f.bbox.height = 0.5f;
    f.confidence = 99.0f;
    f.model_version = c->model->face_model_version;
    f.embedding = s->v;
    f.dim = DIM;
    return fl__api_faces_commit(ctx, c, &f, 1, err);
}

static void test_concurrent(void)
{
    char dir[] = "/tmp/fl_api_conc_XXXXXX";
    struct conc c;
    pthread_t th[3];
    struct fl_rng r;
    memset(&c, 0, sizeof(c));
    T_REQUIRE(mkdtemp(dir) != NULL);
    c.svc = open_dir(dir);
    T_REQUIRE(c.svc != NULL);
    json_decref(call(c.svc, "CreateCollection", json_pack("{s:s}", "CollectionId", "conc"), NULL));
    json_decref(call(c.svc, "CreateUser",
                     json_pack("{s:s,s:s}", "CollectionId", "conc", "UserId", "u"), NULL));
    fl_rng_seed(&r, 99);
    for (int i = 0; i < CONC_FACES; i++)
        fl_uuid_v4(c.ids[i], NULL);
    for (int t = 0; t < 3; t++)
        pthread_create(&th[t], NULL, conc_reader, &c);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CONC_FACES; i++) {
            struct conc_seed s;
            struct fl_err err;
            s.id = c.ids[i];
            for (int k = 0; k < DIM; k++)
                s.v[k] = (float)(fl_rng_double(&r) - 0.5);
            T_CHECK_EQ_INT(fl__api_with_ctx(c.svc, conc_seed_fn, &s, &err), FL_OK);
            if (i % 4 == 0)
                json_decref(call(c.svc, "AssociateFaces",
                                 json_pack("{s:s,s:s,s:[s],s:f}", "CollectionId", "conc", "UserId",
                                           "u", "FaceIds", c.ids[i], "UserMatchThreshold", 0.0),
                                 NULL));
        }
        json_decref(call(c.svc, "DeleteUser",
                         json_pack("{s:s,s:s}", "CollectionId", "conc", "UserId", "u"), NULL));
        for (int i = 0; i < CONC_FACES; i++)
            json_decref(call(c.svc, "DeleteFaces",
                             json_pack("{s:s,s:[s]}", "CollectionId", "conc", "FaceIds", c.ids[i]),
                             NULL));
        json_decref(call(c.svc, "CreateUser",
                         json_pack("{s:s,s:s}", "CollectionId", "conc", "UserId", "u"), NULL));
    }
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    T_CHECK_EQ_INT(c.bad, 0);
    fl_service_close(c.svc);
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_OFF, false);
    T_RUN(test_random_sequence);
    T_RUN(test_list_collections_pages);
    T_RUN(test_alloc_torture);
    T_RUN(test_concurrent);
    return t_done();
}
