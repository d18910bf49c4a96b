/* test_api_snapshot.c: index snapshots (src/api/snapshot.c) through the
 * service: a collection above the HNSW threshold is saved at close and loaded
 * at the next open, graph included, so the search answers are identical; a
 * stale snapshot (written before a later change) and a damaged one are
 * refused and the index is rebuilt from the store; one whose generation
 * matches but whose content does not (a vector changed, a face the store no
 * longer has) is repaired row by row. Each time: every stored face with its
 * exact vector, the deleted one absent (a rebuilt graph is another graph, so
 * approximate answers may differ: content is what is compared); a small
 * collection gets no snapshot. No models needed: faces are committed with
 * seeded vectors through the api layer's commit path (as IndexFaces does). */
#include "t.h"
#include "api/api.h"
#include "index/index.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

T_MAIN_STATE;

#define N_BIG 20010 /* above the HNSW threshold (20,000, index.h), also after a delete */
#define DIM   128

static char g_dir[64];
static float *g_vecs;  /* N_BIG x DIM, seeded */
static int64_t *g_keys;
static char (*g_ids)[FL_UUID_STR_LEN + 1];

static struct fl_service *open_svc(void)
{
    struct fl_service_config cfg = {0};
    struct fl_err e;
    struct fl_service *s;
    cfg.data_dir = g_dir;
    cfg.default_model = "dlib";
    s = fl_service_open(&cfg, &e);
    if (!s)
        printf("# open: %s\n", e.msg);
    return s;
}

struct seed {
    const char *coll;
    int n;
};

static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct seed *sd = ud;
    struct fl__api_coll *c = NULL;
    struct fl_store_face *f = calloc((size_t)sd->n, sizeof(*f));
    enum fl_status rc = fl__api_coll_require(ctx->svc, sd->coll, &c, err);
    for (int i = 0; rc == FL_OK && i < sd->n; i++) {
        fl_uuid_v4(g_ids[i], NULL);
        memcpy(f[i].face_id, g_ids[i], sizeof(f[i].face_id));
        fl_uuid_v4(f[i].image_id, NULL);
        f[i].bbox.width = f[i].bbox.height = 0.5f;
        f[i].confidence = 99.0f;
        f[i].model_version = c->model->face_model_version;
        f[i].embedding = g_vecs + (size_t)i * DIM;
        f[i].dim = DIM;
    }
    if (rc == FL_OK)
        rc = fl__api_faces_commit(ctx, c, f, (size_t)sd->n, err);
    for (int i = 0; rc == FL_OK && i < sd->n; i++)
        g_keys[i] = f[i].key;
    free(f);
    return rc;
}

static json_t *call(struct fl_service *s, const char *op, const char *body)
{
    char target[128], *out = NULL;
    size_t n = 0;
    struct fl_err e;
    json_t *r = NULL;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    if (fl_service_call(s, target, body, strlen(body), &out, &n, &e) == FL_OK)
        r = json_loads(out, 0, NULL);
    else
        printf("# %s: %s\n", op, e.msg);
    fl_free_string(out);
    return r;
}

/* SearchFaces answers for a few faces, as one string (ids and similarities). */
static char *answers(struct fl_service *s)
{
    json_t *all = json_array();
    char *txt;
    for (int q = 0; q < 5; q++) {
        char body[256];
        json_t *r;
        snprintf(body, sizeof(body),
                 "{\"CollectionId\":\"big\",\"FaceId\":\"%s\",\"MaxFaces\":10,"
                 "\"FaceMatchThreshold\":0}",
                 g_ids[q * 3001]);
        r = call(s, "SearchFaces", body);
        json_array_append_new(all, r ? json_incref(json_object_get(r, "FaceMatches")) : json_null());
        json_decref(r);
    }
    txt = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    return txt;
}

/* The big collection's index holds exactly the seeded faces but `deleted`,
 * with their vectors bit for bit. */
static void check_content(struct fl_service *s, int deleted)
{
    struct fl__api_coll *c = NULL;
    float v[DIM];
    int bad = 0;
    T_REQUIRE(fl__api_coll_require(s, "big", &c, NULL) == FL_OK);
    T_CHECK_EQ_INT(fl_index_count(c->ix), N_BIG - 1);
    for (int i = 0; i < N_BIG; i++) {
        enum fl_status rc = fl_index_get(c->ix, (uint64_t)g_keys[i], v, NULL);
        if (i == deleted)
            bad += rc != FL_ERR_NOT_FOUND;
        else
            bad += rc != FL_OK || memcmp(v, g_vecs + (size_t)i * DIM, sizeof(v)) != 0;
    }
    T_CHECK_EQ_INT(bad, 0);
    T_CHECK(fl_index_has_graph(c->ix));
}

