/*
 * resize.c: bilinear, area and TF-legacy bilinear resize.
 *
 * Three resamplers, because the consumers need three different things:
 *
 *   - fl_img_resize_bilinear: the usual half-pixel-centre bilinear (OpenCV
 *     INTER_LINEAR): src = (dst + 0.5) * in/out - 0.5, clamped to the border.
 *     Cheap, fine for factors >= ~0.5.
 *   - fl_img_resize_area: box filter with fractional coverage (OpenCV
 *     INTER_AREA when shrinking). Each source pixel contributes its overlap
 *     with the output pixel's footprint; no aliasing at large shrink factors.
 *     Separable: a horizontal pass per source row into a float row, then a
 *     weighted vertical accumulation.
 *   - fl_img_resize_tf_f32: tf.image.resizeBilinear with align_corners=false
 *     and half_pixel_centers=false ("legacy"), which face-api uses for every
 *     net input: src = dst * (in/out) in float32, top/left neighbour =
 *     floor(src), bottom/right = min(top+1, in-1), and the lerps in TF's order
 *     (top = tl + (tr-tl)*fx; out = top + (bottom-top)*fy). Output is float,
 *     unrounded, so the pipeline can feed nets without an extra rounding.
 *
 * Invariants: per-axis tables (index pairs and weights) are computed once per
 * call; no pixel read leaves [0,w) x [0,h).
 *
 * Threading: reentrant; scratch is per call.
 */
#include "img/img_int.h"

#include <math.h>
#include <string.h>

static enum fl_status check_resize_args(const struct fl_image *src, int out_w, int out_h,
                                        struct fl_err *err)
{
    if (!src || !src->px || src->w < 1 || src->h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "resize: empty source image");
    if (out_w < 1 || out_h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "resize: invalid output size %dx%d", out_w,
                          out_h);
    return FL_OK;
}

/* One axis of a two-tap filter: output i reads i0[i], i1[i] with weight
 * (1-f[i], f[i]). */
struct taps2 {
    int *i0, *i1;
    float *f;
};

static void taps2_free(struct taps2 *t)
{
    fl_free(t->i0);
    fl_free(t->i1);
    fl_free(t->f);
}

/* half_pixel: OpenCV/PIL centres; otherwise TF legacy (src = dst*scale). */
void fl_img_bilinear_taps(int in, int out, bool half_pixel, int *i0, int *i1, float *f)
{
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        float s;
        int lo;
        if (half_pixel) {
            s = ((float)i + 0.5f) * scale - 0.5f;
            if (s < 0.0f)
                s = 0.0f;
        } else {
            s = (float)i * scale;
        }
        lo = (int)floorf(s);
        if (lo > in - 1)
            lo = in - 1;
        i0[i] = lo;
        i1[i] = lo + 1 < in ? lo + 1 : in - 1;
        f[i] = s - (float)lo;
        if (f[i] < 0.0f)
            f[i] = 0.0f;
        if (half_pixel && lo == in - 1)
            f[i] = 0.0f; /* clamped at the right/bottom border */
    }
}

static enum fl_status taps2_make(int in, int out, bool half_pixel, struct taps2 *t,
                                 struct fl_err *err)
{
    t->i0 = fl_malloc(sizeof(int) * (size_t)out);
    t->i1 = fl_malloc(sizeof(int) * (size_t)out);
    t->f = fl_malloc(sizeof(float) * (size_t)out);
    if (!t->i0 || !t->i1 || !t->f) {
        taps2_free(t);
        return fl_err_set(err, FL_ERR_NOMEM, "resize: out of memory");
    }
    fl_img_bilinear_taps(in, out, half_pixel, t->i0, t->i1, t->f);
    return FL_OK;
}

/* Both axes' taps for a bilinear resize of src to out_w x out_h, after the
 * argument checks every resize shares. */
static enum fl_status taps2_both(const struct fl_image *src, int out_w, int out_h,
                                 bool half_pixel, struct taps2 *tx, struct taps2 *ty,
                                 struct fl_err *err)
{
    enum fl_status rc = check_resize_args(src, out_w, out_h, err);
    if (rc == FL_OK)
        rc = taps2_make(src->w, out_w, half_pixel, tx, err);
    if (rc == FL_OK)
        rc = taps2_make(src->h, out_h, half_pixel, ty, err);
    return rc;
}

