/*
 * warp.c: affine warp with bilinear sampling.
 *
 * Convention (cv2.warpAffine without WARP_INVERSE_MAP): the caller gives M,
 * the source -> destination map, and dst(x,y) = src(M^-1 [x,y,1]) with pixel
 * (x,y)'s centre at integer (x,y). M^-1 is computed as cv2's
 * invertAffineTransform does. Sampling is bilinear in double; a neighbour
 * outside the source counts as 0 (cv2 BORDER_CONSTANT 0), so the face chip
 * fades to black at the image edge exactly like the golden aligned PNGs; the
 * result is rounded half up (floor(v + 0.5)) and clamped.
 *
 * The plain warp has no prefilter: at shrink factors below 0.5, bilinear
 * sampling skips source pixels and aliases. fl_img_warp_affine_prefilter
 * first halves the source with 2x2 box means (each halving maps source
 * coordinate s to (s - 0.5)/2, folded into M) until the remaining scale is
 * >= 0.5, as dlib's chip extraction does with its pyramid. It is a separate
 * entry point so the plain warp stays bit-exact with the references.
 *
 * Threading: reentrant.
 */
#include "img/img_int.h"

#include <math.h>

/* Inverse of a 2x3 affine map, cv2.invertAffineTransform's arithmetic.
 * false when singular or not finite. */
static bool invert_affine(const double m[2][3], double inv[2][3])
{
    double det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    double d;
    if (!(fabs(det) > 1e-12) || !isfinite(det))
        return false;
    d = 1.0 / det;
    inv[0][0] = m[1][1] * d;
    inv[1][1] = m[0][0] * d;
    inv[0][1] = -m[0][1] * d;
    inv[1][0] = -m[1][0] * d;
    inv[0][2] = -inv[0][0] * m[0][2] - inv[0][1] * m[1][2];
    inv[1][2] = -inv[1][0] * m[0][2] - inv[1][1] * m[1][2];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            if (!isfinite(inv[r][c]))
                return false;
    return true;
}

/* Round half up and clamp (truncation of a positive value is floor). */
static uint8_t round_u8d(double v)
{
    if (!(v > 0.0))
        return 0;
    if (v >= 254.5)
        return 255;
    return (uint8_t)(int)(v + 0.5);
}

enum fl_status fl_img_warp_affine(const struct fl_image *src, const double m[2][3], int out_w,
                                  int out_h, struct fl_image *out, struct fl_err *err)
{
    enum fl_status rc;
    struct fl_image img;
    double inv[2][3];
    static const uint8_t zero[3] = {0, 0, 0};

    if (!src || !src->px || src->w < 1 || src->h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "warp: empty source image");
    if (!invert_affine(m, inv))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "warp: matrix is singular");
    rc = fl_image_alloc(out_w, out_h, &img, err);
    if (rc != FL_OK)
        return rc;
    for (int y = 0; y < out_h; y++) {
        uint8_t *d = fl_image_at(&img, 0, y);
        for (int x = 0; x < out_w; x++, d += 3) {
            double sx = inv[0][0] * x + inv[0][1] * y + inv[0][2];
            double sy = inv[1][0] * x + inv[1][1] * y + inv[1][2];
            double fx0, fy0, fx, fy;
            long x0, y0;
            const uint8_t *p00, *p10, *p01, *p11;
            /* Far outside (or NaN): all four neighbours are out, result 0;
             * this also keeps the long conversion below in range. */
            if (!(sx > -2.0 && sy > -2.0 && sx < (double)src->w + 1.0 && sy < (double)src->h + 1.0))
                continue;
            fx0 = floor(sx);
            fy0 = floor(sy);
            x0 = (long)fx0;
            y0 = (long)fy0;
            fx = sx - fx0;
            fy = sy - fy0;
            p00 = (x0 >= 0 && y0 >= 0 && x0 < src->w && y0 < src->h)
                      ? fl_image_at(src, (int)x0, (int)y0)
                      : zero;
            p10 = (x0 + 1 >= 0 && y0 >= 0 && x0 + 1 < src->w && y0 < src->h)
                      ? fl_image_at(src, (int)x0 + 1, (int)y0)
                      : zero;
            p01 = (x0 >= 0 && y0 + 1 >= 0 && x0 < src->w && y0 + 1 < src->h)
                      ? fl_image_at(src, (int)x0, (int)y0 + 1)
                      : zero;
            p11 = (x0 + 1 >= 0 && y0 + 1 >= 0 && x0 + 1 < src->w && y0 + 1 < src->h)
                      ? fl_image_at(src, (int)x0 + 1, (int)y0 + 1)
                      : zero;
            for (int c = 0; c < 3; c++) {
                double top = (1.0 - fx) * p00[c] + fx * p10[c];
                double bot = (1.0 - fx) * p01[c] + fx * p11[c];
                d[c] = round_u8d((1.0 - fy) * top + fy * bot);
            }
        }
    }
    *out = img;
    return FL_OK;
}

/* Halve src with 2x2 box means (edge pixels of odd sizes average what
 * exists), rounded half up. out is allocated. */
static enum fl_status halve(const struct fl_image *src, struct fl_image *out, struct fl_err *err)
{
    struct fl_image img;
    int w = (src->w + 1) / 2, h = (src->h + 1) / 2;
    enum fl_status rc = fl_image_alloc(w, h, &img, err);
    if (rc != FL_OK)
        return rc;
    for (int y = 0; y < h; y++) {
        int y0 = 2 * y, y1 = FL_MIN(2 * y + 1, src->h - 1);
        uint8_t *d = fl_image_at(&img, 0, y);
        for (int x = 0; x < w; x++, d += 3) {
            int x0 = 2 * x, x1 = FL_MIN(2 * x + 1, src->w - 1);
            const uint8_t *a = fl_image_at(src, x0, y0), *b = fl_image_at(src, x1, y0);
            const uint8_t *c = fl_image_at(src, x0, y1), *e = fl_image_at(src, x1, y1);
            for (int k = 0; k < 3; k++)
                d[k] = (uint8_t)((a[k] + b[k] + c[k] + e[k] + 2) / 4);
        }
    }
    *out = img;
    return FL_OK;
}

enum fl_status fl_img_warp_affine_prefilter(const struct fl_image *src, const double m[2][3],
                                            int out_w, int out_h, struct fl_image *out,
                                            struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct fl_image cur = {0}, next = {0};
    const struct fl_image *s = src;
    double mm[2][3];
    double scale;

    if (!src || !src->px || src->w < 1 || src->h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "warp: empty source image");
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            mm[r][c] = m[r][c];
    scale = sqrt(fabs(mm[0][0] * mm[1][1] - mm[0][1] * mm[1][0]));
    while (scale < 0.5 && s->w >= 2 && s->h >= 2) {
        rc = halve(s, &next, err);
        if (rc != FL_OK)
            goto out;
        fl_image_free(&cur);
        cur = next;
        s = &cur;
        /* new coordinate s' = (s - 0.5)/2, so s = 2 s' + 0.5 */
        for (int r = 0; r < 2; r++) {
            mm[r][2] += 0.5 * (mm[r][0] + mm[r][1]);
            mm[r][0] *= 2.0;
            mm[r][1] *= 2.0;
        }
        scale *= 2.0;
    }
    rc = fl_img_warp_affine(s, (const double(*)[3])mm, out_w, out_h, out, err);
out:
    fl_image_free(&cur);
    return rc;
}
