/* test_api_image.c: the image operations end to end through fl_service_call
 * on real photos: DetectFaces (default and ALL attributes), CompareFaces,
 * IndexFaces (MaxFaces, no duplicates for the same image and
 * ExternalImageId), SearchFacesByImage (another photo of the same LFW person
 * is the top match above the default threshold; no face -> error), users
 * and SearchUsersByImage, and the errors that must come before inference. */
#include "t.h"
#include "t_jsonl.h"
#include "facelink.h"
#include "core/core.h"

#include <stdlib.h>
#include <sys/stat.h>

T_MAIN_STATE;

static struct fl_service *g_svc;
static char g_dir[256];
static char g_golden[1024];

/* {"<member>": {"Bytes": base64(file)}} fragments, built into a request. */
static char *image_member(const char *name, const char *path)
{
    uint8_t *buf = NULL;
    size_t n = 0, enc;
    char *out;
    if (fl_file_read(path, 16u << 20, &buf, &n, NULL) != FL_OK)
        return NULL;
    enc = fl_base64_encoded_len(n);
    out = malloc(enc + strlen(name) + 32);
    sprintf(out, "\"%s\":{\"Bytes\":\"", name);
    fl_base64_encode(buf, n, out + strlen(out));
    strcat(out, "\"}");
    fl_free(buf);
    return out;
}

/* Call op with body; returns the parsed response (or error body) and the status. */
static json_t *call(const char *op, const char *body, enum fl_status *rc_out)
{
    char target[128], *out = NULL;
    size_t len = 0;
    struct fl_err e;
    enum fl_status rc;
    json_t *v;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    rc = fl_service_call(g_svc, target, body, strlen(body), &out, &len, &e);
    if (rc_out)
        *rc_out = rc;
    if (rc != FL_OK) {
        v = json_pack("{s:s,s:s}", "__type", fl_status_exception(rc), "Message", e.msg);
        return v;
    }
    v = json_loads(out, 0, NULL);
    fl_free_string(out);
    return v;
}

