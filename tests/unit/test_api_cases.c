/* test_api_cases.c: request/response cases for every operation, run
 * in-process through fl_service_call().
 *
 * Layout: tests/api/cases/<Operation>/<name>.req.json is the request body,
 * <name>.resp.json the expected answer, and an optional <name>.setup.json a
 * list of steps run first on a fresh service (own temporary data dir):
 *     {"call": "CreateCollection", "body": {...}}      any operation (must succeed)
 *     {"seed": "coll", "faces": [{"FaceId": "...", "Embedding": [..], "UserId": "..."}]}
 *         insert faces directly (IndexFaces needs the face engine); the
 *         embedding is zero-padded to the model's dimension.
 * Expected answers are compared structurally: same keys (no extra, none
 * missing), arrays in order, numbers within 1e-4 (relative), and the masks
 * "<any>", "<uuid>", "<number>", "<string>" match any value of that kind.
 * An error answer is {"__type": "<ExceptionName>", "message": "<substring>"}.
 * For every error case the test also checks that the call changed nothing:
 * a dump of all collections, faces, users and tags before and after must be
 * identical. */
#include "t.h"
#include "api/api.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

T_MAIN_STATE;

#define CASES_DIR "tests/api/cases"

/* Remove a data dir (flat: the database and its WAL files). */
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

static struct fl_service *open_fresh(char *dir, size_t cap)
{
    struct fl_service_config cfg;
    struct fl_err err;
    struct fl_service *svc;
    snprintf(dir, cap, "/tmp/fl_api_test_XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.default_model = "dlib"; /* the cases' expected answers use dlib's Euclidean geometry */
    cfg.region = "us-east-1";
    cfg.account_id = "123456789012";
    svc = fl_service_open(&cfg, &err);
    if (!svc)
        printf("# fl_service_open: %s\n", err.msg);
    return svc;
}

/* Call op with a JSON body; returns the parsed response (or the error as
 * {"__type","message"}). */
static json_t *call_json(struct fl_service *svc, const char *op, const json_t *body,
                         enum fl_status *out_rc)
{
    char target[128], *txt = NULL, *out = NULL;
    size_t out_len = 0;
    struct fl_err err;
    enum fl_status rc;
    json_t *r;
    json_error_t je;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    txt = json_dumps(body, JSON_COMPACT);
    rc = fl_service_call(svc, target, txt, txt ? strlen(txt) : 0, &out, &out_len, &err);
    fl_free(txt);
    if (out_rc)
        *out_rc = rc;
    if (rc != FL_OK)
        return json_pack("{s:s,s:s}", "__type", fl_status_exception(rc), "message", err.msg);
    r = json_loadb(out, out_len, 0, &je);
    fl_free_string(out);
    return r;
}

struct seed_ud {
    const json_t *step;
};

static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    const json_t *step = ((struct seed_ud *)ud)->step;
    const char *coll = json_string_value(json_object_get(step, "seed"));
    const json_t *faces = json_object_get(step, "faces");
    struct fl__api_coll *c;
    size_t n = json_array_size(faces);
    struct fl_store_face *fv;
    float *vecs;
    enum fl_status rc = fl__api_coll_require(ctx->svc, coll, &c, err);
    if (rc != FL_OK)
        return rc;
    fv = fl_calloc(n, sizeof(*fv));
    vecs = fl_calloc(n * c->model->dim, sizeof(float));
    if (!fv || !vecs) {
        fl_free(fv);
        fl_free(vecs);
        return FL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *f = json_array_get(faces, i);
        const json_t *e = json_object_get(f, "Embedding");
        const char *img = json_string_value(json_object_get(f, "ImageId"));
        for (size_t k = 0; k < json_array_size(e) && k < c->model->dim; k++)
            vecs[i * c->model->dim + k] = (float)json_number_value(json_array_get(e, k));
        snprintf(fv[i].face_id, sizeof(fv[i].face_id), "%s",
                 json_string_value(json_object_get(f, "FaceId")));
        snprintf(fv[i].image_id, sizeof(fv[i].image_id), "%s",
                 img ? img : "11111111-2222-5333-8444-555555555555");
        fv[i].external_image_id = json_string_value(json_object_get(f, "ExternalImageId"));
        fv[i].user_id = json_string_value(json_object_get(f, "UserId"));
        fv[i].bbox.left = 0.25f;
        fv[i].bbox.top = 0.125f;
        fv[i].bbox.width = 0.5f;
        fv[i].bbox.height = 0.5f;
        fv[i].confidence = 99.5f;
        fv[i].model_version = c->model->face_model_version;
        fv[i].embedding = vecs + i * c->model->dim;
        fv[i].dim = c->model->dim;
    }
    rc = fl__api_faces_commit(ctx, c, fv, n, err);
    fl_free(fv);
    fl_free(vecs);
    return rc;
}

