/* test_api_ext_export.c: ExportCollection / ImportFaces round trip, in
 * process through fl_service_call, on the face-api demo photos:
 *   - export A, import into a fresh service B (another data dir): identical
 *     ListFaces, ListUsers, DescribeCollection counts, and SearchFaces
 *     answers for every face;
 *   - export B again: every file identical to A's (manifest apart from its
 *     time stamp) - the round trip is lossless;
 *   - import again: idempotent (nothing imported, nothing changed);
 *   - all-or-nothing: an export with one changed face and one new face is a
 *     ConflictException and B keeps exactly what it had;
 *   - refused: another model than the collection's, a wrong dimension, a tampered file (its
 *     sha256), embeddings.npy that disagrees with faces.jsonl;
 *   - --collection: import under another name in the same service. */
#include "t.h"
#include "facelink.h"
#include "core/core.h"
#include "face/face.h"

#include <stdlib.h>
#include <unistd.h>

T_MAIN_STATE;

static struct fl_service *g_a, *g_b;
static char g_dir_a[256], g_dir_b[256];

static json_t *call(struct fl_service *svc, const char *target, const char *body,
                    enum fl_status *rc_out)
{
    char *out = NULL;
    size_t len = 0;
    struct fl_err e;
    enum fl_status rc = fl_service_call(svc, target, body, strlen(body), &out, &len, &e);
    json_t *v;
    if (rc_out)
        *rc_out = rc;
    if (rc != FL_OK) {
        printf("# %s: %s: %s\n", target, fl_status_exception(rc), e.msg);
        return NULL;
    }
    v = json_loads(out, 0, NULL);
    fl_free_string(out);
    return v;
}

static json_t *callj(struct fl_service *svc, const char *target, json_t *req, enum fl_status *rc)
{
    char *body = json_dumps(req, JSON_COMPACT);
    json_t *v = call(svc, target, body, rc);
    free(body);
    return v;
}

static json_t *index_image(struct fl_service *svc, int i, const char *coll)
{
    char rel[64], p[1024], *body;
    uint8_t *buf = NULL;
    size_t n = 0;
    json_t *v;
    snprintf(rel, sizeof(rel), "face-api/demo/sample%d.jpg", i);
    if (!t_model(rel, p, sizeof(p)) || fl_file_read(p, 16u << 20, &buf, &n, NULL) != FL_OK)
        return NULL;
    body = malloc(fl_base64_encoded_len(n) + 256);
    sprintf(body,
            "{\"CollectionId\":\"%s\",\"ExternalImageId\":\"photo-%d\",\"Image\":{\"Bytes\":\"",
            coll, i);
    fl_base64_encode(buf, n, body + strlen(body));
    strcat(body, "\"}}");
    fl_free(buf);
    v = call(svc, "RekognitionService.IndexFaces", body, NULL);
    free(body);
    return v;
}

/* Every face of a collection (ListFaces, all pages). */
static json_t *list_faces(struct fl_service *svc, const char *coll)
{
    char body[256];
    json_t *r, *f;
    snprintf(body, sizeof(body), "{\"CollectionId\":\"%s\",\"MaxResults\":4096}", coll);
    r = call(svc, "RekognitionService.ListFaces", body, NULL);
    f = r ? json_incref(json_object_get(r, "Faces")) : NULL;
    json_decref(r);
    return f;
}

static json_t *list_users(struct fl_service *svc, const char *coll)
{
    char body[256];
    json_t *r, *u;
    snprintf(body, sizeof(body), "{\"CollectionId\":\"%s\"}", coll);
    r = call(svc, "RekognitionService.ListUsers", body, NULL);
    u = r ? json_incref(json_object_get(r, "Users")) : NULL;
    json_decref(r);
    return u;
}

static json_t *export_of(struct fl_service *svc, const char *coll)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"CollectionId\":\"%s\"}", coll);
    return call(svc, "FaceLinkService.ExportCollection", body, NULL);
}

static json_t *g_export; /* of A */
static int g_n_faces;

