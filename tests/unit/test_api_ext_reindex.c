/* test_api_ext_reindex.c: ReindexCollection and DescribeJob, in process
 * through fl_service_call, on the face-api demo photos.
 *   - dlib -> MobileFaceNet: the job runs in the background (SearchFaces
 *     keeps answering meanwhile), DescribeJob reaches SUCCEEDED at 100%;
 *     afterwards ListFaces is the same apart from IndexFacesModelVersion
 *     (FaceIds, ExternalImageIds, UserIds, boxes kept), the collection's
 *     FaceModelVersion is MobileFaceNet's, and the stored vectors agree with
 *     what EmbedFaces computes from the photo with MobileFaceNet (an
 *     independent path: photo, not crop) at cosine >= 0.99;
 *   - refusals: same model, unknown model, unknown collection, unknown job;
 *   - a crash mid-job (a child process _exit()s after 8 faces were staged):
 *     the store still holds the old model and the old answers; reopening
 *     the service resumes the job, which re-embeds only the faces not staged
 *     yet and switches the collection;
 *   - faces without a retained crop: the job fails, the collection keeps
 *     its model. */
#include "t.h"
#include "api/api.h"
#include "facelink.h"

#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

T_MAIN_STATE;

static int g_models_ok;

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

static char *image_body(int i, const char *coll, const char *extra)
{
    char rel[64], p[1024], *body;
    uint8_t *buf = NULL;
    size_t n = 0;
    snprintf(rel, sizeof(rel), "face-api/demo/sample%d.jpg", i);
    if (!t_model(rel, p, sizeof(p)) || fl_file_read(p, 16u << 20, &buf, &n, NULL) != FL_OK)
        return NULL;
    body = malloc(fl_base64_encoded_len(n) + 512);
    sprintf(body, "{%s%s%s\"Image\":{\"Bytes\":\"", coll ? "\"CollectionId\":\"" : "",
            coll ? coll : "", coll ? "\"," : "");
    fl_base64_encode(buf, n, body + strlen(body));
    strcat(body, "\"}");
    strcat(body, extra);
    strcat(body, "}");
    fl_free(buf);
    return body;
}

static struct fl_service *open_svc(const char *dir, const char *crops)
{
    struct fl_service_config cfg = {0};
    struct fl_err e;
    struct fl_service *s;
    cfg.data_dir = dir;
    cfg.n_workers = 2;
    cfg.crop_retention = crops;
    cfg.default_model = "dlib"; /* collections start on dlib and move to MobileFaceNet */
    s = fl_service_open(&cfg, &e);
    if (!s)
        printf("# open %s: %s\n", dir, e.msg);
    return s;
}

/* Collection "c" with sample1..n indexed (ExternalImageId photo-i). */
static int seed(struct fl_service *s, int n)
{
    enum fl_status rc;
    json_decref(call(s, "RekognitionService.CreateCollection", "{\"CollectionId\":\"c\"}", &rc));
    if (rc != FL_OK)
        return 0;
    for (int i = 1; i <= n; i++) {
        char extra[64], *body;
        snprintf(extra, sizeof(extra), ",\"ExternalImageId\":\"photo-%d\"", i);
        body = image_body(i, "c", extra);
        json_decref(call(s, "RekognitionService.IndexFaces", body, &rc));
        free(body);
        if (rc != FL_OK)
            return 0;
    }
    return 1;
}

static json_t *list_faces(struct fl_service *s)
{
    json_t *r = call(s, "RekognitionService.ListFaces", "{\"CollectionId\":\"c\"}", NULL);
    json_t *f = r ? json_incref(json_object_get(r, "Faces")) : NULL;
    json_decref(r);
    return f;
}

static json_t *describe(struct fl_service *s, const char *job)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"JobId\":\"%s\"}", job);
    return call(s, "FaceLinkService.DescribeJob", body, NULL);
}