static bool run_setup(struct fl_service *svc, const json_t *steps)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        if (json_object_get(s, "seed")) {
            struct seed_ud ud = {s};
            struct fl_err err;
            if (fl__api_with_ctx(svc, seed_fn, &ud, &err) != FL_OK) {
                printf("# setup step %zu (seed): %s\n", i, err.msg);
                return false;
            }
        } else {
            enum fl_status rc;
            json_t *r = call_json(svc, json_string_value(json_object_get(s, "call")),
                                  json_object_get(s, "body"), &rc);
            if (rc != FL_OK) {
                char *d = json_dumps(r, JSON_COMPACT);
                printf("# setup step %zu failed: %s\n", i, d ? d : "?");
                fl_free(d);
                json_decref(r);
                return false;
            }
            json_decref(r);
        }
    }
    return true;
}

/* Everything observable through the API, for "a failed call changes nothing". */
static json_t *dump_state(struct fl_service *svc)
{
    json_t *st = json_object(), *body = json_object();
    json_t *lc = call_json(svc, "ListCollections", body, NULL);
    json_t *ids = json_object_get(lc, "CollectionIds");
    size_t i;
    json_t *id;
    json_object_set(st, "collections", lc);
    json_array_foreach(ids, i, id)
    {
        json_t *b = json_pack("{s:O}", "CollectionId", id);
        json_t *one = json_object();
        char arn[512];
        json_object_set_new(one, "describe", call_json(svc, "DescribeCollection", b, NULL));
        json_object_set_new(one, "faces", call_json(svc, "ListFaces", b, NULL));
        json_object_set_new(one, "users", call_json(svc, "ListUsers", b, NULL));
        snprintf(arn, sizeof(arn), "arn:aws:rekognition:us-east-1:123456789012:collection/%s",
                 json_string_value(id));
        json_decref(b);
        b = json_pack("{s:s}", "ResourceArn", arn);
        json_object_set_new(one, "tags", call_json(svc, "ListTagsForResource", b, NULL));
        json_decref(b);
        json_object_set_new(st, json_string_value(id), one);
    }
    json_decref(lc);
    json_decref(body);
    return st;
}

static bool is_uuid(const char *s)
{
    return s && fl__api_pattern_match(
                    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", s) == 1;
}

/* Structural compare; prints the first difference with its path. */
static bool match(const json_t *want, const json_t *got, const char *path)
{
    char sub[512];
    if (json_is_string(want)) {
        const char *w = json_string_value(want);
        if (strcmp(w, "<any>") == 0)
            return got != NULL;
        if (strcmp(w, "<uuid>") == 0 && json_is_string(got) && is_uuid(json_string_value(got)))
            return true;
        if (strcmp(w, "<number>") == 0 && json_is_number(got))
            return true;
        if (strcmp(w, "<string>") == 0 && json_is_string(got))
            return true;
        if (json_is_string(got) && strcmp(w, json_string_value(got)) == 0)
            return true;
        printf("# %s: want \"%s\", got %s\n", path, w,
               json_is_string(got) ? json_string_value(got) : "(not a string)");
        return false;
    }
    if (json_is_number(want)) {
        double w = json_number_value(want), g;
        if (!json_is_number(got)) {
            printf("# %s: want a number\n", path);
            return false;
        }
        g = json_number_value(got);
        if (fabs(w - g) <= 1e-4 * fmax(1.0, fabs(w)))
            return true;
        printf("# %s: want %.9g, got %.9g\n", path, w, g);
        return false;
    }
    if (json_is_array(want)) {
        size_t i;
        json_t *w;
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) {
            printf("# %s: want a list of %zu, got %zu\n", path, json_array_size(want),
                   json_is_array(got) ? json_array_size(got) : (size_t)0);
            return false;
        }
        json_array_foreach(want, i, w)
        {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (!match(w, json_array_get(got, i), sub))
                return false;
        }
        return true;
    }
    if (json_is_object(want)) {
        const char *k;
        json_t *w;
        if (!json_is_object(got)) {
            printf("# %s: want an object\n", path);
            return false;
        }
        json_object_foreach((json_t *)want, k, w)
        {
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            if (!json_object_get(got, k)) {
                printf("# %s: missing\n", sub);
                return false;
            }
            if (!match(w, json_object_get(got, k), sub))
                return false;
        }
        json_object_foreach((json_t *)got, k, w)
        {
            if (!json_object_get(want, k)) {
                printf("# %s.%s: unexpected member\n", path, k);
                return false;
            }
        }
        return true;
    }
    if (json_equal((json_t *)want, (json_t *)got))
        return true;
    printf("# %s: values differ\n", path);
    return false;
}