static void test_round_trip(void)
{
    enum fl_status rc;
    json_t *r, *fa, *fb, *ua, *ub, *req, *e2, *da, *db;
    const char *k;
    json_t *v;
    size_t i;
    if (!g_a)
        T_SKIP("models absent");
    json_decref(
        call(g_a, "RekognitionService.CreateCollection", "{\"CollectionId\":\"fam\"}", &rc));
    T_REQUIRE(rc == FL_OK);
    for (int s = 1; s <= 4; s++) {
        r = index_image(g_a, s, "fam");
        T_REQUIRE(r);
        json_decref(r);
    }
    fa = list_faces(g_a, "fam");
    T_REQUIRE(fa && json_array_size(fa) >= 10);
    g_n_faces = (int)json_array_size(fa);
    /* users: two with one face each, one without faces */
    for (int u = 0; u < 3; u++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"CollectionId\":\"fam\",\"UserId\":\"user-%d\"}", u);
        json_decref(call(g_a, "RekognitionService.CreateUser", body, &rc));
        T_REQUIRE(rc == FL_OK);
        if (u < 2) {
            snprintf(
                body, sizeof(body),
                "{\"CollectionId\":\"fam\",\"UserId\":\"user-%d\",\"FaceIds\":[\"%s\"]}", u,
                json_string_value(json_object_get(json_array_get(fa, (size_t)u * 3), "FaceId")));
            json_decref(call(g_a, "RekognitionService.AssociateFaces", body, &rc));
            T_REQUIRE(rc == FL_OK);
        }
    }
    json_decref(fa);
    fa = list_faces(g_a, "fam");
    ua = list_users(g_a, "fam");
    g_export = export_of(g_a, "fam");
    T_REQUIRE(g_export);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(
                       json_object_get(json_object_get(g_export, "Manifest"), "Counts"), "Crops")),
                   g_n_faces);
    req = json_pack("{s:O}", "Files", json_object_get(g_export, "Files"));
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_REQUIRE(r);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "FacesImported")), g_n_faces);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "UsersCreated")), 3);
    json_decref(r);
    fb = list_faces(g_b, "fam");
    ub = list_users(g_b, "fam");
    T_CHECK(json_equal(fa, fb));
    T_CHECK(json_equal(ua, ub));
    T_CHECK_EQ_INT(json_array_size(ua), 3);
    da = call(g_a, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"fam\"}", NULL);
    db = call(g_b, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"fam\"}", NULL);
    T_REQUIRE(da && db);
    T_CHECK(json_equal(json_object_get(da, "FaceCount"), json_object_get(db, "FaceCount")));
    T_CHECK(json_equal(json_object_get(da, "UserCount"), json_object_get(db, "UserCount")));
    T_CHECK(json_equal(json_object_get(da, "CreationTimestamp"),
                       json_object_get(db, "CreationTimestamp")));
    json_decref(da);
    json_decref(db);
    /* the same search answers for every face */
    json_array_foreach(fa, i, v)
    {
        char body[256];
        json_t *sa, *sb;
        snprintf(body, sizeof(body),
                 "{\"CollectionId\":\"fam\",\"FaceId\":\"%s\",\"FaceMatchThreshold\":0}",
                 json_string_value(json_object_get(v, "FaceId")));
        sa = call(g_a, "RekognitionService.SearchFaces", body, NULL);
        sb = call(g_b, "RekognitionService.SearchFaces", body, NULL);
        T_CHECK(sa && sb && json_equal(sa, sb));
        json_decref(sa);
        json_decref(sb);
    }
    /* export B: the same files */
    e2 = export_of(g_b, "fam");
    T_REQUIRE(e2);
    T_CHECK_EQ_INT(json_object_size(json_object_get(e2, "Files")),
                   json_object_size(json_object_get(g_export, "Files")));
    json_object_foreach(json_object_get(g_export, "Files"), k, v)
    {
        if (strcmp(k, "manifest.json") == 0)
            continue;
        if (!json_equal(v, json_object_get(json_object_get(e2, "Files"), k))) {
            printf("# %s differs after the round trip\n", k);
            T_CHECK(0);
        }
    }
    {
        json_t *ma = json_deep_copy(json_object_get(g_export, "Manifest"));
        json_t *mb = json_deep_copy(json_object_get(e2, "Manifest"));
        json_object_del(ma, "ExportedAt");
        json_object_del(mb, "ExportedAt");
        /* the snapshot point is a position in each store's change log */
        T_CHECK(json_is_true(json_object_get(json_object_get(ma, "Snapshot"), "PointInTime")));
        T_CHECK(json_is_true(json_object_get(json_object_get(mb, "Snapshot"), "PointInTime")));
        json_object_del(ma, "Snapshot");
        json_object_del(mb, "Snapshot");
        T_CHECK(json_equal(ma, mb));
        json_decref(ma);
        json_decref(mb);
    }
    json_decref(e2);
    /* idempotent */
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_REQUIRE(r);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "FacesImported")), 0);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "FacesAlreadyPresent")), g_n_faces);
    T_CHECK_EQ_INT(json_integer_value(json_object_get(r, "UsersCreated")), 0);
    json_decref(r);
    json_decref(fb);
    fb = list_faces(g_b, "fam");
    T_CHECK(json_equal(fa, fb));
    json_decref(req);
    json_decref(fa);
    json_decref(fb);
    json_decref(ua);
    json_decref(ub);
}

