/* test_face_embed_batch.c: fl_face_embed_chips() runs chips in batches
 * (2, 4, 8 per pass for the dlib ResNet; MobileFaceNet is set to 1, see
 * emb_max_batch in pipeline.c, and checked the same way for when it is
 * raised). Checked: for chip counts that take every grouping (1, 2, 3 =
 * 2+1, 5 = 4+1, 8, 11 = 8+2+1, 16), the batched embeddings are bit-equal to
 * fl_face_embed_chip() one chip at a time (the batch-1 executor, itself checked against the
 * scalar reference and the golden vectors in other tests); the chips are
 * real face chips (faces detected in face-api's demo photo, their mirror
 * images, brightness-shifted copies), so every item differs. Also: bad
 * chips and counts, and batch executors failing to allocate (NOMEM, no
 * leak, and the next call works). */
#include "t.h"
#include "face/face.h"
#include "img/img.h"

T_MAIN_STATE;

static struct fl_face_engine *g_e;
static struct fl_face_worker *g_w;
#define N_CHIPS 16
static struct fl_image g_chips[FL_FACE_MODEL_COUNT_][N_CHIPS];
static bool g_have_chips;

/* A copy of src, mirrored when mirror, every byte shifted by delta (clamped). */
static bool derive_chip(const struct fl_image *src, bool mirror, int delta, struct fl_image *out)
{
    if (fl_image_alloc(src->w, src->h, out, NULL) != FL_OK)
        return false;
    for (int y = 0; y < src->h; y++) {
        for (int x = 0; x < src->w; x++) {
            const uint8_t *s = src->px + (size_t)y * src->stride + 3 * (size_t)x;
            uint8_t *d =
                out->px + (size_t)y * out->stride + 3 * (size_t)(mirror ? src->w - 1 - x : x);
            for (int c = 0; c < 3; c++) {
                int v = s[c] + delta;
                d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    return true;
}

/* Chips of the faces in the demo photo, then derived copies up to N_CHIPS. */
static void make_chips(void)
{
    char path[1024];
    uint8_t *buf = NULL;
    size_t n = 0;
    struct fl_image img = {0};
    struct fl_img_decode_opts o;
    struct fl_face *faces = NULL;
    int nf = 0;
    if (!g_w || !t_model("face-api/demo/sample2.jpg", path, sizeof(path)))
        return;
    fl_img_decode_opts_default(&o);
    if (fl_file_read(path, 64u << 20, &buf, &n, NULL) != FL_OK)
        return;
    if (fl_img_decode(buf, n, &o, &img, NULL, NULL) == FL_OK &&
        fl_face_detect(g_w, &img, 0, 4, &faces, &nf, NULL) == FL_OK && nf >= 1) {
        g_have_chips = true;
        for (int m = 0; m < FL_FACE_MODEL_COUNT_ && g_have_chips; m++) {
            for (int i = 0; i < N_CHIPS && g_have_chips; i++) {
                if (i < nf)
                    g_have_chips = fl_face_chip(g_w, &img, &faces[i], (enum fl_face_model)m,
                                                &g_chips[m][i], NULL) == FL_OK;
                else
                    g_have_chips = derive_chip(&g_chips[m][i % nf], (i / nf) % 2 == 1,
                                               (i / nf) * 7 - 20, &g_chips[m][i]);
            }
        }
    }
    printf("# %d faces in the demo photo\n", nf);
    fl_free(faces);
    fl_image_free(&img);
    fl_free(buf);
}

static void check_model(enum fl_face_model m, const int *counts, int n_counts)
{
    const int dim = fl_face_model_info(m)->dim;
    float one[N_CHIPS][192], many[N_CHIPS * 192];
    struct fl_err err = {0};
    for (int i = 0; i < N_CHIPS; i++)
        T_REQUIRE(fl_face_embed_chip(g_w, &g_chips[m][i], m, one[i], &err) == FL_OK);
    /* the chips differ, so the embeddings do */
    T_CHECK(memcmp(one[0], one[N_CHIPS - 1], (size_t)dim * sizeof(float)) != 0);
    for (int c = 0; c < n_counts; c++) {
        int n = counts[c];
        /* start at an offset so each count sees other chips */
        const struct fl_image *chips = &g_chips[m][N_CHIPS - n];
        memset(many, 0, sizeof(many));
        T_CHECK_EQ_INT(fl_face_embed_chips(g_w, chips, n, m, many, &err), FL_OK);
        for (int i = 0; i < n; i++) {
            if (memcmp(many + (size_t)i * dim, one[N_CHIPS - n + i], (size_t)dim * sizeof(float)) !=
                0) {
                printf("# model %d: %d chips, chip %d differs from its single run\n", (int)m, n, i);
                T_CHECK(!"batched embedding differs");
            }
        }
    }
}

static void test_dlib_batches(void)
{
    static const int counts[] = {1, 2, 3, 5, 8, 11, 16};
    if (!g_have_chips)
        T_SKIP("models/ absent (run scripts/setup)");
    check_model(FL_FACE_MODEL_DLIB, counts, (int)FL_ARRAY_LEN(counts));
}

static void test_mfn_batches(void)
{
    static const int counts[] = {1, 2, 3, 5};
    if (!g_have_chips)
        T_SKIP("models/ absent (run scripts/setup)");
    check_model(FL_FACE_MODEL_MFN, counts, (int)FL_ARRAY_LEN(counts));
}

static void test_bad_input(void)
{
    struct fl_err err = {0};
    float out[4 * 128];
    struct fl_image chips[3];
    if (!g_have_chips)
        T_SKIP("models/ absent (run scripts/setup)");
    T_CHECK_EQ_INT(fl_face_embed_chips(g_w, g_chips[0], 0, FL_FACE_MODEL_DLIB, out, &err),
                   FL_ERR_INVALID_ARG);
    /* a 112 px chip among 150 px ones */
    chips[0] = g_chips[FL_FACE_MODEL_DLIB][0];
    chips[1] = g_chips[FL_FACE_MODEL_MFN][0];
    chips[2] = g_chips[FL_FACE_MODEL_DLIB][1];
    T_CHECK_EQ_INT(fl_face_embed_chips(g_w, chips, 3, FL_FACE_MODEL_DLIB, out, &err),
                   FL_ERR_INVALID_ARG);
    T_CHECK(strstr(err.msg, "112x112") != NULL);
    T_CHECK_EQ_INT(fl_face_embed_chips(g_w, chips, 3, FL_FACE_MODEL_DLIB, out, NULL),
                   FL_ERR_INVALID_ARG);
}

/* A batch executor that cannot be made: NOMEM, nothing leaked, the worker
 * still works and gives the same values afterwards. */
static void test_alloc_failure(void)
{
    struct fl_err err = {0};
    struct fl_face_worker *w;
    static float want[8 * 128], got[8 * 128];
    long base;
    int n_fail = 0;
    if (!g_have_chips)
        T_SKIP("models/ absent (run scripts/setup)");
    for (int i = 0; i < 8; i++)
        T_REQUIRE(fl_face_embed_chip(g_w, &g_chips[0][i], FL_FACE_MODEL_DLIB, want + i * 128,
                                     NULL) == FL_OK);
    w = fl_face_worker_new(g_e, &err);
    T_REQUIRE(w != NULL);
    base = fl_alloc_live();
    for (long n = 1; n < 200; n++) {
        enum fl_status rc;
        fl_test_fail_alloc_at(n);
        rc = fl_face_embed_chips(w, g_chips[0], 8, FL_FACE_MODEL_DLIB, got, &err);
        fl_test_fail_alloc_at(0);
        if (rc == FL_OK) {
            T_CHECK_EQ_INT(fl_test_injected(), 0);
            break;
        }
        n_fail++;
        if (rc != FL_ERR_NOMEM || fl_alloc_live() != base) {
            printf("# n=%ld: %s\n", n, err.msg);
            T_CHECK_EQ_INT(rc, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(fl_alloc_live(), base);
            break;
        }
    }
    T_CHECK(n_fail > 3);
    T_CHECK(memcmp(got, want, sizeof(want)) == 0);
    /* with NULL err too */
    fl_face_worker_free(w);
    w = fl_face_worker_new(g_e, &err);
    T_REQUIRE(w != NULL);
    fl_test_fail_alloc_at(1);
    T_CHECK_EQ_INT(fl_face_embed_chips(w, g_chips[0], 4, FL_FACE_MODEL_DLIB, got, NULL),
                   FL_ERR_NOMEM);
    fl_test_fail_alloc_at(0);
    fl_face_worker_free(w);
}

int main(int argc, char **argv)
{
    char dir[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_model("face-api/model", dir, sizeof(dir)) && t_model("expo", dir, sizeof(dir))) {
        struct fl_err e;
        struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
        g_e = fl_face_engine_new(&cfg, &e);
        if (!g_e)
            printf("# engine: %s\n", e.msg);
        else
            g_w = fl_face_worker_new(g_e, &e);
        if (g_e && !g_w)
            printf("# worker: %s\n", e.msg);
        make_chips();
    }
    T_RUN(test_dlib_batches);
    T_RUN(test_mfn_batches);
    T_RUN(test_bad_input);
    T_RUN(test_alloc_failure);
    for (int m = 0; m < FL_FACE_MODEL_COUNT_; m++)
        for (int i = 0; i < N_CHIPS; i++)
            fl_image_free(&g_chips[m][i]);
    fl_face_worker_free(g_w);
    fl_face_engine_free(g_e);
    return t_done();
}