static json_t *load(const char *path)
{
    json_error_t je;
    json_t *v = json_load_file(path, 0, &je);
    if (!v && access(path, R_OK) == 0)
        printf("# %s: %s (line %d)\n", path, je.text, je.line);
    return v;
}

static int n_cases, n_error_cases;

static void run_case(const char *op, const char *name)
{
    char p_req[1024], p_resp[1024], p_setup[1024], dir[64];
    json_t *req, *want, *setup, *got, *before = NULL, *after;
    struct fl_service *svc;
    enum fl_status rc;
    bool is_err;
    snprintf(p_req, sizeof(p_req), CASES_DIR "/%s/%s.req.json", op, name);
    snprintf(p_resp, sizeof(p_resp), CASES_DIR "/%s/%s.resp.json", op, name);
    snprintf(p_setup, sizeof(p_setup), CASES_DIR "/%s/%s.setup.json", op, name);
    req = load(p_req);
    want = load(p_resp);
    setup = load(p_setup);
    if (!req || !want) {
        printf("# %s/%s: missing or bad req/resp file\n", op, name);
        t_g.cur_failed++;
        goto done;
    }
    svc = open_fresh(dir, sizeof(dir));
    if (!svc) {
        t_g.cur_failed++;
        goto done;
    }
    n_cases++;
    if (setup && !run_setup(svc, setup)) {
        printf("# %s/%s: setup failed\n", op, name);
        t_g.cur_failed++;
        goto close;
    }
    is_err = json_object_get(want, "__type") != NULL;
    if (is_err)
        before = dump_state(svc);
    got = call_json(svc, op, req, &rc);
    if (is_err) {
        const char *msg = json_string_value(json_object_get(want, "message"));
        const char *gmsg = json_string_value(json_object_get(got, "message"));
        n_error_cases++;
        if (rc == FL_OK ||
            strcmp(json_string_value(json_object_get(want, "__type")), fl_status_exception(rc)) !=
                0 ||
            (msg && (!gmsg || !strstr(gmsg, msg)))) {
            char *d = json_dumps(got, JSON_COMPACT);
            printf("# %s/%s: want %s \"%s\", got %s\n", op, name,
                   json_string_value(json_object_get(want, "__type")), msg ? msg : "", d);
            fl_free(d);
            t_g.cur_failed++;
        }
        after = dump_state(svc);
        if (!json_equal(before, after)) {
            printf("# %s/%s: the failed call changed the state\n", op, name);
            t_g.cur_failed++;
        }
        json_decref(after);
        json_decref(before);
    } else {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", op, name);
        if (rc != FL_OK) {
            char *d = json_dumps(got, JSON_COMPACT);
            printf("# %s: failed: %s\n", path, d);
            fl_free(d);
            t_g.cur_failed++;
        } else if (!match(want, got, path)) {
            t_g.cur_failed++;
        }
    }
    json_decref(got);
close:
    fl_service_close(svc);
    rm_rf(dir);
done:
    json_decref(req);
    json_decref(want);
    json_decref(setup);
}

