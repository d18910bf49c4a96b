/*
 * detect_faceapi.c: face-api's two detectors, SSD MobileNetV1 and Tiny YOLOv2
 * ("TinyFaceDetector"), with face-api's own pre- and post-processing.
 *
 * They are here as measured alternatives to MTCNN (the default; see
 * docs/internals/face.md for the comparison): SSD is face-api's accurate
 * detector (3.1 GMAC at 512) and misses faces that fill the frame; Tiny is
 * its fast one (0.2 GMAC at 416) and misses small faces. Both are copied
 * from face-api exactly, so their golden vectors test this file end to end:
 *   SSD:  pad bottom/right to a square, TF-legacy bilinear to 512,
 *         x/127.5 - 1; decode the 5118 anchors; greedy NMS (IoU 0.5) over
 *         scores > min_score; boxes clamped to [0,1] and scaled by
 *         padX*W, padX = 512/round(W*512/max(W,H)).
 *   Tiny: pad bottom/right, resize to S (multiple of 32), (x - mean)/255;
 *         cells with sigmoid(conf) > min_score; centre, size from the 5
 *         anchors with face-api's correction factors S/round(W*S/max);
 *         NMS IoU 0.4 on boxes scaled to S.
 *
 * Threading: models shared; executors per thread (struct fl__faceapi_det_exec).
 */
#include "face/detect.h"

#include "img/img.h"
#include "nn/faceapi.h"

#include <math.h>
#include <string.h>

static const float tiny_anchors[5][2] = {
    {1.603231f, 2.094468f}, {6.041143f, 7.080126f}, {2.882459f, 3.518061f},
    {4.266906f, 5.178857f}, {9.041765f, 10.66308f}};

struct fl__faceapi_det {
    struct fl_nn_model *ssd, *tiny;       /* owned references */
    struct fl_nn_faceapi_prep ssd_prep, tiny_prep;
    float *anchors;                        /* FL_NN_FACEAPI_SSD_ANCHORS * 4 */
};

struct fl__faceapi_det_exec {
    struct fl__faceapi_det *d; /* borrowed */
    enum fl_nn_backend backend;
    struct fl_nn_exec *ssd;  /* owned */
    struct fl_nn_exec *tiny; /* owned, for tiny_size */
    int tiny_size;
    float *boxes, *scores;   /* SSD decode scratch */
};

void fl__faceapi_det_free(struct fl__faceapi_det *d)
{
    if (!d)
        return;
    fl_nn_model_unref(d->ssd);
    fl_nn_model_unref(d->tiny);
    fl_free(d->anchors);
    fl_free(d);
}

struct fl__faceapi_det *fl__faceapi_det_load(const char *model_dir, struct fl_err *err)
{
    struct fl__faceapi_det *d = fl_calloc(1, sizeof(*d));
    if (!d) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->anchors = fl_malloc(sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS);
    if (!d->anchors) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    d->ssd = fl_nn_faceapi_load(FL_NN_FACEAPI_SSD, model_dir, err);
    if (!d->ssd || fl_nn_faceapi_prep_get(d->ssd, &d->ssd_prep, err) != FL_OK ||
        fl_nn_faceapi_ssd_anchors(d->ssd, d->anchors, err) != FL_OK)
        goto fail;
    d->tiny = fl_nn_faceapi_load(FL_NN_FACEAPI_TINY_DETECTOR, model_dir, err);
    if (!d->tiny || fl_nn_faceapi_prep_get(d->tiny, &d->tiny_prep, err) != FL_OK)
        goto fail;
    return d;
fail:
    fl__faceapi_det_free(d);
    return NULL;
}

void fl__faceapi_det_exec_free(struct fl__faceapi_det_exec *x)
{
    if (!x)
        return;
    fl_nn_exec_free(x->ssd);
    fl_nn_exec_free(x->tiny);
    fl_free(x->boxes);
    fl_free(x->scores);
    fl_free(x);
}

