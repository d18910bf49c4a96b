/* test_api_crop.c: the face data IndexFaces retains for re-indexing
 * (api/crop.c). Checks, on the face-api demo photos:
 *   - the blob's layout, read here from the documented offsets (not through
 *     crop.c): magic, kind, size, a JPEG at offset 564;
 *   - the landmarks stored in it are where the detector finds the face's
 *     landmarks when it runs again on the decoded crop (an independent
 *     check of the mapping into crop coordinates);
 *   - embeddings re-made from the crop, for BOTH models, are close to the
 *     ones made from the photo (the crop must serve any model's chip);
 *   - IndexFaces keeps a crop per face by default, none with "none", the
 *     whole photo with "images"; an unknown mode refuses to open. */
#include "t.h"
#include "api/api.h"
#include "facelink.h"
#include "img/img.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

T_MAIN_STATE;

static struct fl_face_engine *g_eng;
static struct fl_face_worker *g_w;
static char g_models[1024];

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int load(int i, struct fl_image *img)
{
    char rel[64], p[1024];
    uint8_t *buf = NULL;
    size_t n = 0;
    struct fl_img_decode_opts o;
    int ok;
    snprintf(rel, sizeof(rel), "face-api/demo/sample%d.jpg", i);
    if (!t_model(rel, p, sizeof(p)) || fl_file_read(p, 16u << 20, &buf, &n, NULL) != FL_OK)
        return 0;
    fl_img_decode_opts_default(&o);
    ok = fl_img_decode(buf, n, &o, img, NULL, NULL) == FL_OK;
    fl_free(buf);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void test_crop_layout_landmarks_and_embeddings(void)
{
    double worst_lm = 0, worst_dlib = 0, worst_mfn_cos = 1, worst_fused_cos = 1, lm_err[64],
           median;
    int n_faces = 0, n_lm = 0;
    if (!g_w)
        T_SKIP("models absent");
    for (int s = 1; s <= 6; s++) {
        struct fl_image img = {0};
        struct fl_face *faces = NULL;
        int n = 0;
        T_REQUIRE(load(s, &img));
        T_REQUIRE(fl_face_detect(g_w, &img, 0, 0, &faces, &n, NULL) == FL_OK);
        for (int i = 0; i < n; i++) {
            uint8_t *blob = NULL;
            size_t len = 0;
            struct fl_image crop = {0};
            struct fl_img_decode_opts o;
            struct fl_face *again = NULL;
            int n2 = 0;
            float e0[FL_FACE_MAX_DIM], e1[FL_FACE_MAX_DIM];
            double d = 0;
            if (fminf(faces[i].box.w, faces[i].box.h) < 40)
                continue; /* tiny background faces: nothing to re-embed reliably */
            T_REQUIRE(fl__api_crop_make(FL__API_CROP_CROPS, &img, &faces[i], &blob, &len, NULL) ==
                      FL_OK);
            n_faces++;
            /* layout from the documented offsets */
            T_CHECK(memcmp(blob, "FLC1", 4) == 0 && blob[4] == 1 && blob[5] == 1);
            T_CHECK_EQ_INT(rd32(blob + 8), 320);
            T_CHECK_EQ_INT(rd32(blob + 12), 320);
            T_CHECK_EQ_INT(rd32(blob + 560) + 564, len);
            T_CHECK(blob[564] == 0xFF && blob[565] == 0xD8); /* JPEG SOI */
            T_CHECK(len < 60000);
            /* the detector on the crop finds the landmarks the blob states */
            fl_img_decode_opts_default(&o);
            T_REQUIRE(fl_img_decode(blob + 564, len - 564, &o, &crop, NULL, NULL) == FL_OK);
            T_REQUIRE(fl_face_detect(g_w, &crop, 0, 1, &again, &n2, NULL) == FL_OK && n2 == 1);
            {
                double sum = 0, iod;
                float lx = 0, ly = 0, rx = 0, ry = 0;
                for (int k = 0; k < 68; k++) {
                    float sx, sy;
                    memcpy(&sx, blob + 16 + 8 * k, 4);
                    memcpy(&sy, blob + 20 + 8 * k, 4);
                    sum += hypot(sx - again[0].lm68[2 * k], sy - again[0].lm68[2 * k + 1]);
                    if (k >= 36 && k < 42) {
                        lx += sx / 6;
                        ly += sy / 6;
                    } else if (k >= 42 && k < 48) {
                        rx += sx / 6;
                        ry += sy / 6;
                    }
                }
                iod = hypot(rx - lx, ry - ly);
                /* mean landmark error over the inter-ocular distance */
                worst_lm = fmax(worst_lm, sum / 68 / iod);
                if (n_lm < 64)
                    lm_err[n_lm++] = sum / 68 / iod;
            }
            fl_free(again);
            fl_image_free(&crop);
            /* dlib from the crop vs from the photo */
            T_REQUIRE(fl_face_embed(g_w, &img, &faces[i], FL_FACE_MODEL_DLIB, e0, NULL) == FL_OK);
            T_REQUIRE(fl__api_crop_embed(g_w, blob, len, FL_FACE_MODEL_DLIB, e1, NULL) == FL_OK);
            for (int k = 0; k < 128; k++)
                d += (double)(e0[k] - e1[k]) * (e0[k] - e1[k]);
            worst_dlib = fmax(worst_dlib, sqrt(d));
            /* MobileFaceNet likewise */
            T_REQUIRE(fl_face_embed(g_w, &img, &faces[i], FL_FACE_MODEL_MFN, e0, NULL) == FL_OK);
            T_REQUIRE(fl__api_crop_embed(g_w, blob, len, FL_FACE_MODEL_MFN, e1, NULL) == FL_OK);
            worst_mfn_cos = fmin(worst_mfn_cos, cosine(e0, e1, 192));
            /* and the fused default, which re-indexing from crops produces too */
            T_REQUIRE(fl_face_embed(g_w, &img, &faces[i], FL_FACE_MODEL_FUSED, e0, NULL) == FL_OK);
            T_REQUIRE(fl__api_crop_embed(g_w, blob, len, FL_FACE_MODEL_FUSED, e1, NULL) == FL_OK);
            worst_fused_cos = fmin(worst_fused_cos, cosine(e0, e1, 320));
            fl_free(blob);
        }
        fl_free(faces);
        fl_image_free(&img);
    }
    qsort(lm_err, (size_t)n_lm, sizeof(double), cmp_double);
    median = n_lm ? lm_err[n_lm / 2] : 1e9;
    printf("# %d faces: mean landmark error on re-detection median %.4f, worst %.4f IOD; "
           "dlib |photo - crop| <= %.4f; mfn cos >= %.4f; fused cos >= %.4f\n",
           n_faces, median, worst_lm, worst_dlib, worst_mfn_cos, worst_fused_cos);
    T_CHECK(n_faces >= 10);
    /* Re-detecting on the crop moves the detector box, and the landmark net
     * follows its box: measured median 0.03, worst 0.18 IOD on these 22
     * faces. A wrong mapping (swapped axes, inverse transform, wrong scale)
     * is off by a whole IOD or more. */
    T_CHECK(median < 0.05);
    T_CHECK(worst_lm < 0.3);
    /* dlib's same-person threshold is 0.6: re-embedding must move a face by
     * a small fraction of it; MobileFaceNet's pairs match at cosine ~0.5 */
    T_CHECK(worst_dlib < 0.15);
    T_CHECK(worst_mfn_cos > 0.95);
    /* fused: Similarity 99 is at distance (1 - cos) 0.108; re-embedding must
     * move a face by less than a tenth of that (measured: 0.0006) */
    T_CHECK(worst_fused_cos > 1 - 0.0108);
}

static void test_crop_open_rejects_garbage(void)
{
    uint8_t junk[600] = "FLC1";
    struct fl_image img;
    struct fl_face f;
    struct fl_err e;
    T_CHECK_EQ_INT(fl__api_crop_open(junk, 10, &img, &f, &e), FL_ERR_CORRUPT);
    junk[4] = 1;
    junk[5] = 1;
    junk[560] = 36; /* announces 36 bytes, has 36: not a JPEG */
    T_CHECK_EQ_INT(fl__api_crop_open(junk, 600, &img, &f, &e), FL_ERR_CORRUPT);
    junk[560] = 37;
    T_CHECK_EQ_INT(fl__api_crop_open(junk, 600, &img, &f, &e), FL_ERR_CORRUPT);
}

/* IndexFaces sample1 under a retention mode; the crop kinds stored. */
static void index_with(const char *mode, int *n_faces, int *n_crops, int *kind)
{
    char dir[256], dsn[300], p[1024];
    struct fl_service_config cfg = {0};
    struct fl_service *svc;
    struct fl_err e;
    struct fl_store *st = NULL;
    struct fl_arena a;
    struct fl_store_face_query q;
    struct fl_store_face_list l;
    uint8_t *buf = NULL;
    size_t n = 0;
    char *body, *out = NULL;
    snprintf(dir, sizeof(dir), "/tmp/fl-test-crop-%d-%s", (int)getpid(), mode ? mode : "default");
    cfg.data_dir = dir;
    cfg.crop_retention = mode;
    *n_faces = *n_crops = *kind = 0;
    svc = fl_service_open(&cfg, &e);
    T_REQUIRE(svc);
    T_REQUIRE(fl_service_call(svc, "RekognitionService.CreateCollection",
                              "{\"CollectionId\":\"c\"}", 20, &out, NULL, &e) == FL_OK);
    fl_free_string(out);
    T_REQUIRE(t_model("face-api/demo/sample1.jpg", p, sizeof(p)) &&
              fl_file_read(p, 16u << 20, &buf, &n, NULL) == FL_OK);
    body = malloc(fl_base64_encoded_len(n) + 64);
    strcpy(body, "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"");
    fl_base64_encode(buf, n, body + strlen(body));
    strcat(body, "\"}}");
    fl_free(buf);
    T_REQUIRE(fl_service_call(svc, "RekognitionService.IndexFaces", body, strlen(body), &out, NULL,
                              &e) == FL_OK);
    fl_free_string(out);
    free(body);
    fl_service_close(svc);
    snprintf(dsn, sizeof(dsn), "%s/facelink.db", dir);
    T_REQUIRE(fl_store_open(dsn, NULL, &st, &e) == FL_OK);
    fl_arena_init(&a, 0);
    memset(&q, 0, sizeof(q));
    q.collection = "c";
    q.limit = 100;
    q.flags = FL_STORE_WANT_CROP;
    T_REQUIRE(fl_store_faces_list(st, &q, &a, &l, &e) == FL_OK);
    *n_faces = (int)l.n;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].crop) {
            (*n_crops)++;
            *kind = ((const uint8_t *)l.v[i].crop)[4];
        }
    fl_arena_fini(&a);
    fl_store_close(st);
    snprintf(p, sizeof(p), "rm -rf %s", dir);
    if (system(p) != 0)
        printf("# could not remove %s\n", dir);
}