/* A copy of the export's Files with faces.jsonl replaced by text (and its
 * sha256 fixed in the manifest, so only the content check can object). */
static json_t *files_with_faces(const char *text, const char *model_id, long long dim)
{
    json_t *files = json_deep_copy(json_object_get(g_export, "Files"));
    json_t *man = json_deep_copy(json_object_get(g_export, "Manifest"));
    char hex[65], *b64, *mt;
    if (text) {
        fl_sha256_hex(text, strlen(text), hex);
        json_object_set_new(json_object_get(json_object_get(man, "Files"), "faces.jsonl"), "Sha256",
                            json_string(hex));
        b64 = malloc(fl_base64_encoded_len(strlen(text)) + 1);
        fl_base64_encode(text, strlen(text), b64);
        json_object_set_new(files, "faces.jsonl", json_string(b64));
        free(b64);
        json_object_del(json_object_get(man, "Files"), "embeddings.npy");
        json_object_del(files, "embeddings.npy");
    }
    if (model_id)
        json_object_set_new(json_object_get(man, "FaceModel"), "Id", json_string(model_id));
    if (dim)
        json_object_set_new(json_object_get(man, "FaceModel"), "Dimension", json_integer(dim));
    mt = json_dumps(man, JSON_INDENT(2));
    b64 = malloc(fl_base64_encoded_len(strlen(mt)) + 1);
    fl_base64_encode(mt, strlen(mt), b64);
    json_object_set_new(files, "manifest.json", json_string(b64));
    free(b64);
    free(mt);
    json_decref(man);
    return files;
}

/* faces.jsonl of the export, decoded. */
static char *faces_text(void)
{
    const char *b64 =
        json_string_value(json_object_get(json_object_get(g_export, "Files"), "faces.jsonl"));
    uint8_t *t = malloc(strlen(b64));
    size_t n = 0;
    fl_base64_decode(b64, strlen(b64), t, &n, NULL);
    t[n] = 0;
    return (char *)t;
}

static void test_refusals_change_nothing(void)
{
    enum fl_status rc;
    json_t *before, *after, *files, *req, *r;
    char *text, *changed, *p;
    if (!g_export)
        T_SKIP("no export (models absent)");
    before = list_faces(g_b, "fam");
    text = faces_text();
    /* one face with another ExternalImageId, plus a new face */
    changed = malloc(strlen(text) * 2 + 64);
    strcpy(changed, text);
    p = strstr(changed, "\"photo-1\"");
    T_REQUIRE(p);
    memcpy(p, "\"photo-9\"", 9);
    {
        char *nl = strchr(text, '\n'), *line = strndup(text, (size_t)(nl - text + 1));
        memcpy(strstr(line, "\"FaceId\":\"") + 10, "00000000-0000-4000-8000-00000000beef", 36);
        strcat(changed, line);
        free(line);
    }
    files = files_with_faces(changed, NULL, 0);
    req = json_pack("{s:o}", "Files", files);
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_CHECK(r == NULL && rc == FL_ERR_CONFLICT);
    json_decref(r);
    json_decref(req);
    after = list_faces(g_b, "fam");
    T_CHECK(json_equal(before, after));
    json_decref(after);
    /* another model, a wrong dimension */
    req = json_pack("{s:o}", "Files",
                    files_with_faces(NULL, fl_face_model_info(FL_FACE_MODEL_MFN)->id, 192));
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_CHECK(r == NULL && rc == FL_ERR_INVALID_ARG);
    json_decref(req);
    req = json_pack("{s:o}", "Files", files_with_faces(NULL, NULL, 192));
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_CHECK(r == NULL && rc == FL_ERR_INVALID_ARG);
    json_decref(req);
    /* a file that does not match its sha256 */
    files = json_deep_copy(json_object_get(g_export, "Files"));
    json_object_set_new(files, "users.jsonl", json_string("e30K")); /* "{}\n" */
    req = json_pack("{s:o}", "Files", files);
    r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
    T_CHECK(r == NULL && rc == FL_ERR_INVALID_ARG);
    json_decref(req);
    /* embeddings.npy that disagrees with faces.jsonl (the sha256 fixed) */
    {
        json_t *man = json_deep_copy(json_object_get(g_export, "Manifest"));
        const char *nb = json_string_value(
            json_object_get(json_object_get(g_export, "Files"), "embeddings.npy"));
        uint8_t *npy = malloc(strlen(nb));
        size_t n = 0;
        char hex[65], *b64, *mt;
        fl_base64_decode(nb, strlen(nb), npy, &n, NULL);
        npy[n - 1] ^= 0x40;
        fl_sha256_hex(npy, n, hex);
        json_object_set_new(json_object_get(json_object_get(man, "Files"), "embeddings.npy"),
                            "Sha256", json_string(hex));
        files = json_deep_copy(json_object_get(g_export, "Files"));
        b64 = malloc(fl_base64_encoded_len(n) + 1);
        fl_base64_encode(npy, n, b64);
        json_object_set_new(files, "embeddings.npy", json_string(b64));
        free(b64);
        mt = json_dumps(man, 0);
        b64 = malloc(fl_base64_encoded_len(strlen(mt)) + 1);
        fl_base64_encode(mt, strlen(mt), b64);
        json_object_set_new(files, "manifest.json", json_string(b64));
        free(b64);
        free(mt);
        free(npy);
        json_decref(man);
        req = json_pack("{s:o,s:s}", "Files", files, "CollectionId", "fresh");
        r = callj(g_b, "FaceLinkService.ImportFaces", req, &rc);
        T_CHECK(r == NULL && rc == FL_ERR_INVALID_ARG);
        json_decref(req);
        /* nothing was created */
        r = call(g_b, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"fresh\"}", &rc);
        T_CHECK(r == NULL && rc == FL_ERR_NOT_FOUND);
    }
    after = list_faces(g_b, "fam");
    T_CHECK(json_equal(before, after));
    json_decref(after);
    json_decref(before);
    free(changed);
    free(text);
}

