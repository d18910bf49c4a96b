/* test_face_pipeline.c: the face pipeline end to end against independent
 * references: face-api's own landmarks (golden, from SSD boxes) through our
 * crop code, the golden MobileFaceNet chips and embeddings through our
 * alignment, LFW same-person vs different-person distances, and the same
 * results from several threads as from one. */
#include "t.h"
#include "t_img.h"
#include "t_jsonl.h"
#include "face/face_int.h"
#include "img/img.h"

#include <pthread.h>

T_MAIN_STATE;

static struct fl_face_engine *g_e;
static struct fl_face_worker *g_w;
static char g_golden[1024];

static int load_golden_image(const char *rel, struct fl_image *img)
{
    char p[2048];
    snprintf(p, sizeof(p), "%s/%s", g_golden, rel);
    return t_load_image(p, img);
}

/* Given face-api's SSD box, our landmark stage must reproduce face-api's
 * landmarks (golden faces_pipeline.jsonl, unrounded float pipeline): the
 * README's tolerance for a faithful float crop is 1e-3 px. */
static void test_landmarks_match_faceapi(void)
{
    char path[2048];
    size_t n = 0;
    double worst = 0;
    json_t **rows;
    if (!g_w || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    snprintf(path, sizeof(path), "%s/faceapi/faces_pipeline.jsonl", g_golden);
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n == 40);
    for (size_t i = 0; i < n; i++) {
        struct fl_image img = {0};
        json_t *box = json_object_get(json_object_get(rows[i], "detection"), "box");
        struct fl_face_box b = {(float)json_number_value(json_object_get(box, "x")),
                                (float)json_number_value(json_object_get(box, "y")),
                                (float)json_number_value(json_object_get(box, "width")),
                                (float)json_number_value(json_object_get(box, "height"))};
        float want[136], got[136];
        T_REQUIRE(load_golden_image(json_string_value(json_object_get(rows[i], "source")), &img));
        T_REQUIRE(t_json_floats(json_object_get(rows[i], "landmarks68"), want, 136) == 136);
        T_REQUIRE(fl__face_landmarks_from_box(g_w, &img, b, got, NULL) == FL_OK);
        for (int k = 0; k < 136; k++)
            worst = fmax(worst, fabs(got[k] - want[k]));
        fl_image_free(&img);
    }
    printf("# landmarks vs face-api: max |diff| %.2g px over 40 faces\n", worst);
    T_CHECK(worst <= 1e-3);
    t_jsonl_free(rows, n);
}

/* Our ArcFace chip from the golden landmarks must equal the golden aligned
 * PNG within 1 LSB, and its embedding the golden one (cosine >= 0.9999). */