/* Channel c of the bilinear blend of the pixels at byte offsets a and b of
 * rows r0 and r1 (the one arithmetic both bilinear resizers use). */
static inline float bilerp(const uint8_t *r0, const uint8_t *r1, size_t a, size_t b, float fx,
                           float fy)
{
    float top = (float)r0[a] + ((float)r0[b] - (float)r0[a]) * fx;
    float bot = (float)r1[a] + ((float)r1[b] - (float)r1[a]) * fx;
    return top + (bot - top) * fy;
}

enum fl_status fl_img_resize_bilinear(const struct fl_image *src, int out_w, int out_h,
                                      struct fl_image *out, struct fl_err *err)
{
    enum fl_status rc;
    struct taps2 tx = {0}, ty = {0};
    struct fl_image img = {0};

    rc = taps2_both(src, out_w, out_h, true, &tx, &ty, err);
    if (rc != FL_OK)
        goto out;
    rc = fl_image_alloc(out_w, out_h, &img, err);
    if (rc != FL_OK)
        goto out;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *r0 = src->px + (size_t)ty.i0[y] * src->stride;
        const uint8_t *r1 = src->px + (size_t)ty.i1[y] * src->stride;
        float fy = ty.f[y];
        uint8_t *d = fl_image_at(&img, 0, y);
        for (int x = 0; x < out_w; x++) {
            size_t a = (size_t)tx.i0[x] * 3, b = (size_t)tx.i1[x] * 3;
            float fx = tx.f[x];
            for (int c = 0; c < 3; c++)
                *d++ = fl_img_round_u8(bilerp(r0, r1, a + c, b + c, fx, fy));
        }
    }
    *out = img;
    img.px = NULL;
out:
    fl_image_free(&img);
    taps2_free(&tx);
    taps2_free(&ty);
    return rc;
}

enum fl_status fl_img_resize_tf_f32(const struct fl_image *src, int out_w, int out_h,
                                    struct fl_image_f32 *out, struct fl_err *err)
{
    enum fl_status rc;
    struct taps2 tx = {0}, ty = {0};
    struct fl_image_f32 img = {0};

    rc = taps2_both(src, out_w, out_h, false, &tx, &ty, err);
    if (rc != FL_OK)
        goto out;
    rc = fl_image_f32_alloc(out_w, out_h, &img, err);
    if (rc != FL_OK)
        goto out;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *r0 = src->px + (size_t)ty.i0[y] * src->stride;
        const uint8_t *r1 = src->px + (size_t)ty.i1[y] * src->stride;
        float fy = ty.f[y];
        float *d = img.px + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            size_t a = (size_t)tx.i0[x] * 3, b = (size_t)tx.i1[x] * 3;
            float fx = tx.f[x];
            for (int c = 0; c < 3; c++)
                *d++ = bilerp(r0, r1, a + c, b + c, fx, fy);
        }
    }
    *out = img;
    img.px = NULL;
out:
    fl_image_f32_free(&img);
    taps2_free(&tx);
    taps2_free(&ty);
    return rc;
}

/* One axis of the box filter: output i sums w[k] * src[first[i] + k - off[i]]
 * for k in off[i] .. off[i+1]-1 (CSR layout). */
struct taps_box {
    int *first; /* out entries: first source index */
    int *off;   /* out+1 entries: offsets into w */
    float *w;   /* weights, normalised to sum 1 per output */
};

static void box_free(struct taps_box *t)
{
    fl_free(t->first);
    fl_free(t->off);
    fl_free(t->w);
}

size_t fl_img_area_taps_cap(int in, int out)
{
    return (size_t)in + 2 * (size_t)out + 2; /* each output touches <= ceil(scale)+1 */
}