static void test_import_under_another_name(void)
{
    enum fl_status rc;
    json_t *req, *r, *fa, *fb;
    if (!g_export)
        T_SKIP("no export (models absent)");
    req = json_pack("{s:O,s:s}", "Files", json_object_get(g_export, "Files"), "CollectionId",
                    "fam-copy");
    r = callj(g_a, "FaceLinkService.ImportFaces", req, &rc);
    T_REQUIRE(r);
    T_CHECK(json_is_true(json_object_get(r, "CollectionCreated")));
    fa = list_faces(g_a, "fam");
    fb = list_faces(g_a, "fam-copy");
    T_CHECK(json_equal(fa, fb));
    json_decref(fa);
    json_decref(fb);
    json_decref(r);
    /* a collection bound to another model refuses the export */
    {
        struct fl_service_config cfg = {0};
        struct fl_service *c;
        char dir[300], cmd[400];
        snprintf(dir, sizeof(dir), "%s-mfn", g_dir_a);
        cfg.data_dir = dir;
        cfg.default_model = "mobilefacenet";
        c = fl_service_open(&cfg, NULL);
        T_REQUIRE(c);
        json_decref(
            call(c, "RekognitionService.CreateCollection", "{\"CollectionId\":\"fam-copy\"}", &rc));
        T_CHECK(rc == FL_OK);
        r = callj(c, "FaceLinkService.ImportFaces", req, &rc);
        T_CHECK(r == NULL && rc == FL_ERR_INVALID_ARG);
        fl_service_close(c);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", dir);
    }
    json_decref(req);
}

int main(int argc, char **argv)
{
    char m[1024];
    t_init(argc, argv);
    fl_core_init();
    snprintf(g_dir_a, sizeof(g_dir_a), "/tmp/fl-test-export-a-%d", (int)getpid());
    snprintf(g_dir_b, sizeof(g_dir_b), "/tmp/fl-test-export-b-%d", (int)getpid());
    if (t_model("face-api/model", m, sizeof(m))) {
        struct fl_service_config cfg = {0};
        struct fl_err e;
        cfg.data_dir = g_dir_a;
        g_a = fl_service_open(&cfg, &e);
        cfg.data_dir = g_dir_b;
        g_b = fl_service_open(&cfg, &e);
        if (!g_a || !g_b)
            printf("# service: %s\n", e.msg);
    }
    T_RUN(test_round_trip);
    T_RUN(test_refusals_change_nothing);
    T_RUN(test_import_under_another_name);
    json_decref(g_export);
    fl_service_close(g_a);
    fl_service_close(g_b);
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s %s", g_dir_a, g_dir_b);
        if (system(cmd) != 0)
            printf("# could not remove the test dirs\n");
    }
    return t_done();
}