struct fl__faceapi_det_exec *fl__faceapi_det_exec_new(struct fl__faceapi_det *d,
                                                      enum fl_nn_backend backend,
                                                      struct fl_err *err)
{
    struct fl__faceapi_det_exec *x = fl_calloc(1, sizeof(*x));
    if (!x) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    x->d = d;
    x->backend = backend;
    x->boxes = fl_malloc(sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS);
    x->scores = fl_malloc(sizeof(float) * FL_NN_FACEAPI_SSD_ANCHORS);
    if (!x->boxes || !x->scores) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    x->ssd = fl_nn_exec_new(d->ssd, 0, 0, backend, 1, err);
    if (!x->ssd)
        goto fail;
    return x;
fail:
    fl__faceapi_det_exec_free(x);
    return NULL;
}

/* Pad img bottom/right to a square, resize to size with TF-legacy bilinear
 * in float, normalise into in[]. */
static enum fl_status square_input(const struct fl_image *img, int size,
                                   const struct fl_nn_faceapi_prep *prep, float *in,
                                   struct fl_err *err)
{
    struct fl_image sq = {0};
    struct fl_image_f32 rs = {0};
    enum fl_status rc = fl_img_crop_square(img, 0, 0, img->w, img->h, false, &sq, err);
    if (rc == FL_OK)
        rc = fl_img_resize_tf_f32(&sq, size, size, &rs, err);
    if (rc == FL_OK)
        fl_nn_faceapi_prep_f32(prep, rs.px, (size_t)size * size, in);
    fl_image_free(&sq);
    fl_image_f32_free(&rs);
    return rc;
}