static void test_cases(void)
{
    DIR *d = opendir(CASES_DIR);
    struct dirent *e;
    int ops_seen = 0;
    if (!d)
        T_SKIP("tests/api/cases not found (run from the repository root)");
    while ((e = readdir(d))) {
        char sub[sizeof(CASES_DIR) + 300];
        DIR *d2;
        struct dirent *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), CASES_DIR "/%s", e->d_name);
        d2 = opendir(sub);
        if (!d2)
            continue;
        if (!fl__api_spec_find(e->d_name)) {
            printf("# case dir %s is not an operation\n", e->d_name);
            t_g.cur_failed++;
        }
        ops_seen++;
        while ((f = readdir(d2))) {
            size_t n = strlen(f->d_name);
            char name[256];
            if (n <= 9 || strcmp(f->d_name + n - 9, ".req.json") != 0 || n - 9 >= sizeof(name))
                continue;
            memcpy(name, f->d_name, n - 9);
            name[n - 9] = '\0';
            run_case(e->d_name, name);
        }
        closedir(d2);
    }
    closedir(d);
    printf("# %d cases (%d error cases) over %d operations\n", n_cases, n_error_cases, ops_seen);
    T_CHECK(ops_seen == (int)fl__api_spec_n_ops);
}

/* Protocol-level errors that do not fit the per-operation layout. */
static void test_protocol_errors(void)
{
    char dir[64], *out = NULL;
    size_t n;
    struct fl_err err;
    struct fl_service *svc = open_fresh(dir, sizeof(dir));
    T_REQUIRE(svc != NULL);
    T_CHECK_EQ_INT(fl_service_call(svc, "RekognitionService.NoSuchOp", "{}", 2, &out, &n, &err),
                   FL_ERR_UNKNOWN_OPERATION);
    T_CHECK_EQ_INT(fl_service_call(svc, "Bogus.ListCollections", "{}", 2, &out, &n, &err),
                   FL_ERR_UNKNOWN_OPERATION);
    T_CHECK_EQ_INT(fl_service_call(svc, NULL, "{}", 2, &out, &n, &err), FL_ERR_UNKNOWN_OPERATION);
    T_CHECK_EQ_INT(
        fl_service_call(svc, "RekognitionService.ListCollections", "{\"a\":", 5, &out, &n, &err),
        FL_ERR_SERIALIZATION);
    T_CHECK_EQ_INT(
        fl_service_call(svc, "RekognitionService.ListCollections", "[]", 2, &out, &n, &err),
        FL_ERR_SERIALIZATION);
    /* the body need not be NUL-terminated; an empty body is {} */
    T_CHECK_EQ_INT(
        fl_service_call(svc, "RekognitionService.ListCollections", "{}xxxx", 2, &out, &n, &err),
        FL_OK);
    fl_free_string(out);
    out = NULL;
    T_CHECK_EQ_INT(fl_service_call(svc, "FaceLinkService.ListCollections", NULL, 0, &out, &n, &err),
                   FL_OK);
    T_CHECK(out && strcmp(out, "{\"CollectionIds\":[],\"FaceModelVersions\":[]}") == 0);
    fl_free_string(out);
    fl_service_close(svc);
    rm_rf(dir);
}

/* The indexes are rebuilt from the store when the service is reopened. */
static void test_reopen_rebuilds_index(void)
{
    char dir[64];
    struct fl_service_config cfg;
    struct fl_err err;
    struct fl_service *svc = open_fresh(dir, sizeof(dir));
    json_t *steps, *r, *b;
    enum fl_status rc;
    T_REQUIRE(svc != NULL);
    steps = json_loads("[{\"call\":\"CreateCollection\",\"body\":{\"CollectionId\":\"c\"}},"
                       "{\"seed\":\"c\",\"faces\":["
                       "{\"FaceId\":\"00000000-0000-4000-8000-000000000001\",\"Embedding\":[1]},"
                       "{\"FaceId\":\"00000000-0000-4000-8000-000000000002\","
                       "\"Embedding\":[1,0.1]}]}]",
                       0, NULL);
    T_CHECK(run_setup(svc, steps));
    json_decref(steps);
    fl_service_close(svc);
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.default_model = "dlib";
    svc = fl_service_open(&cfg, &err);
    T_REQUIRE(svc != NULL);
    b = json_pack("{s:s,s:s}", "CollectionId", "c", "FaceId",
                  "00000000-0000-4000-8000-000000000001");
    r = call_json(svc, "SearchFaces", b, &rc);
    T_CHECK_EQ_INT(rc, FL_OK);
    T_CHECK_EQ_INT(json_array_size(json_object_get(r, "FaceMatches")), 1);
    json_decref(r);
    json_decref(b);
    fl_service_close(svc);
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_OFF, false);
    T_RUN(test_cases);
    T_RUN(test_protocol_errors);
    T_RUN(test_reopen_rebuilds_index);
    return t_done();
}
