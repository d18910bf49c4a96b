/* test_api_ext.c: FaceLinkService's vector operations end to end through
 * fl_service_call on the face-api demo photos: GetFaceEmbeddings returns the
 * vectors EmbedFaces computes for the same faces (an independent path: no
 * store), bit for bit once parsed as float32; SearchFacesByEmbedding gives
 * exactly SearchFaces' answer (plus the face itself) for a stored vector;
 * SearchAllFacesByImage searches every face (each finds its own indexed copy
 * first, the largest agrees with SearchFacesByImage); errors: wrong
 * dimension, unknown collection, wrong JSON types, store-less service, and
 * the extensions are not reachable under RekognitionService. */
#include "t.h"
#include "facelink.h"
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define DIM 320 /* the default model's embedding length (fused: dlib 128 + MobileFaceNet 192) */

T_MAIN_STATE;

static struct fl_service *g_svc;
static char g_dir[256];

static char *image_member(const char *name, const char *path)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    char *out;
    if (fl_file_read(path, 16u << 20, &buf, &n, NULL) != FL_OK)
        return NULL;
    out = malloc(fl_base64_encoded_len(n) + strlen(name) + 32);
    sprintf(out, "\"%s\":{\"Bytes\":\"", name);
    fl_base64_encode(buf, n, out + strlen(out));
    strcat(out, "\"}");
    fl_free(buf);
    return out;
}

static json_t *call_t(struct fl_service *svc, const char *target, const char *body,
                      enum fl_status *rc_out)
{
    char *out = NULL;
    size_t len = 0;
    struct fl_err e;
    enum fl_status rc = fl_service_call(svc, target, body, strlen(body), &out, &len, &e);
    json_t *v;
    if (rc_out)
        *rc_out = rc;
    if (rc != FL_OK)
        return json_pack("{s:s,s:s}", "__type", fl_status_exception(rc), "Message", e.msg);
    v = json_loads(out, 0, NULL);
    fl_free_string(out);
    return v;
}

static json_t *call(const char *op, const char *body, enum fl_status *rc)
{
    char target[128];
    snprintf(target, sizeof(target), "%s.%s",
             strcmp(op, "IndexFaces") == 0 || strcmp(op, "CreateCollection") == 0 ||
                     strcmp(op, "SearchFaces") == 0 || strcmp(op, "SearchFacesByImage") == 0
                 ? "RekognitionService"
                 : "FaceLinkService",
             op);
    return call_t(g_svc, target, body, rc);
}

static json_t *call_img(const char *op, const char *path, const char *extra, enum fl_status *rc)
{
    char *im = image_member("Image", path), *body;
    json_t *v;
    if (!im)
        return NULL;
    body = malloc(strlen(im) + strlen(extra) + 8);
    sprintf(body, "{%s%s%s}", im, *extra ? "," : "", extra);
    v = call(op, body, rc);
    free(im);
    free(body);
    return v;
}

static const char *demo(int i, char *buf, size_t cap)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "face-api/demo/sample%d.jpg", i);
    return t_model(rel, buf, cap);
}

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* FaceIds indexed from sample1.jpg (3 faces) and sample2.jpg. */
static json_t *g_faces; /* FaceRecords of sample1 */
static int g_ready;

static void setup_collection(void)
{
    char p[1024];
    enum fl_status rc;
    json_t *r;
    r = call("CreateCollection", "{\"CollectionId\":\"ext\"}", &rc);
    T_REQUIRE(rc == FL_OK);
    json_decref(r);
    r = call_img("IndexFaces", demo(1, p, sizeof(p)),
                 "\"CollectionId\":\"ext\",\"ExternalImageId\":\"sample1\"", &rc);
    T_REQUIRE(rc == FL_OK);
    g_faces = json_incref(json_object_get(r, "FaceRecords"));
    json_decref(r);
    T_REQUIRE(json_array_size(g_faces) == 3);
    for (int i = 2; i <= 4; i++) {
        char ext[64];
        snprintf(ext, sizeof(ext), "\"CollectionId\":\"ext\",\"ExternalImageId\":\"sample%d\"", i);
        r = call_img("IndexFaces", demo(i, p, sizeof(p)), ext, &rc);
        T_REQUIRE(rc == FL_OK);
        json_decref(r);
    }
    g_ready = 1;
}

static const char *face_id(size_t i)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(g_faces, i), "Face"), "FaceId"));
}

