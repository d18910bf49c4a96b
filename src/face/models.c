/*
 * models.c: where the engine's nets come from, and their one-time
 * conversion.
 *
 * Every net is imported from the files the npm packages ship (face-api
 * weight manifests, expo's .tflite) into the nn IR. Importing folds and
 * dequantises (0.4 s for all of them), so `make run` and `make test` convert
 * them once into .flm files (nn/model.c: one self-describing, checked format)
 * under <models>/flm/, and the engine loads those when they belong to the
 * packages installed now. "Belong" is decided by a stamp written last by the
 * converter: the integrity strings scripts/setup recorded for each package
 * (models/<pkg>/.fl-integrity). A re-fetched package changes its string, the
 * stamp no longer matches, and the engine imports from the sources again
 * until the next conversion. Nothing is ever loaded from a stale .flm.
 *
 * Threading: loading functions are re-entrant; conversion writes files
 * (atomic renames) and is meant for set-up time.
 */
#include "face/face_int.h"

#include "nn/faceapi.h"
#include "nn/tflite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum src_kind { SRC_FACEAPI, SRC_TFLITE };

struct net_source {
    const char *flm;   /* file name under <models>/flm/ */
    enum src_kind kind;
    int net;           /* enum fl_nn_faceapi_net or enum fl_nn_tflite_net */
    const char *path;  /* tflite: file under models/expo/ */
};

/* clang-format off */
static const struct net_source sources[FL__FACE_NET_COUNT] = {
    [FL__FACE_NET_PNET]       = {"mtcnn-pnet.flm", SRC_TFLITE, FL_NN_TFLITE_PNET, "android/src/main/assets/pnet.tflite"},
    [FL__FACE_NET_RNET]       = {"mtcnn-rnet.flm", SRC_TFLITE, FL_NN_TFLITE_RNET, "android/src/main/assets/rnet.tflite"},
    [FL__FACE_NET_ONET]       = {"mtcnn-onet.flm", SRC_TFLITE, FL_NN_TFLITE_ONET, "android/src/main/assets/onet.tflite"},
    [FL__FACE_NET_MFN]        = {"mobilefacenet.flm", SRC_TFLITE, FL_NN_TFLITE_MOBILEFACENET, "android/src/main/assets/MobileFaceNet.tflite"},
    [FL__FACE_NET_LM68]       = {"face_landmark_68.flm", SRC_FACEAPI, FL_NN_FACEAPI_LANDMARK68, NULL},
    [FL__FACE_NET_DLIB]       = {"face_recognition.flm", SRC_FACEAPI, FL_NN_FACEAPI_RECOGNITION, NULL},
    [FL__FACE_NET_AGE_GENDER] = {"age_gender.flm", SRC_FACEAPI, FL_NN_FACEAPI_AGE_GENDER, NULL},
    [FL__FACE_NET_EXPRESSION] = {"face_expression.flm", SRC_FACEAPI, FL_NN_FACEAPI_EXPRESSION, NULL},
};
/* clang-format on */

static const char *pkg_dir(enum src_kind k)
{
    return k == SRC_FACEAPI ? "face-api" : "expo";
}

/* The stamp the converter writes: both packages' integrity strings. Empty
 * string when a package has none (not installed by scripts/setup). */
static void current_stamp(const char *models_dir, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int k = 0; k < 2; k++) {
        char path[4096];
        uint8_t *buf = NULL;
        size_t n = 0;
        snprintf(path, sizeof(path), "%s/%s/.fl-integrity", models_dir, pkg_dir((enum src_kind)k));
        if (fl_file_read(path, 4096, &buf, &n, NULL) != FL_OK) {
            out[0] = '\0';
            return;
        }
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s=%.*s", pkg_dir((enum src_kind)k),
                              (int)n, (const char *)buf);
        fl_free(buf);
    }
}

