/* test_face_models.c: the one-time conversion of the engine's nets into .flm
 * files (face/models.c): the converted nets give bit-identical embeddings to
 * the nets imported from the packages; a second conversion writes nothing;
 * a stale stamp or a damaged .flm falls back to importing, never to a wrong
 * model. Works on a scratch models folder that links to the real packages. */
#include "t.h"
#include "face/face_int.h"
#include "img/img.h"

#include <stdlib.h>
#include <sys/stat.h>

T_MAIN_STATE;

static char g_tmp[256];
static struct fl_image g_img;

/* dlib and MobileFaceNet vectors of the largest face of g_img, with models from dir. */
static int vectors(const char *dir, float dlib[128], float mfn[192])
{
    struct fl_face_engine_config cfg = {dir, FL_NN_BACKEND_XNNPACK};
    struct fl_face_engine *e = fl_face_engine_new(&cfg, NULL);
    struct fl_face_worker *w = e ? fl_face_worker_new(e, NULL) : NULL;
    struct fl_face *faces = NULL;
    int n = 0, ok = 0;
    if (w && fl_face_detect(w, &g_img, 0, 1, &faces, &n, NULL) == FL_OK && n == 1 &&
        fl_face_embed(w, &g_img, &faces[0], FL_FACE_MODEL_DLIB, dlib, NULL) == FL_OK &&
        fl_face_embed(w, &g_img, &faces[0], FL_FACE_MODEL_MFN, mfn, NULL) == FL_OK)
        ok = 1;
    fl_free(faces);
    fl_face_worker_free(w);
    fl_face_engine_free(e);
    return ok;
}

static void test_convert_and_load(void)
{
    char path[512];
    float d0[128], m0[192], d1[128], m1[192];
    int n = -1;
    struct fl_err e;
    FILE *f;
    if (!g_img.px)
        T_SKIP("models absent");
    T_REQUIRE(vectors(g_tmp, d0, m0)); /* nothing converted yet: imported */
    T_CHECK_EQ_INT(fl_models_convert(g_tmp, &n, &e), FL_OK);
    T_CHECK_EQ_INT(n, FL__FACE_NET_COUNT);
    T_CHECK_EQ_INT(fl_models_convert(g_tmp, &n, &e), FL_OK);
    T_CHECK_EQ_INT(n, 0); /* already current */
    T_REQUIRE(vectors(g_tmp, d1, m1)); /* from .flm */
    T_CHECK(memcmp(d0, d1, sizeof(d0)) == 0);
    T_CHECK(memcmp(m0, m1, sizeof(m0)) == 0);
    /* a damaged .flm under a current stamp: the engine imports instead */
    snprintf(path, sizeof(path), "%s/flm/face_recognition.flm", g_tmp);
    T_REQUIRE(truncate(path, 1000) == 0);
    memset(d1, 0, sizeof(d1));
    T_REQUIRE(vectors(g_tmp, d1, m1));
    T_CHECK(memcmp(d0, d1, sizeof(d0)) == 0);
    /* a stale stamp (another package version): nothing is loaded from flm/ */
    snprintf(path, sizeof(path), "%s/flm/STAMP", g_tmp);
    f = fopen(path, "w");
    T_REQUIRE(f != NULL);
    fputs("face-api=sha512-old expo=sha512-old", f);
    fclose(f);
    T_REQUIRE(vectors(g_tmp, d1, m1));
    T_CHECK(memcmp(d0, d1, sizeof(d0)) == 0);
    /* and converting again makes it current again */
    T_CHECK_EQ_INT(fl_models_convert(g_tmp, &n, &e), FL_OK);
    T_CHECK_EQ_INT(n, FL__FACE_NET_COUNT);
}

static void test_convert_without_packages(void)
{
    struct fl_err e;
    T_CHECK_EQ_INT(fl_models_convert("/nonexistent-models", NULL, &e), FL_ERR_NOT_FOUND);
    T_CHECK(strstr(e.msg, "scripts/setup") != NULL);
}

int main(int argc, char **argv)
{
    char m[1024], cmd[1024];
    t_init(argc, argv);
    fl_core_init();
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/fl-test-models-%d", (int)getpid());
    if (t_model("face-api/.fl-integrity", m, sizeof(m)) &&
        t_model("expo/.fl-integrity", m, sizeof(m)) &&
        t_model("face-api/demo/sample2.jpg", m, sizeof(m))) {
        char real[1024], link[512];
        uint8_t *buf = NULL;
        size_t n = 0;
        struct fl_img_decode_opts o;
        fl_img_decode_opts_default(&o);
        mkdir(g_tmp, 0755);
        for (int k = 0; k < 2; k++) {
            const char *pkg = k ? "expo" : "face-api";
            snprintf(link, sizeof(link), "%s/%s", g_tmp, pkg);
            snprintf(cmd, sizeof(cmd), "models/%s", pkg);
            if (realpath(cmd, real) && symlink(real, link) != 0)
                printf("# symlink %s failed\n", link);
        }
        if (fl_file_read(m, 64u << 20, &buf, &n, NULL) == FL_OK)
            fl_img_decode(buf, n, &o, &g_img, NULL, NULL);
        fl_free(buf);
    }
    T_RUN(test_convert_and_load);
    T_RUN(test_convert_without_packages);
    fl_image_free(&g_img);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", g_tmp);
    return t_done();
}