static void test_get_embeddings_match_embed_faces(void)
{
    char p[1024], body[512];
    enum fl_status rc;
    json_t *g, *e, *gf, *ef;
    if (!g_svc || !demo(1, p, sizeof(p)))
        T_SKIP("models absent");
    setup_collection();
    T_REQUIRE(g_ready);
    snprintf(body, sizeof(body),
             "{\"CollectionId\":\"ext\",\"FaceIds\":[\"%s\",\"%s\",\"%s\","
             "\"00000000-0000-4000-8000-000000000000\"]}",
             face_id(0), face_id(1), face_id(2));
    g = call("GetFaceEmbeddings", body, &rc);
    T_REQUIRE(rc == FL_OK);
    gf = json_object_get(g, "Faces");
    T_CHECK_EQ_INT(json_array_size(gf), 3);
    T_CHECK_EQ_INT(json_array_size(json_object_get(g, "UnknownFaceIds")), 1);
    T_CHECK_EQ_INT(
        json_integer_value(json_object_get(json_object_get(g, "FaceModel"), "Dimension")), DIM);
    /* the independent path: EmbedFaces on the same image, no store */
    e = call_img("EmbedFaces", p, "", &rc);
    T_REQUIRE(rc == FL_OK);
    ef = json_object_get(e, "Faces");
    T_REQUIRE(json_array_size(ef) == 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get(gf, i);
        json_t *fa = json_object_get(a, "Face");
        json_t *va = json_object_get(a, "Embedding");
        double best = 1e9;
        size_t bj = 0;
        T_CHECK_EQ_STR(json_string_value(json_object_get(fa, "FaceId")), face_id(i));
        T_CHECK_EQ_INT(json_array_size(va), DIM);
        /* the EmbedFaces face with the same box */
        for (size_t j = 0; j < 3; j++) {
            json_t *bb = json_object_get(json_object_get(json_array_get(ef, j), "FaceDetail"),
                                         "BoundingBox");
            json_t *ba = json_object_get(fa, "BoundingBox");
            double d =
                fabs(num(bb, "Left") - num(ba, "Left")) + fabs(num(bb, "Top") - num(ba, "Top"));
            if (d < best) {
                best = d;
                bj = j;
            }
        }
        T_CHECK(best < 1e-6);
        {
            json_t *vb = json_object_get(json_array_get(ef, bj), "Embedding");
            int same = 1;
            for (size_t k = 0; k < DIM; k++)
                same &= (float)json_number_value(json_array_get(va, k)) ==
                        (float)json_number_value(json_array_get(vb, k));
            T_CHECK(same);
        }
    }
    json_decref(e);
    json_decref(g);
}

/* SearchFacesByEmbedding(vector of X) == SearchFaces(X) with X itself first. */
static void test_search_by_embedding_equals_search_faces(void)
{
    char body[8192];
    enum fl_status rc;
    json_t *g, *v, *s, *b, *sm, *bm;
    size_t off;
    if (!g_ready)
        T_SKIP("no collection (models absent)");
    snprintf(body, sizeof(body), "{\"CollectionId\":\"ext\",\"FaceIds\":[\"%s\"]}", face_id(0));
    g = call("GetFaceEmbeddings", body, &rc);
    T_REQUIRE(rc == FL_OK);
    v = json_object_get(json_array_get(json_object_get(g, "Faces"), 0), "Embedding");
    off = (size_t)snprintf(body, sizeof(body),
                           "{\"CollectionId\":\"ext\",\"FaceMatchThreshold\":0,\"Embedding\":");
    {
        char *vs = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
        off += (size_t)snprintf(body + off, sizeof(body) - off, "%s}", vs);
        free(vs);
    }
    T_REQUIRE(off < sizeof(body));
    b = call("SearchFacesByEmbedding", body, &rc);
    T_REQUIRE(rc == FL_OK);
    snprintf(body, sizeof(body),
             "{\"CollectionId\":\"ext\",\"FaceId\":\"%s\",\"FaceMatchThreshold\":0}", face_id(0));
    s = call("SearchFaces", body, &rc);
    T_REQUIRE(rc == FL_OK);
    sm = json_object_get(s, "FaceMatches");
    bm = json_object_get(b, "FaceMatches");
    T_REQUIRE(json_array_size(bm) == json_array_size(sm) + 1);
    T_CHECK_EQ_STR(json_string_value(
                       json_object_get(json_object_get(json_array_get(bm, 0), "Face"), "FaceId")),
                   face_id(0));
    T_CHECK(num(json_array_get(bm, 0), "Similarity") > 99.9);
    for (size_t i = 0; i < json_array_size(sm); i++) {
        json_t *x = json_array_get(sm, i), *y = json_array_get(bm, i + 1);
        T_CHECK(json_equal(json_object_get(x, "Face"), json_object_get(y, "Face")));
        T_CHECK_NEAR(num(x, "Similarity"), num(y, "Similarity"), 1e-4);
    }
    /* the default threshold (80) filters the same way */
    off = (size_t)snprintf(body, sizeof(body), "{\"CollectionId\":\"ext\",\"Embedding\":");
    {
        char *vs = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
        off += (size_t)snprintf(body + off, sizeof(body) - off, "%s}", vs);
        free(vs);
    }
    json_decref(b);
    b = call("SearchFacesByEmbedding", body, &rc);
    T_REQUIRE(rc == FL_OK);
    {
        size_t above = 0;
        for (size_t i = 0; i < json_array_size(sm); i++)
            above += num(json_array_get(sm, i), "Similarity") >= 80.0;
        T_CHECK_EQ_INT(json_array_size(json_object_get(b, "FaceMatches")), above + 1);
    }
    json_decref(b);
    json_decref(s);
    json_decref(g);
}