static int cmp_det_score_desc(const void *a, const void *b)
{
    float sa = ((const struct fl__det *)a)->score, sb = ((const struct fl__det *)b)->score;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* Sort dets by score and keep the greedy NMS survivors (IoU <= iou_max),
 * measuring IoU on boxes scaled by sx, sy (face-api measures Tiny's in net
 * input pixels). At most max_out kept. Returns the count; dets compacted. */
static int nms_dets(struct fl__det *dets, int n, float iou_max, float sx, float sy, int max_out)
{
    int n_keep = 0;
    qsort(dets, (size_t)n, sizeof(*dets), cmp_det_score_desc);
    for (int i = 0; i < n && n_keep < max_out; i++) {
        struct fl_face_box a = {dets[i].box.x * sx, dets[i].box.y * sy, dets[i].box.w * sx,
                                dets[i].box.h * sy};
        bool keep = true;
        for (int k = 0; k < n_keep && keep; k++) {
            struct fl_face_box b = {dets[k].box.x * sx, dets[k].box.y * sy, dets[k].box.w * sx,
                                    dets[k].box.h * sy};
            keep = fl_face_iou(&a, &b) <= iou_max;
        }
        if (keep)
            dets[n_keep++] = dets[i];
    }
    return n_keep;
}

enum fl_status fl__faceapi_ssd_detect(struct fl__faceapi_det_exec *x, const struct fl_image *img,
                                      float min_score, struct fl__det **out, int *n_out,
                                      struct fl_err *err)
{
    enum { SIZE = 512, MAX_RESULTS = 100 };
    struct fl__det *dets = NULL;
    int n = 0, side = FL_MAX(img->w, img->h);
    double pad_x = (double)SIZE / round((double)img->w * SIZE / side);
    double pad_y = (double)SIZE / round((double)img->h * SIZE / side);
    enum fl_status rc;

    *out = NULL;
    *n_out = 0;
    rc = square_input(img, SIZE, &x->d->ssd_prep, fl_nn_exec_input(x->ssd), err);
    if (rc == FL_OK)
        rc = fl_nn_exec_run(x->ssd, err);
    if (rc == FL_OK)
        rc = fl_nn_faceapi_ssd_decode(x->ssd, x->d->anchors, x->boxes, x->scores, err);
    if (rc != FL_OK)
        return rc;
    for (int i = 0; i < FL_NN_FACEAPI_SSD_ANCHORS; i++)
        n += x->scores[i] > min_score;
    if (n == 0)
        return FL_OK;
    dets = fl_calloc((size_t)n, sizeof(*dets));
    if (!dets)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    n = 0;
    for (int i = 0; i < FL_NN_FACEAPI_SSD_ANCHORS; i++) {
        const float *b = x->boxes + 4 * i;
        double y1, x1, y2, x2;
        if (!(x->scores[i] > min_score))
            continue;
        y1 = fmax(0, b[0]);
        x1 = fmax(0, b[1]);
        y2 = fmin(1, b[2]);
        x2 = fmin(1, b[3]);
        dets[n].box.x = (float)(x1 * pad_x * img->w);
        dets[n].box.y = (float)(y1 * pad_y * img->h);
        dets[n].box.w = (float)((x2 - x1) * pad_x * img->w);
        dets[n].box.h = (float)((y2 - y1) * pad_y * img->h);
        dets[n].score = x->scores[i];
        n++;
    }
    *n_out = nms_dets(dets, n, 0.5f, 1, 1, MAX_RESULTS);
    *out = dets;
    return FL_OK;
}

static float sigmoidf(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

enum fl_status fl__faceapi_tiny_detect(struct fl__faceapi_det_exec *x, const struct fl_image *img,
                                       int size, float min_score, struct fl__det **out,
                                       int *n_out, struct fl_err *err)
{
    struct fl__det *dets = NULL;
    int n = 0, cap = 0, shape[3], side = FL_MAX(img->w, img->h), g;
    double cf_x = size / round((double)img->w * size / side);
    double cf_y = size / round((double)img->h * size / side);
    const float *grid;
    enum fl_status rc;

    *out = NULL;
    *n_out = 0;
    if (size < 32 || size % 32 != 0 || size > 4096)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "tiny detector size %d: not a multiple of 32",
                          size);
    if (!x->tiny || x->tiny_size != size) {
        fl_nn_exec_free(x->tiny);
        x->tiny = fl_nn_exec_new(x->d->tiny, size, size, x->backend, 1, err);
        x->tiny_size = x->tiny ? size : 0;
        if (!x->tiny)
            return err ? err->code : FL_ERR_INTERNAL;
    }
    rc = square_input(img, size, &x->d->tiny_prep, fl_nn_exec_input(x->tiny), err);
    if (rc == FL_OK)
        rc = fl_nn_exec_run(x->tiny, err);
    if (rc != FL_OK)
        return rc;
    grid = fl_nn_exec_output(x->tiny, 0, shape);
    g = shape[0];
    if (shape[1] != g || shape[2] != 25)
        return fl_err_set(err, FL_ERR_INTERNAL, "tiny detector output is not [G,G,25]");
    for (int row = 0; row < g; row++) {
        for (int col = 0; col < g; col++) {
            for (int a = 0; a < 5; a++) {
                const float *c = grid + ((size_t)row * g + col) * 25 + 5 * a;
                float score = sigmoidf(c[4]);
                double cx, cy, w, h;
                if (!(score > min_score))
                    continue;
                if (n == cap) {
                    int ncap = cap ? 2 * cap : 64;
                    struct fl__det *nd = fl_realloc(dets, (size_t)ncap * sizeof(*nd));
                    if (!nd) {
                        fl_free(dets);
                        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
                    }
                    dets = nd;
                    cap = ncap;
                }
                cx = (col + sigmoidf(c[0])) / g * cf_x;
                cy = (row + sigmoidf(c[1])) / g * cf_y;
                w = exp(c[2]) * tiny_anchors[a][0] / g * cf_x;
                h = exp(c[3]) * tiny_anchors[a][1] / g * cf_y;
                memset(&dets[n], 0, sizeof(dets[n]));
                /* relative to the original image; to pixels below */
                dets[n].box.x = (float)((cx - w / 2) * img->w);
                dets[n].box.y = (float)((cy - h / 2) * img->h);
                dets[n].box.w = (float)(w * img->w);
                dets[n].box.h = (float)(h * img->h);
                dets[n].score = score;
                n++;
            }
        }
    }
    if (n) {
        /* face-api measures IoU on the relative boxes rescaled to size */
        *n_out = nms_dets(dets, n, 0.4f, (float)size / img->w, (float)size / img->h, n);
        *out = dets;
    }
    return FL_OK;
}