/* Call with one image member and extra JSON members (without braces). */
static json_t *call_img(const char *op, const char *member, const char *path, const char *extra,
                        enum fl_status *rc)
{
    char *im = image_member(member, path), *body;
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

static const char *lfw(const char *id, char *buf, size_t cap)
{
    size_t a = strlen(g_golden), b = strlen(id);
    if (!a || a + b + 10 > cap)
        return NULL;
    memcpy(buf, g_golden, a);
    memcpy(buf + a, "/src/", 5);
    memcpy(buf + a + 5, id, b);
    memcpy(buf + a + 5 + b, ".png", 5);
    return buf;
}

static void test_detect_faces_default_and_all(void)
{
    char p[1024];
    enum fl_status rc;
    json_t *r, *d, *f;
    size_t i;
    if (!g_svc || !demo(1, p, sizeof(p)))
        T_SKIP("models absent");
    r = call_img("DetectFaces", "Image", p, "", &rc);
    T_REQUIRE(r && rc == FL_OK);
    d = json_object_get(r, "FaceDetails");
    T_CHECK_EQ_INT(json_array_size(d), 3); /* sample1.jpg: three people */
    json_array_foreach(d, i, f)
    {
        json_t *bb = json_object_get(f, "BoundingBox");
        double w = json_number_value(json_object_get(bb, "Width"));
        double l = json_number_value(json_object_get(bb, "Left"));
        T_CHECK(w > 0.02 && w < 1 && l >= 0 && l < 1);
        T_CHECK(json_number_value(json_object_get(f, "Confidence")) > 90);
        T_CHECK_EQ_INT(json_array_size(json_object_get(f, "Landmarks")), 30);
        T_CHECK(json_object_get(f, "Pose") && json_object_get(f, "Quality"));
        T_CHECK(!json_object_get(f, "AgeRange") && !json_object_get(f, "Emotions"));
        if (i > 0) { /* largest first */
            json_t *prev = json_object_get(json_array_get(d, i - 1), "BoundingBox");
            T_CHECK(json_number_value(json_object_get(prev, "Width")) *
                        json_number_value(json_object_get(prev, "Height")) >=
                    w * json_number_value(json_object_get(bb, "Height")));
        }
    }
    json_decref(r);
    r = call_img("DetectFaces", "Image", p, "\"Attributes\":[\"ALL\"]", &rc);
    T_REQUIRE(r && rc == FL_OK);
    f = json_array_get(json_object_get(r, "FaceDetails"), 0);
    T_CHECK(json_object_get(f, "AgeRange") && json_object_get(f, "Gender"));
    T_CHECK_EQ_INT(json_array_size(json_object_get(f, "Emotions")), 7);
    T_CHECK(json_object_get(f, "Smile") && json_object_get(f, "EyesOpen") &&
            json_object_get(f, "MouthOpen"));
    T_CHECK(!json_object_get(f, "Beard")); /* no model: never invented */
    json_decref(r);
}

static void test_detect_faces_errors(void)
{
    enum fl_status rc;
    json_t *r;
    if (!g_svc)
        T_SKIP("models absent");
    /* a PNG header and nothing else */
    r = call("DetectFaces", "{\"Image\":{\"Bytes\":\"iVBORw0KGgo=\"}}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_IMAGE_FORMAT);
    json_decref(r);
    r = call("DetectFaces", "{\"Image\":{\"Bytes\":\"aGVsbG8gd29ybGQ=\"}}", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_IMAGE_FORMAT);
    json_decref(r);
}

static void test_compare_faces(void)
{
    char a[1024], b[1024], c[1024];
    char *s1, *s2, *body;
    enum fl_status rc;
    json_t *r, *m;
    if (!g_svc || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    lfw("Serena_Williams_0001", a, sizeof(a));
    lfw("Serena_Williams_0002", b, sizeof(b));
    lfw("Kofi_Annan_0001", c, sizeof(c));
    s1 = image_member("SourceImage", a);
    s2 = image_member("TargetImage", b);
    body = malloc(strlen(s1) + strlen(s2) + 8);
    sprintf(body, "{%s,%s}", s1, s2);
    r = call("CompareFaces", body, &rc);
    T_REQUIRE(r && rc == FL_OK);
    m = json_object_get(r, "FaceMatches");
    T_CHECK_EQ_INT(json_array_size(m), 1);
    T_CHECK(json_number_value(json_object_get(json_array_get(m, 0), "Similarity")) >= 80);
    T_CHECK(json_object_get(r, "SourceImageFace") != NULL);
    json_decref(r);
    free(s2);
    free(body);
    s2 = image_member("TargetImage", c);
    body = malloc(strlen(s1) + strlen(s2) + 8);
    sprintf(body, "{%s,%s}", s1, s2);
    r = call("CompareFaces", body, &rc);
    T_REQUIRE(r && rc == FL_OK);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "FaceMatches")), 0);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "UnmatchedFaces")), 1);
    json_decref(r);
    free(s1);
    free(s2);
    free(body);
}