static void test_mobilefacenet_chip_and_embedding(void)
{
    char p1[2048], p2[2048];
    size_t n_emb = 0, n_pipe = 0;
    json_t **emb, **pipe;
    double worst_cos = 1;
    int worst_px = 0;
    if (!g_w || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    snprintf(p1, sizeof(p1), "%s/mobilefacenet/embeddings.jsonl", g_golden);
    snprintf(p2, sizeof(p2), "%s/faceapi/faces_pipeline.jsonl", g_golden);
    emb = t_jsonl_load(p1, &n_emb);
    pipe = t_jsonl_load(p2, &n_pipe);
    T_REQUIRE(emb && pipe && n_emb == 40);
    for (size_t i = 0; i < n_emb; i++) {
        const char *id = json_string_value(json_object_get(emb[i], "id"));
        json_t *row = t_jsonl_find(pipe, n_pipe, "id", id);
        struct fl_image img = {0}, chip = {0}, want = {0};
        struct fl_face f = {0};
        float g[192], v[192];
        double dot = 0, n2 = 0;
        T_REQUIRE(row);
        T_REQUIRE(load_golden_image(json_string_value(json_object_get(emb[i], "source")), &img));
        T_REQUIRE(load_golden_image(json_string_value(json_object_get(emb[i], "input")), &want));
        T_REQUIRE(t_json_floats(json_object_get(row, "landmarks68"), f.lm68, 136) == 136);
        T_REQUIRE(t_json_floats(json_object_get(emb[i], "embedding"), g, 192) == 192);
        T_REQUIRE(fl_face_chip(g_w, &img, &f, FL_FACE_MODEL_MFN, &chip, NULL) == FL_OK);
        T_REQUIRE(chip.w == 112 && chip.h == 112 && want.w == 112);
        for (int y = 0; y < 112; y++)
            for (int x = 0; x < 3 * 112; x++)
                worst_px = FL_MAX(worst_px, abs((int)chip.px[y * chip.stride + x] -
                                                (int)want.px[y * want.stride + x]));
        T_REQUIRE(fl_face_embed_chip(g_w, &want, FL_FACE_MODEL_MFN, v, NULL) == FL_OK);
        for (int k = 0; k < 192; k++) {
            dot += (double)v[k] * g[k];
            n2 += (double)g[k] * g[k];
        }
        worst_cos = fmin(worst_cos, dot / sqrt(n2)); /* v is normalised */
        fl_image_free(&img);
        fl_image_free(&chip);
        fl_image_free(&want);
    }
    printf("# MobileFaceNet: chip max |diff| %d LSB, embedding min cosine %.7f\n", worst_px,
           worst_cos);
    T_CHECK(worst_px <= 1);
    T_CHECK(worst_cos >= 0.9999);
    t_jsonl_free(emb, n_emb);
    t_jsonl_free(pipe, n_pipe);
}

/* End to end on the 40 golden LFW images (20 people x 2): one face each,
 * and with each model every same-person pair nearer than the mean
 * different-person pair; report verification accuracy at the best
 * threshold. */
static void run_lfw_pairs(enum fl_face_model m, double *acc, double *gen_mean, double *imp_mean)
{
    char path[2048];
    size_t n = 0;
    json_t **rows;
    int dim = fl_face_model_info(m)->dim;
    float *emb;
    const char **person;
    snprintf(path, sizeof(path), "%s/faceapi/faces_pipeline.jsonl", g_golden);
    rows = t_jsonl_load(path, &n);
    emb = calloc(n * (size_t)dim, sizeof(float));
    person = calloc(n, sizeof(*person));
    *acc = 0;
    for (size_t i = 0; i < n; i++) {
        struct fl_image img = {0};
        struct fl_face *faces = NULL;
        int nf = 0;
        load_golden_image(json_string_value(json_object_get(rows[i], "source")), &img);
        T_CHECK(fl_face_detect(g_w, &img, 0, 0, &faces, &nf, NULL) == FL_OK);
        T_CHECK(nf >= 1);
        if (nf >= 1)
            T_CHECK(fl_face_embed(g_w, &img, &faces[0], m, emb + i * dim, NULL) == FL_OK);
        person[i] = json_string_value(json_object_get(rows[i], "person"));
        fl_free(faces);
        fl_image_free(&img);
    }
    {
        double gs = 0, is = 0;
        int gn = 0, in = 0, best = 0, total = 0;
        float *d = calloc(n * n, sizeof(float));
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                d[i * n + j] = fl_face_distance(m, emb + i * dim, emb + j * dim);
                if (strcmp(person[i], person[j]) == 0)
                    gs += d[i * n + j], gn++;
                else
                    is += d[i * n + j], in++;
            }
        *gen_mean = gs / gn;
        *imp_mean = is / in;
        for (size_t t = 0; t < n * n; t++) {
            float th;
            int ok = 0;
            size_t ti = t / n, tj = t % n;
            if (tj <= ti)
                continue;
            th = d[t];
            total = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++) {
                    bool same = strcmp(person[i], person[j]) == 0;
                    ok += (d[i * n + j] <= th) == same;
                    total++;
                }
            best = FL_MAX(best, ok);
        }
        *acc = (double)best / total;
        free(d);
    }
    free(emb);
    free(person);
    t_jsonl_free(rows, n);
}