static void test_search_all_faces(void)
{
    char p[1024];
    enum fl_status rc;
    json_t *r, *one, *sf;
    size_t i;
    json_t *x;
    if (!g_ready || !demo(1, p, sizeof(p)))
        T_SKIP("no collection (models absent)");
    r = call_img("SearchAllFacesByImage", p, "\"CollectionId\":\"ext\"", &rc);
    T_REQUIRE(rc == FL_OK);
    sf = json_object_get(r, "SearchedFaces");
    T_CHECK_EQ_INT(json_array_size(sf), 3);
    json_array_foreach(sf, i, x)
    {
        json_t *m0 = json_array_get(json_object_get(x, "FaceMatches"), 0);
        json_t *f0 = json_object_get(m0, "Face");
        json_t *bb = json_object_get(x, "SearchedFaceBoundingBox");
        json_t *fb = json_object_get(f0, "BoundingBox");
        /* each face finds the copy indexed from this image, at its box */
        T_CHECK_EQ_STR(json_string_value(json_object_get(f0, "ExternalImageId")), "sample1");
        T_CHECK(num(m0, "Similarity") > 99.0);
        T_CHECK_NEAR(num(bb, "Left"), num(fb, "Left"), 1e-5);
        T_CHECK_NEAR(num(bb, "Top"), num(fb, "Top"), 1e-5);
    }
    /* the largest face agrees with SearchFacesByImage */
    one = call_img("SearchFacesByImage", p, "\"CollectionId\":\"ext\"", &rc);
    T_REQUIRE(rc == FL_OK);
    T_CHECK(json_equal(json_object_get(one, "FaceMatches"),
                       json_object_get(json_array_get(sf, 0), "FaceMatches")));
    json_decref(one);
    json_decref(r);
    /* a quality bar no face passes: all unsearched, not an error */
    r = call_img("SearchAllFacesByImage", p, "\"CollectionId\":\"ext\",\"QualityFilter\":\"HIGH\"",
                 &rc);
    T_REQUIRE(rc == FL_OK);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "SearchedFaces")) +
                       json_array_size(json_object_get(r, "UnsearchedFaces")),
                   3);
    json_decref(r);
}

static void test_errors(void)
{
    enum fl_status rc;
    json_t *r;
    struct fl_service *bare;
    struct fl_service_config cfg = {0};
    struct fl_err e;
    if (!g_ready)
        T_SKIP("no collection (models absent)");
    r = call("SearchFacesByEmbedding", "{\"CollectionId\":\"ext\",\"Embedding\":[1,2,3]}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_INVALID_ARG);
    json_decref(r);
    r = call("SearchFacesByEmbedding", "{\"CollectionId\":\"nope\",\"Embedding\":[1]}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_NOT_FOUND);
    json_decref(r);
    r = call("SearchFacesByEmbedding", "{\"CollectionId\":\"ext\",\"Embedding\":[\"a\"]}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_SERIALIZATION);
    json_decref(r);
    r = call("SearchFacesByEmbedding", "{\"CollectionId\":\"ext\"}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_INVALID_ARG);
    json_decref(r);
    r = call("GetFaceEmbeddings", "{\"CollectionId\":\"ext\",\"FaceIds\":[\"not a uuid\"]}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_INVALID_ARG);
    json_decref(r);
    r = call_t(g_svc, "RekognitionService.GetFaceEmbeddings",
               "{\"CollectionId\":\"ext\",\"FaceIds\":[]}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_UNKNOWN_OPERATION);
    json_decref(r);
    cfg.no_store = 1;
    bare = fl_service_open(&cfg, &e);
    T_REQUIRE(bare);
    r = call_t(bare, "FaceLinkService.GetFaceEmbeddings",
               "{\"CollectionId\":\"ext\",\"FaceIds\":[\"00000000-0000-4000-8000-000000000000\"]}",
               &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_INTERNAL);
    json_decref(r);
    fl_service_close(bare);
}

int main(int argc, char **argv)
{
    char m[1024];
    t_init(argc, argv);
    fl_core_init();
    snprintf(g_dir, sizeof(g_dir), "/tmp/fl-test-api-ext-%d", (int)getpid());
    if (t_model("face-api/model", m, sizeof(m))) {
        struct fl_service_config cfg = {0};
        struct fl_err e;
        cfg.data_dir = g_dir;
        cfg.n_workers = 1;
        g_svc = fl_service_open(&cfg, &e);
        if (!g_svc)
            printf("# service: %s\n", e.msg);
    }
    T_RUN(test_get_embeddings_match_embed_faces);
    T_RUN(test_search_by_embedding_equals_search_faces);
    T_RUN(test_search_all_faces);
    T_RUN(test_errors);
    json_decref(g_faces);
    fl_service_close(g_svc);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", g_dir);
    }
    return t_done();
}