/* Index the first photo of each golden person, search with the second. */
static void test_index_and_search_lfw(void)
{
    char path[2048];
    size_t n = 0, top_ok = 0, people = 0;
    json_t **rows, *r;
    enum fl_status rc;
    if (!g_svc || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    snprintf(path, sizeof(path), "%s/faceapi/faces_pipeline.jsonl", g_golden);
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n == 40);
    json_decref(call("CreateCollection", "{\"CollectionId\":\"lfw\"}", &rc));
    T_REQUIRE(rc == FL_OK);
    for (size_t i = 0; i < n; i += 2) { /* rows come in pairs by person */
        char extra[256], img[1024];
        const char *id = json_string_value(json_object_get(rows[i], "id"));
        snprintf(extra, sizeof(extra), "\"CollectionId\":\"lfw\",\"ExternalImageId\":\"%s\"", id);
        r = call_img("IndexFaces", "Image", lfw(id, img, sizeof(img)), extra, &rc);
        T_CHECK(rc == FL_OK);
        /* some LFW photos show a second face in the background */
        T_CHECK(json_array_size(json_object_get(r, "FaceRecords")) >= 1);
        json_decref(r);
    }
    for (size_t i = 1; i < n; i += 2) {
        char img[1024];
        const char *id = json_string_value(json_object_get(rows[i], "id"));
        const char *person = json_string_value(json_object_get(rows[i], "person"));
        json_t *top;
        r = call_img("SearchFacesByImage", "Image", lfw(id, img, sizeof(img)),
                     "\"CollectionId\":\"lfw\",\"MaxFaces\":1", &rc);
        T_CHECK(rc == FL_OK);
        top = json_array_get(json_object_get(r, "FaceMatches"), 0);
        people++;
        if (top && strncmp(json_string_value(json_object_get(json_object_get(top, "Face"),
                                                             "ExternalImageId")),
                           person, strlen(person)) == 0 &&
            json_number_value(json_object_get(top, "Similarity")) >= 80)
            top_ok++;
        else
            printf("# %s: top match %s\n", id, top ? json_dumps(top, 0) : "(none)");
        json_decref(r);
    }
    printf("# SearchFacesByImage: the same person's other photo is the top match above 80 for "
           "%zu of %zu people\n",
           top_ok, people);
    T_CHECK(top_ok >= people - 1);
    /* indexing the same image with the same ExternalImageId again adds nothing
     * and answers with the same faces */
    {
        char extra[256], img[1024];
        const char *id = json_string_value(json_object_get(rows[0], "id"));
        json_t *d0, *d1, *r0;
        d0 = call("DescribeCollection", "{\"CollectionId\":\"lfw\"}", &rc);
        snprintf(extra, sizeof(extra), "\"CollectionId\":\"lfw\",\"ExternalImageId\":\"%s\"", id);
        r0 = call_img("SearchFacesByImage", "Image", lfw(id, img, sizeof(img)),
                      "\"CollectionId\":\"lfw\",\"MaxFaces\":1", &rc);
        r = call_img("IndexFaces", "Image", lfw(id, img, sizeof(img)), extra, &rc);
        T_CHECK(rc == FL_OK);
        T_CHECK(json_array_size(json_object_get(r, "FaceRecords")) >= 1);
        d1 = call("DescribeCollection", "{\"CollectionId\":\"lfw\"}", &rc);
        T_CHECK_EQ_INT(json_integer_value(json_object_get(d1, "FaceCount")),
                       json_integer_value(json_object_get(d0, "FaceCount")));
        /* the record answered is the face already stored */
        T_CHECK(json_equal(
            json_object_get(json_object_get(json_array_get(json_object_get(r0, "FaceMatches"), 0),
                                            "Face"),
                            "FaceId"),
            json_object_get(json_object_get(json_array_get(json_object_get(r, "FaceRecords"), 0),
                                            "Face"),
                            "FaceId")));
        json_decref(r);
        json_decref(r0);
        json_decref(d0);
        json_decref(d1);
    }
    t_jsonl_free(rows, n);
}

static void test_index_max_faces_and_users(void)
{
    char p[1024], extra[512];
    enum fl_status rc;
    json_t *r, *u;
    const char *face_id;
    if (!g_svc || !demo(3, p, sizeof(p)))
        T_SKIP("models absent");
    json_decref(call("CreateCollection", "{\"CollectionId\":\"demo\"}", &rc));
    r = call_img("IndexFaces", "Image", p,
                 "\"CollectionId\":\"demo\",\"MaxFaces\":2,\"ExternalImageId\":\"sample3\"", &rc);
    T_REQUIRE(r && rc == FL_OK);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "FaceRecords")), 2);
    u = json_object_get(r, "UnindexedFaces");
    T_CHECK_EQ_INT(json_array_size(u), 1); /* sample3.jpg has three faces */
    T_CHECK_EQ_STR(json_string_value(json_array_get(
                       json_object_get(json_array_get(u, 0), "Reasons"), 0)),
                   "EXCEEDS_MAX_FACES");
    face_id = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(r, "FaceRecords"), 0), "Face"), "FaceId"));
    T_REQUIRE(face_id != NULL);
    json_decref(call("CreateUser", "{\"CollectionId\":\"demo\",\"UserId\":\"alice\"}", &rc));
    T_CHECK(rc == FL_OK);
    snprintf(extra, sizeof(extra),
             "{\"CollectionId\":\"demo\",\"UserId\":\"alice\",\"FaceIds\":[\"%s\"]}", face_id);
    json_decref(call("AssociateFaces", extra, &rc));
    T_CHECK(rc == FL_OK);
    json_decref(r);
    r = call_img("SearchUsersByImage", "Image", p, "\"CollectionId\":\"demo\"", &rc);
    T_REQUIRE(r && rc == FL_OK);
    T_CHECK_EQ_STR(json_string_value(json_object_get(
                       json_object_get(json_array_get(json_object_get(r, "UserMatches"), 0),
                                       "User"),
                       "UserId")),
                   "alice");
    T_CHECK(json_array_size(json_object_get(r, "UnsearchedFaces")) >= 1);
    json_decref(r);
}