/* True when <models>/flm/STAMP equals the current packages' stamp. */
static bool flm_current(const char *models_dir)
{
    char stamp[2048], path[4096];
    uint8_t *buf = NULL;
    size_t n = 0;
    bool ok;
    current_stamp(models_dir, stamp, sizeof(stamp));
    if (!stamp[0])
        return false;
    snprintf(path, sizeof(path), "%s/flm/STAMP", models_dir);
    if (fl_file_read(path, sizeof(stamp), &buf, &n, NULL) != FL_OK)
        return false;
    ok = n == strlen(stamp) && memcmp(buf, stamp, n) == 0;
    fl_free(buf);
    return ok;
}

static struct fl_nn_model *import_net(const char *models_dir, enum fl__face_net n,
                                      struct fl_err *err)
{
    const struct net_source *s = &sources[n];
    char path[4096];
    if (s->kind == SRC_FACEAPI) {
        if ((size_t)snprintf(path, sizeof(path), "%s/face-api/model", models_dir) >= sizeof(path))
            goto too_long;
        return fl_nn_faceapi_load((enum fl_nn_faceapi_net)s->net, path, err);
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/expo/%s", models_dir, s->path) >= sizeof(path))
        goto too_long;
    return fl_nn_tflite_import_file(path, (enum fl_nn_tflite_net)s->net, err);
too_long:
    fl_err_set(err, FL_ERR_INVALID_ARG, "models directory path too long");
    return NULL;
}

struct fl_nn_model *fl__face_load_net(const char *models_dir, enum fl__face_net n,
                                      struct fl_err *err)
{
    FL_ASSERT((unsigned)n < FL__FACE_NET_COUNT);
    if (flm_current(models_dir)) {
        char path[4096];
        struct fl_nn_model *m = NULL;
        struct fl_err e;
        if ((size_t)snprintf(path, sizeof(path), "%s/flm/%s", models_dir, sources[n].flm) <
            sizeof(path))
            m = fl_nn_model_load(path, &e);
        if (m)
            return m;
        FL_LOG_W("models: %s: %s; importing from the package instead", sources[n].flm, e.msg);
    }
    return import_net(models_dir, n, err);
}

enum fl_status fl_models_convert(const char *models_dir, int *out_n, struct fl_err *err)
{
    char dir[2048], path[4096], stamp[2048];
    enum fl_status rc = FL_OK;
    int n = 0;

    fl_core_init();
    if (!models_dir)
        models_dir = "models";
    current_stamp(models_dir, stamp, sizeof(stamp));
    if (!stamp[0])
        return fl_err_set(err, FL_ERR_NOT_FOUND,
                          "no model packages in %s (run scripts/setup to fetch them)", models_dir);
    if (flm_current(models_dir)) {
        if (out_n)
            *out_n = 0; /* already converted from these packages */
        return FL_OK;
    }
    if ((size_t)snprintf(dir, sizeof(dir), "%s/flm", models_dir) >= sizeof(dir))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "models directory path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fl_err_set(err, FL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    /* the old stamp goes first: a half-done conversion is never trusted */
    if ((size_t)snprintf(path, sizeof(path), "%s/STAMP", dir) >= sizeof(path))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "models directory path too long");
    if (unlink(path) != 0 && errno != ENOENT)
        return fl_err_set(err, FL_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    for (int i = 0; i < FL__FACE_NET_COUNT && rc == FL_OK; i++) {
        struct fl_nn_model *m = import_net(models_dir, (enum fl__face_net)i, err);
        if (!m)
            return err ? err->code : FL_ERR_INTERNAL;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, sources[i].flm) >= sizeof(path))
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "models directory path too long");
        else
            rc = fl_nn_model_save(m, path, err);
        fl_nn_model_unref(m);
        n += rc == FL_OK;
    }
    if (rc == FL_OK) {
        snprintf(path, sizeof(path), "%s/STAMP", dir); /* fits: checked above */
        rc = fl_file_write_atomic(path, stamp, strlen(stamp), err);
    }
    if (rc == FL_OK && out_n)
        *out_n = n;
    return rc;
}