/* Poll DescribeJob until it ends (or 120 s); the final answer. */
static json_t *wait_job(struct fl_service *s, const char *job)
{
    for (int i = 0; i < 1200; i++) {
        json_t *d = describe(s, job);
        const char *st = d ? json_string_value(json_object_get(d, "Status")) : NULL;
        struct timespec ts = {0, 100 * 1000 * 1000};
        if (!st || strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0)
            return d;
        json_decref(d);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

static double cosine(const json_t *a, const json_t *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        double x = json_number_value(json_array_get(a, i)),
               y = json_number_value(json_array_get(b, i));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    return ab / sqrt(aa * bb);
}

static void test_reindex_dlib_to_mfn(void)
{
    char dir[256], body[512], job[64];
    struct fl_service *s;
    enum fl_status rc;
    json_t *before, *after, *r, *d;
    size_t i;
    json_t *v;
    int searches = 0;
    uint64_t t0;
    if (!g_models_ok)
        T_SKIP("models absent");
    snprintf(dir, sizeof(dir), "/tmp/fl-test-reindex-%d", (int)getpid());
    s = open_svc(dir, NULL);
    T_REQUIRE(s && seed(s, 3));
    before = list_faces(s);
    T_REQUIRE(before && json_array_size(before) == 9);
    snprintf(body, sizeof(body), "{\"CollectionId\":\"c\",\"UserId\":\"u\"}");
    json_decref(call(s, "RekognitionService.CreateUser", body, &rc));
    snprintf(body, sizeof(body), "{\"CollectionId\":\"c\",\"UserId\":\"u\",\"FaceIds\":[\"%s\"]}",
             json_string_value(json_object_get(json_array_get(before, 0), "FaceId")));
    json_decref(call(s, "RekognitionService.AssociateFaces", body, &rc));
    T_REQUIRE(rc == FL_OK);
    json_decref(before);
    before = list_faces(s);
    /* refusals */
    T_CHECK(!call(s, "FaceLinkService.ReindexCollection",
                  "{\"CollectionId\":\"c\",\"FaceModel\":\"dlib\"}", &rc) &&
            rc == FL_ERR_INVALID_ARG);
    T_CHECK(!call(s, "FaceLinkService.ReindexCollection",
                  "{\"CollectionId\":\"c\",\"FaceModel\":\"arcface\"}", &rc) &&
            rc == FL_ERR_INVALID_ARG);
    T_CHECK(!call(s, "FaceLinkService.ReindexCollection",
                  "{\"CollectionId\":\"nope\",\"FaceModel\":\"mobilefacenet\"}", &rc) &&
            rc == FL_ERR_NOT_FOUND);
    T_CHECK(!call(s, "FaceLinkService.DescribeJob",
                  "{\"JobId\":\"00000000-0000-4000-8000-000000000000\"}", &rc) &&
            rc == FL_ERR_NOT_FOUND);
    /* the job */
    r = call(s, "FaceLinkService.ReindexCollection",
             "{\"CollectionId\":\"c\",\"FaceModel\":\"mobilefacenet\"}", &rc);
    T_REQUIRE(r);
    snprintf(job, sizeof(job), "%s", json_string_value(json_object_get(r, "JobId")));
    json_decref(r);
    /* searches keep working while it runs */
    t0 = fl_time_mono_ns();
    snprintf(body, sizeof(body), "{\"CollectionId\":\"c\",\"FaceId\":\"%s\"}",
             json_string_value(json_object_get(json_array_get(before, 1), "FaceId")));
    for (;;) {
        const char *st;
        d = describe(s, job);
        st = d ? json_string_value(json_object_get(d, "Status")) : "?";
        if (strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0)
            break;
        json_decref(d);
        r = call(s, "RekognitionService.SearchFaces", body, &rc);
        T_CHECK(r != NULL);
        json_decref(r);
        searches++;
        if (fl_time_mono_ns() - t0 > 120ull * 1000000000ull)
            break; /* the job is stuck: the checks below fail */
    }
    printf("# %d SearchFaces answered during the job\n", searches);
    T_REQUIRE(d);
    T_CHECK_EQ_STR(json_string_value(json_object_get(d, "Status")), "SUCCEEDED");
    T_CHECK_NEAR(json_number_value(json_object_get(d, "Progress")), 100.0, 1e-9);
    json_decref(d);
    /* the collection switched, faces kept */
    d = call(s, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"c\"}", &rc);
    T_REQUIRE(d);
    T_CHECK_EQ_STR(json_string_value(json_object_get(d, "FaceModelVersion")),
                   fl_face_model_info(FL_FACE_MODEL_MFN)->face_model_version);
    json_decref(d);
    after = list_faces(s);
    T_REQUIRE(after && json_array_size(after) == json_array_size(before));
    json_array_foreach(before, i, v)
    {
        json_t *a = json_deep_copy(v), *b = json_deep_copy(json_array_get(after, i));
        T_CHECK_EQ_STR(json_string_value(json_object_get(b, "IndexFacesModelVersion")),
                       fl_face_model_info(FL_FACE_MODEL_MFN)->face_model_version);
        json_object_del(a, "IndexFacesModelVersion");
        json_object_del(b, "IndexFacesModelVersion");
        T_CHECK(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    /* the new vectors agree with MobileFaceNet on the photo itself */
    {
        char *eb = image_body(1, NULL, ",\"FaceModel\":\"mobilefacenet\"");
        json_t *emb = call(s, "FaceLinkService.EmbedFaces", eb, &rc);
        json_t *ids = json_array(), *req, *got;
        double worst = 1;
        char *rb;
        free(eb);
        T_REQUIRE(emb);
        json_array_foreach(after, i, v)
        {
            if (strcmp(json_string_value(json_object_get(v, "ExternalImageId")), "photo-1") == 0)
                json_array_append(ids, json_object_get(v, "FaceId"));
        }
        req = json_pack("{s:s,s:o}", "CollectionId", "c", "FaceIds", ids);
        rb = json_dumps(req, JSON_COMPACT);
        got = call(s, "FaceLinkService.GetFaceEmbeddings", rb, &rc);
        free(rb);
        json_decref(req);
        T_REQUIRE(got);
        T_CHECK_EQ_INT(json_array_size(json_object_get(got, "Faces")), 3);
        json_array_foreach(json_object_get(got, "Faces"), i, v)
        {
            json_t *bb = json_object_get(json_object_get(v, "Face"), "BoundingBox");
            double best = 1e9, cos = 0;
            size_t k;
            json_t *f;
            json_array_foreach(json_object_get(emb, "Faces"), k, f)
            {
                json_t *fb = json_object_get(json_object_get(f, "FaceDetail"), "BoundingBox");
                double dd = fabs(json_number_value(json_object_get(fb, "Left")) -
                                 json_number_value(json_object_get(bb, "Left"))) +
                            fabs(json_number_value(json_object_get(fb, "Top")) -
                                 json_number_value(json_object_get(bb, "Top")));
                if (dd < best) {
                    best = dd;
                    cos = cosine(json_object_get(v, "Embedding"), json_object_get(f, "Embedding"));
                }
            }
            T_CHECK(best < 1e-6);
            worst = fmin(worst, cos);
            T_CHECK_EQ_INT(json_array_size(json_object_get(v, "Embedding")), 192);
        }
        printf("# re-indexed vs photo (MobileFaceNet): cosine >= %.4f\n", worst);
        T_CHECK(worst >= 0.99);
        json_decref(got);
        json_decref(emb);
    }
    /* a search by image finds each face of the photo first */
    {
        char *sb = image_body(1, "c", "");
        json_t *sr = call(s, "FaceLinkService.SearchAllFacesByImage", sb, &rc);
        free(sb);
        T_REQUIRE(sr);
        json_array_foreach(json_object_get(sr, "SearchedFaces"), i, v)
        {
            json_t *m0 = json_array_get(json_object_get(v, "FaceMatches"), 0);
            T_CHECK_EQ_STR(
                json_string_value(json_object_get(json_object_get(m0, "Face"), "ExternalImageId")),
                "photo-1");
        }
        json_decref(sr);
    }
    json_decref(before);
    json_decref(after);
    fl_service_close(s);
    /* reopened: the index is rebuilt with the new model */
    s = open_svc(dir, NULL);
    T_REQUIRE(s);
    r = call(s, "RekognitionService.SearchFaces", body, &rc);
    T_CHECK(r && json_object_get(r, "FaceMatches") != NULL);
    json_decref(r);
    fl_service_close(s);
    rm_rf(dir);
}

static void test_crash_and_resume(void)
{
    char dir[256], dsn[300], jobs[300], job[64] = "";
    struct fl_service *s;
    struct fl_store *st;
    struct fl_arena a;
    struct fl_store_collection sc;
    json_t *before, *search_before, *r, *d;
    char body[256];
    enum fl_status rc;
    pid_t pid;
    int status = -1;
    DIR *dd;
    struct dirent *de;
    if (!g_models_ok)
        T_SKIP("models absent");
    snprintf(dir, sizeof(dir), "/tmp/fl-test-reindex-crash-%d", (int)getpid());
    s = open_svc(dir, NULL);
    T_REQUIRE(s && seed(s, 4));
    before = list_faces(s);
    T_REQUIRE(before && json_array_size(before) == 13);
    snprintf(body, sizeof(body),
             "{\"CollectionId\":\"c\",\"FaceId\":\"%s\",\"FaceMatchThreshold\":0}",
             json_string_value(json_object_get(json_array_get(before, 0), "FaceId")));
    search_before = call(s, "RekognitionService.SearchFaces", body, &rc);
    T_REQUIRE(search_before);
    fl_service_close(s);
    fflush(stdout);
    pid = fork();
    T_REQUIRE(pid >= 0);
    if (pid == 0) {
        /* the child starts the job and dies after 8 staged faces */
        struct fl_service *c = open_svc(dir, NULL);
        if (!c)
            _exit(3);
        c->reindex_exit_after = 8;
        if (!call(c, "FaceLinkService.ReindexCollection",
                  "{\"CollectionId\":\"c\",\"FaceModel\":\"mobilefacenet\"}", NULL))
            _exit(4);
        sleep(120);
        _exit(5);
    }
    T_REQUIRE(waitpid(pid, &status, 0) == pid);
    T_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* after the crash: the store still serves the old model */
    snprintf(dsn, sizeof(dsn), "%s/facelink.db", dir);
    T_REQUIRE(fl_store_open(dsn, NULL, &st, NULL) == FL_OK);
    fl_arena_init(&a, 0);
    T_REQUIRE(fl_store_collection_get(st, "c", &a, &sc, NULL) == FL_OK);
    T_CHECK_EQ_STR(sc.model_id, fl_face_model_info(FL_FACE_MODEL_DLIB)->id);
    T_CHECK_EQ_INT(sc.face_count, 13);
    fl_arena_fini(&a);
    fl_store_close(st);
    snprintf(jobs, sizeof(jobs), "%s/jobs", dir);
    dd = opendir(jobs);
    T_REQUIRE(dd);
    while ((de = readdir(dd)) != NULL)
        if (strlen(de->d_name) == FL_UUID_STR_LEN + 8)
            snprintf(job, sizeof(job), "%.*s", FL_UUID_STR_LEN, de->d_name);
    closedir(dd);
    T_REQUIRE(job[0]);
    /* reopen: the old answers until the switch, then the job resumes */
    s = open_svc(dir, NULL);
    T_REQUIRE(s);
    d = wait_job(s, job);
    T_REQUIRE(d);
    T_CHECK_EQ_STR(json_string_value(json_object_get(d, "Status")), "SUCCEEDED");
    /* resumed, not restarted: only the 5 faces not staged before the crash */
    T_CHECK(strncmp(json_string_value(json_object_get(d, "StatusMessage")), "5 faces", 7) == 0);
    printf("# %s\n", json_string_value(json_object_get(d, "StatusMessage")));
    json_decref(d);
    r = list_faces(s);
    T_CHECK_EQ_INT(json_array_size(r), 13);
    json_decref(r);
    r = call(s, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"c\"}", &rc);
    T_CHECK(r && strcmp(json_string_value(json_object_get(r, "FaceModelVersion")),
                        fl_face_model_info(FL_FACE_MODEL_MFN)->face_model_version) == 0);
    json_decref(r);
    fl_service_close(s);
    json_decref(before);
    json_decref(search_before);
    rm_rf(dir);
}

static void test_faces_without_crops(void)
{
    char dir[256], job[64];
    struct fl_service *s;
    enum fl_status rc;
    json_t *r, *d;
    if (!g_models_ok)
        T_SKIP("models absent");
    snprintf(dir, sizeof(dir), "/tmp/fl-test-reindex-nocrop-%d", (int)getpid());
    s = open_svc(dir, "none");
    T_REQUIRE(s && seed(s, 1));
    r = call(s, "FaceLinkService.ReindexCollection",
             "{\"CollectionId\":\"c\",\"FaceModel\":\"mobilefacenet\"}", &rc);
    T_REQUIRE(r);
    snprintf(job, sizeof(job), "%s", json_string_value(json_object_get(r, "JobId")));
    json_decref(r);
    d = wait_job(s, job);
    T_REQUIRE(d);
    T_CHECK_EQ_STR(json_string_value(json_object_get(d, "Status")), "FAILED");
    printf("# %s\n", json_string_value(json_object_get(d, "StatusMessage")));
    T_CHECK(strstr(json_string_value(json_object_get(d, "StatusMessage")), "crop") != NULL);
    json_decref(d);
    r = call(s, "RekognitionService.DescribeCollection", "{\"CollectionId\":\"c\"}", &rc);
    T_CHECK(r && strcmp(json_string_value(json_object_get(r, "FaceModelVersion")),
                        fl_face_model_info(FL_FACE_MODEL_DLIB)->face_model_version) == 0);
    json_decref(r);
    fl_service_close(s);
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    char m[1024];
    t_init(argc, argv);
    fl_core_init();
    g_models_ok = t_model("face-api/model", m, sizeof(m)) != NULL;
    T_RUN(test_reindex_dlib_to_mfn);
    T_RUN(test_crash_and_resume);
    T_RUN(test_faces_without_crops);
    return t_done();
}