static void test_lfw_pairs_dlib(void)
{
    double acc, g, i;
    if (!g_w || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    run_lfw_pairs(FL_FACE_MODEL_DLIB, &acc, &g, &i);
    printf("# dlib: genuine mean %.3f, impostor mean %.3f, best-threshold accuracy %.4f (780 pairs)\n",
           g, i, acc);
    T_CHECK(g < i);
    T_CHECK(acc >= 0.99);
}

static void test_lfw_pairs_mobilefacenet(void)
{
    double acc, g, i;
    if (!g_w || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    run_lfw_pairs(FL_FACE_MODEL_MFN, &acc, &g, &i);
    printf("# mobilefacenet: genuine mean %.3f, impostor mean %.3f, best-threshold accuracy %.4f\n",
           g, i, acc);
    T_CHECK(g < i);
    T_CHECK(acc >= 0.99);
}

/* ============================== Threads ============================== */

#define N_THREADS 3
#define N_IMAGES 6
static struct fl_image g_imgs[N_IMAGES];
static float g_ref[N_IMAGES][128];

struct thread_arg {
    int id, mismatches, failures;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    struct fl_face_worker *w = fl_face_worker_new(g_e, NULL);
    if (!w) {
        a->failures++;
        return NULL;
    }
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < N_IMAGES; k++) {
            int i = (k + a->id) % N_IMAGES;
            struct fl_face *faces = NULL;
            int nf = 0;
            float v[128];
            if (fl_face_detect(w, &g_imgs[i], 0, 1, &faces, &nf, NULL) != FL_OK || nf < 1 ||
                fl_face_embed(w, &g_imgs[i], &faces[0], FL_FACE_MODEL_DLIB, v, NULL) != FL_OK) {
                a->failures++;
            } else if (memcmp(v, g_ref[i], sizeof(v)) != 0) {
                a->mismatches++;
            }
            fl_free(faces);
        }
    }
    fl_face_worker_free(w);
    return NULL;
}

static void test_threads_match_single_thread(void)
{
    static const char *ids[N_IMAGES] = {"src/Serena_Williams_0001.png", "src/Kofi_Annan_0001.png",
                                        "src/Yao_Ming_0002.png",        "src/Lucy_Liu_0001.png",
                                        "src/Dalai_Lama_0002.png",      "src/group1.png"};
    pthread_t th[N_THREADS];
    struct thread_arg args[N_THREADS] = {{0}};
    if (!g_w || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    for (int i = 0; i < N_IMAGES; i++) {
        struct fl_face *faces = NULL;
        int nf = 0;
        T_REQUIRE(load_golden_image(ids[i], &g_imgs[i]));
        T_REQUIRE(fl_face_detect(g_w, &g_imgs[i], 0, 1, &faces, &nf, NULL) == FL_OK && nf == 1);
        T_REQUIRE(fl_face_embed(g_w, &g_imgs[i], &faces[0], FL_FACE_MODEL_DLIB, g_ref[i], NULL) ==
                  FL_OK);
        fl_free(faces);
    }
    for (int t = 0; t < N_THREADS; t++) {
        args[t].id = t;
        T_REQUIRE(pthread_create(&th[t], NULL, thread_main, &args[t]) == 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        T_CHECK_EQ_INT(args[t].failures, 0);
        T_CHECK_EQ_INT(args[t].mismatches, 0);
    }
    for (int i = 0; i < N_IMAGES; i++)
        fl_image_free(&g_imgs[i]);
}

int main(int argc, char **argv)
{
    char dir[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_shared("golden/README.md", g_golden, sizeof(g_golden)))
        *strrchr(g_golden, '/') = '\0';
    else
        g_golden[0] = '\0';
    if (t_model("face-api/model", dir, sizeof(dir))) {
        struct fl_err e;
        struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
        g_e = fl_face_engine_new(&cfg, &e);
        if (!g_e)
            printf("# engine: %s\n", e.msg);
        else
            g_w = fl_face_worker_new(g_e, &e);
        if (g_e && !g_w)
            printf("# worker: %s\n", e.msg);
    }
    T_RUN(test_landmarks_match_faceapi);
    T_RUN(test_mobilefacenet_chip_and_embedding);
    T_RUN(test_lfw_pairs_dlib);
    T_RUN(test_lfw_pairs_mobilefacenet);
    T_RUN(test_threads_match_single_thread);
    fl_face_worker_free(g_w);
    fl_face_engine_free(g_e);
    return t_done();
}