static void test_errors_before_inference(void)
{
    char p[1024];
    enum fl_status rc;
    json_t *r;
    if (!g_svc || !demo(1, p, sizeof(p)))
        T_SKIP("models absent");
    r = call_img("IndexFaces", "Image", p, "\"CollectionId\":\"missing\"", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_NOT_FOUND);
    json_decref(r);
    r = call_img("SearchFacesByImage", "Image", p, "\"CollectionId\":\"missing\"", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_NOT_FOUND);
    json_decref(r);
}

/* A photo without a face: SearchFacesByImage is an error, SearchUsersByImage
 * an empty answer (REKOGNITION.md §1.5). */
static void test_no_face(void)
{
    char p[1024];
    enum fl_status rc;
    json_t *r;
    if (!g_svc || !t_shared("data/detect/negative/dog.jpg", p, sizeof(p)))
        T_SKIP("models or ../shared/data absent");
    json_decref(call("CreateCollection", "{\"CollectionId\":\"empty\"}", &rc));
    r = call_img("SearchFacesByImage", "Image", p, "\"CollectionId\":\"empty\"", &rc);
    T_CHECK_EQ_INT(rc, FL_ERR_INVALID_ARG);
    json_decref(r);
    r = call_img("SearchUsersByImage", "Image", p, "\"CollectionId\":\"empty\"", &rc);
    T_CHECK_EQ_INT(rc, FL_OK);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "UserMatches")), 0);
    T_CHECK(json_object_get(r, "SearchedFace") == NULL);
    json_decref(r);
}

/* FaceLinkService.EmbedFaces: vectors out, with the model's provenance; the
 * dlib vector of a face equals what the same face indexes and searches with
 * (SearchFacesByImage of the same photo finds it at Similarity ~100). */