static int n_snap_files(void)
{
    char p[128];
    int n = 0;
    DIR *d;
    struct dirent *de;
    snprintf(p, sizeof(p), "%s/index", g_dir);
    d = opendir(p);
    while (d && (de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".flix") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void big_path(char *out, size_t cap)
{
    char h[65];
    fl_sha256_hex("big", 3, h);
    snprintf(out, cap, "%s/index/%s.flix", g_dir, h);
}

static bool copy_file(const char *from, const char *to)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    bool ok = fl_file_read(from, 1u << 30, &buf, &n, NULL) == FL_OK &&
              fl_file_write_atomic(to, buf, n, NULL) == FL_OK;
    fl_free(buf);
    return ok;
}

static void test_snapshots(void)
{
    struct fl_service *s;
    struct seed big = {"big", N_BIG}, small = {"small", 10};
    char *want, *got, path[256], old[300];
    struct fl_rng r;
    json_t *j;

    g_vecs = malloc(sizeof(float) * N_BIG * DIM);
    g_keys = malloc(sizeof(int64_t) * N_BIG);
    g_ids = malloc(sizeof(*g_ids) * N_BIG);
    fl_rng_seed(&r, 7);
    for (size_t i = 0; i < (size_t)N_BIG * DIM; i++)
        g_vecs[i] = (float)(fl_rng_double(&r) - 0.5) * 0.2f;

    /* 1. a big and a small collection; close writes one snapshot */
    s = open_svc();
    T_REQUIRE(s != NULL);
    json_decref(call(s, "CreateCollection", "{\"CollectionId\":\"big\"}"));
    json_decref(call(s, "CreateCollection", "{\"CollectionId\":\"small\"}"));
    T_REQUIRE(fl__api_with_ctx(s, seed_fn, &small, NULL) == FL_OK);
    T_REQUIRE(fl__api_with_ctx(s, seed_fn, &big, NULL) == FL_OK);
    want = answers(s);
    T_CHECK(strstr(want, "FaceId") != NULL);
    fl_service_close(s);
    T_CHECK_EQ_INT(n_snap_files(), 1);

    /* 2. reopen: loaded from the snapshot, same answers */
    s = open_svc();
    T_REQUIRE(s != NULL);
    T_CHECK_EQ_INT(s->n_snapshots_loaded, 1);
    got = answers(s);
    T_CHECK_EQ_STR(got, want);
    free(got);

    /* 3. stale: a face deleted after the snapshot that is put back */
    big_path(path, sizeof(path));
    snprintf(old, sizeof(old), "%s.old", path);
    T_REQUIRE(copy_file(path, old));
    {
        char body[256];
        snprintf(body, sizeof(body), "{\"CollectionId\":\"big\",\"FaceIds\":[\"%s\"]}",
                 g_ids[1]);
        j = call(s, "DeleteFaces", body);
        T_CHECK_EQ_INT(json_array_size(json_object_get(j, "DeletedFaces")), 1);
        json_decref(j);
    }
    free(want);
    want = answers(s);
    fl_service_close(s);
    T_REQUIRE(rename(old, path) == 0);
    s = open_svc();
    T_REQUIRE(s != NULL);
    T_CHECK_EQ_INT(s->n_snapshots_loaded, 0);
    check_content(s, 1);
    got = answers(s);
    T_CHECK(strstr(got, g_ids[1]) == NULL);
    free(got);
    fl_service_close(s);

    /* 4. damaged: one byte flipped in the middle */
    {
        uint8_t *buf = NULL;
        size_t n = 0;
        T_REQUIRE(fl_file_read(path, 1u << 30, &buf, &n, NULL) == FL_OK);
        buf[n / 2] ^= 0x40;
        T_REQUIRE(fl_file_write_atomic(path, buf, n, NULL) == FL_OK);
        fl_free(buf);
    }
    s = open_svc();
    T_REQUIRE(s != NULL);
    T_CHECK_EQ_INT(s->n_snapshots_loaded, 0);
    check_content(s, 1);

    /* 5. the right generation, other content: one vector changed (a write
     * that bypassed the change sequence would look like this) */
    {
        struct fl_index *ix = fl_index_new(DIM, FL_INDEX_L2, NULL);
        uint64_t gen = 0;
        T_REQUIRE(ix != NULL);
        for (int i = 0; i < N_BIG; i++) {
            float v[DIM];
            /* face 1 (deleted in step 3) left in: the repair must remove it */
            memcpy(v, g_vecs + (size_t)i * DIM, sizeof(v));
            v[0] += i == 7 ? 0.5f : 0.0f;
            T_REQUIRE(fl_index_add(ix, (uint64_t)g_keys[i], v, NULL) == FL_OK);
        }
        T_REQUIRE(fl_index_has_graph(ix));
        T_REQUIRE(fl_store_change_seq(s->stores[0], &gen, NULL) == FL_OK);
        fl_service_close(s);
        T_REQUIRE(fl_index_save(ix, path, gen, NULL) == FL_OK);
        fl_index_free(ix);
    }
    s = open_svc();
    T_REQUIRE(s != NULL);
    T_CHECK_EQ_INT(s->n_snapshots_loaded, 1);
    T_CHECK_EQ_INT(s->n_snapshots_repaired, 1);
    check_content(s, 1);
    fl_service_close(s);

    /* 6. and the snapshot written at that close loads again */
    s = open_svc();
    T_REQUIRE(s != NULL);
    T_CHECK_EQ_INT(s->n_snapshots_loaded, 1);
    check_content(s, 1);
    fl_service_close(s);
    free(want);
    free(g_vecs);
    free(g_keys);
    free(g_ids);
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    t_init(argc, argv);
    snprintf(g_dir, sizeof(g_dir), "/tmp/fl_snap_XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    T_RUN(test_snapshots);
    rm_rf(g_dir);
    return t_done();
}