void fl_img_area_taps(int in, int out, int *first, int *off, float *w)
{
    double scale = (double)in / (double)out;
    size_t cap = fl_img_area_taps_cap(in, out);
    int n = 0;
    for (int i = 0; i < out; i++) {
        double a = i * scale, b = (i + 1) * scale, sum = 0.0;
        int j0 = (int)floor(a), j1 = (int)ceil(b);
        if (j1 > in)
            j1 = in;
        if (j0 > in - 1)
            j0 = in - 1;
        if (j1 <= j0)
            j1 = j0 + 1;
        first[i] = j0;
        off[i] = n;
        for (int j = j0; j < j1; j++) {
            double lo = FL_MAX(a, (double)j), hi = FL_MIN(b, (double)(j + 1));
            double wgt = hi > lo ? hi - lo : 0.0;
            FL_ASSERT((size_t)n < cap);
            w[n++] = (float)wgt;
            sum += wgt;
        }
        for (int k = off[i]; k < n; k++)
            w[k] = sum > 0.0 ? (float)(w[k] / sum) : 1.0f / (float)(n - off[i]);
    }
    off[out] = n;
}

static enum fl_status box_make(int in, int out, struct taps_box *t, struct fl_err *err)
{
    t->first = fl_malloc(sizeof(int) * (size_t)out);
    t->off = fl_malloc(sizeof(int) * ((size_t)out + 1));
    t->w = fl_malloc(sizeof(float) * fl_img_area_taps_cap(in, out));
    if (!t->first || !t->off || !t->w) {
        box_free(t);
        return fl_err_set(err, FL_ERR_NOMEM, "resize: out of memory");
    }
    fl_img_area_taps(in, out, t->first, t->off, t->w);
    return FL_OK;
}

enum fl_status fl_img_resize_area(const struct fl_image *src, int out_w, int out_h,
                                  struct fl_image *out, struct fl_err *err)
{
    enum fl_status rc;
    struct taps_box bx = {0}, by = {0};
    struct fl_image img = {0};
    float *rows = NULL, *acc = NULL;
    int row_sy[2] = {-1, -1}; /* source row held by each half of rows */
    size_t n3 = (size_t)out_w * 3;

    rc = check_resize_args(src, out_w, out_h, err);
    if (rc != FL_OK)
        return rc;
    rc = box_make(src->w, out_w, &bx, err);
    if (rc != FL_OK)
        goto out;
    rc = box_make(src->h, out_h, &by, err);
    if (rc != FL_OK)
        goto out;
    rc = fl_image_alloc(out_w, out_h, &img, err);
    if (rc != FL_OK)
        goto out;
    rows = fl_malloc(2 * n3 * sizeof(float));
    acc = fl_malloc(n3 * sizeof(float));
    if (!rows || !acc) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "resize: out of memory");
        goto out;
    }
    for (int y = 0; y < out_h; y++) {
        uint8_t *d = fl_image_at(&img, 0, y);
        memset(acc, 0, n3 * sizeof(float));
        for (int k = by.off[y]; k < by.off[y + 1]; k++) {
            int sy = by.first[y] + (k - by.off[y]);
            const uint8_t *s = src->px + (size_t)sy * src->stride;
            float wy = by.w[k];
            /* A source row straddling two output rows is filtered once: the
             * rows of one output row are consecutive, so the row shared with
             * the next output row is the last one filtered, and keyed by
             * parity it survives until the next output row reads it first. */
            float *row = rows + (size_t)(sy & 1) * n3;
            if (row_sy[sy & 1] != sy) {
                row_sy[sy & 1] = sy;
                for (int x = 0; x < out_w; x++) {
                    float r = 0.f, g = 0.f, b = 0.f;
                    for (int q = bx.off[x]; q < bx.off[x + 1]; q++) {
                        const uint8_t *p = s + (size_t)(bx.first[x] + (q - bx.off[x])) * 3;
                        float wx = bx.w[q];
                        r += wx * p[0];
                        g += wx * p[1];
                        b += wx * p[2];
                    }
                    row[x * 3] = r;
                    row[x * 3 + 1] = g;
                    row[x * 3 + 2] = b;
                }
            }
            for (size_t i = 0; i < n3; i++)
                acc[i] += wy * row[i];
        }
        for (size_t i = 0; i < n3; i++)
            d[i] = fl_img_round_u8(acc[i]);
    }
    *out = img;
    img.px = NULL;
out:
    fl_image_free(&img);
    fl_free(rows);
    fl_free(acc);
    box_free(&bx);
    box_free(&by);
    return rc;
}