static void test_embed_faces(void)
{
    char p[1024], *im, *body, *out = NULL;
    size_t len;
    struct fl_err e;
    enum fl_status rc;
    json_t *r, *f, *v;
    double n2 = 0;
    if (!g_svc || !demo(1, p, sizeof(p)))
        T_SKIP("models absent");
    im = image_member("Image", p);
    body = malloc(strlen(im) + 64);
    sprintf(body, "{%s}", im);
    rc = fl_service_call(g_svc, "FaceLinkService.EmbedFaces", body, strlen(body), &out, &len, &e);
    T_REQUIRE(rc == FL_OK);
    r = json_loads(out, 0, NULL);
    fl_free_string(out);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "Faces")), 3);
    /* the default model: fused, [dlib 128 | MobileFaceNet 192], halves of squared norm
     * 0.857 and 0.143 (fused.c) */
    T_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r, "FaceModel"), "Dimension")),
                   320);
    T_CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(r, "FaceModel"), "FaceModelVersion")),
                   "103.0");
    f = json_array_get(json_object_get(r, "Faces"), 0);
    T_CHECK_EQ_INT(json_array_size(json_object_get(f, "Embedding")), 320);
    for (int half = 0; half < 2; half++) {
        double h2 = 0;
        for (int k = half ? 128 : 0; k < (half ? 320 : 128); k++) {
            double x = json_number_value(json_array_get(json_object_get(f, "Embedding"), k));
            h2 += x * x;
        }
        T_CHECK_NEAR(h2, half ? 0.143 : 0.857, 1e-5);
    }
    T_CHECK(json_object_get(json_object_get(f, "FaceDetail"), "BoundingBox") != NULL);
    json_decref(r);
    sprintf(body, "{%s,\"FaceModel\":\"mobilefacenet\",\"MaxFaces\":1}", im);
    rc = fl_service_call(g_svc, "FaceLinkService.EmbedFaces", body, strlen(body), &out, &len, &e);
    T_REQUIRE(rc == FL_OK);
    r = json_loads(out, 0, NULL);
    fl_free_string(out);
    f = json_array_get(json_object_get(r, "Faces"), 0);
    v = json_object_get(f, "Embedding");
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "Faces")), 1);
    T_CHECK_EQ_INT(json_array_size(v), 192);
    for (size_t k = 0; k < json_array_size(v); k++)
        n2 += json_number_value(json_array_get(v, k)) * json_number_value(json_array_get(v, k));
    T_CHECK_NEAR(n2, 1.0, 1e-3); /* normalised, compared by cosine */
    json_decref(r);
    /* an unknown model, and the extension under Rekognition's prefix */
    sprintf(body, "{%s,\"FaceModel\":\"resnet9000\"}", im);
    rc = fl_service_call(g_svc, "FaceLinkService.EmbedFaces", body, strlen(body), &out, &len, &e);
    T_CHECK_EQ_INT(rc, FL_ERR_INVALID_ARG);
    rc = fl_service_call(g_svc, "RekognitionService.EmbedFaces", body, strlen(body), &out, &len,
                         &e);
    T_CHECK_EQ_INT(rc, FL_ERR_UNKNOWN_OPERATION);
    free(im);
    free(body);
}

/* A service opened without a store answers the image-only operations and
 * refuses the rest with a clear message. */
static void test_stateless_service(void)
{
    char p[1024], *im, *body, *out = NULL;
    size_t len;
    struct fl_err e;
    struct fl_service_config cfg = {0};
    struct fl_service *svc;
    enum fl_status rc;
    if (!g_svc || !demo(2, p, sizeof(p)))
        T_SKIP("models absent");
    cfg.no_store = 1;
    cfg.data_dir = "/nonexistent/should-not-be-created";
    svc = fl_service_open(&cfg, &e);
    T_REQUIRE(svc != NULL);
    im = image_member("Image", p);
    body = malloc(strlen(im) + 64);
    sprintf(body, "{%s}", im);
    rc = fl_service_call(svc, "RekognitionService.DetectFaces", body, strlen(body), &out, &len, &e);
    T_CHECK_EQ_INT(rc, FL_OK);
    fl_free_string(out);
    rc = fl_service_call(svc, "RekognitionService.ListCollections", "{}", 2, &out, &len, &e);
    T_CHECK_EQ_INT(rc, FL_ERR_INTERNAL);
    T_CHECK(strstr(e.msg, "without a store") != NULL);
    T_CHECK(access("/nonexistent/should-not-be-created", F_OK) != 0);
    fl_service_close(svc);
    free(im);
    free(body);
}

int main(int argc, char **argv)
{
    char m[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_shared("golden/README.md", g_golden, sizeof(g_golden)))
        *strrchr(g_golden, '/') = '\0';
    else
        g_golden[0] = '\0';
    snprintf(g_dir, sizeof(g_dir), "/tmp/fl-test-api-image-%d", (int)getpid());
    if (t_model("face-api/model", m, sizeof(m))) {
        struct fl_service_config cfg = {0};
        struct fl_err e;
        cfg.data_dir = g_dir;
        cfg.n_workers = 2;
        g_svc = fl_service_open(&cfg, &e);
        if (!g_svc)
            printf("# service: %s\n", e.msg);
    }
    T_RUN(test_detect_faces_default_and_all);
    T_RUN(test_detect_faces_errors);
    T_RUN(test_compare_faces);
    T_RUN(test_index_and_search_lfw);
    T_RUN(test_index_max_faces_and_users);
    T_RUN(test_errors_before_inference);
    T_RUN(test_no_face);
    T_RUN(test_embed_faces);
    T_RUN(test_stateless_service);
    fl_service_close(g_svc);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", g_dir);
    }
    return t_done();
}