static void test_index_faces_retention(void)
{
    int nf, nc, kind;
    struct fl_service_config cfg = {0};
    struct fl_err e;
    if (!g_w)
        T_SKIP("models absent");
    index_with(NULL, &nf, &nc, &kind);
    T_CHECK_EQ_INT(nf, 3);
    T_CHECK_EQ_INT(nc, 3);
    T_CHECK_EQ_INT(kind, 1);
    index_with("none", &nf, &nc, &kind);
    T_CHECK_EQ_INT(nf, 3);
    T_CHECK_EQ_INT(nc, 0);
    index_with("images", &nf, &nc, &kind);
    T_CHECK_EQ_INT(nc, 3);
    T_CHECK_EQ_INT(kind, 2);
    cfg.no_store = 1;
    cfg.crop_retention = "all";
    T_CHECK(fl_service_open(&cfg, &e) == NULL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    if (t_model("face-api/model", g_models, sizeof(g_models))) {
        struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
        struct fl_err e;
        char *slash = strrchr(g_models, '/');
        *slash = '\0';
        slash = strrchr(g_models, '/');
        *slash = '\0';
        cfg.models_dir = g_models;
        g_eng = fl_face_engine_new(&cfg, &e);
        if (g_eng)
            g_w = fl_face_worker_new(g_eng, &e);
        if (!g_w)
            printf("# engine: %s\n", e.msg);
    }
    T_RUN(test_crop_layout_landmarks_and_embeddings);
    T_RUN(test_crop_open_rejects_garbage);
    T_RUN(test_index_faces_retention);
    fl_face_worker_free(g_w);
    fl_face_engine_free(g_eng);
    return t_done();
}
