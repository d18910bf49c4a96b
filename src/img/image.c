/*
 * image.c: image buffers, float conversion, orientation, crop and pad.
 *
 * What: the plain-data side of the image layer. struct fl_image is packed
 * 8-bit RGB (stride 3*w for images made here; views may use larger strides).
 *
 * Why these operations live together: they are all exact integer copies
 * (orientation, crop, pad) or a pointwise conversion, with no interpolation,
 * so they need no numeric policy beyond "round half up" for float -> u8.
 *
 * Invariants: every image allocated here has w, h >= 1 and a byte size that
 * fits size_t (checked with fl_size_mul); px is zero-filled at allocation, so
 * padding is 0 by construction.
 *
 * Threading: no shared state; all functions are reentrant.
 */
#include "img/img_int.h"

#include <stdlib.h>
#include <string.h>

/* Byte size of a w x h x ch image of elem-byte samples, or false if it
 * overflows or the size is not positive. */
static bool image_bytes(int w, int h, size_t ch_elem, size_t *out)
{
    size_t row, total;
    if (w < 1 || h < 1)
        return false;
    if (!fl_size_mul((size_t)w, ch_elem, &row) || !fl_size_mul(row, (size_t)h, &total))
        return false;
    *out = total;
    return true;
}

enum fl_status fl_image_alloc(int w, int h, struct fl_image *out, struct fl_err *err)
{
    size_t bytes;
    uint8_t *px;
    if (!image_bytes(w, h, 3, &bytes))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "image size %dx%d is invalid", w, h);
    px = fl_calloc(bytes, 1);
    if (!px)
        return fl_err_set(err, FL_ERR_NOMEM, "image %dx%d: out of memory", w, h);
    out->w = w;
    out->h = h;
    out->stride = (size_t)w * 3;
    out->px = px;
    return FL_OK;
}

void fl_image_free(struct fl_image *img)
{
    if (!img)
        return;
    fl_free(img->px);
    memset(img, 0, sizeof(*img));
}

enum fl_status fl_image_f32_alloc(int w, int h, struct fl_image_f32 *out, struct fl_err *err)
{
    size_t bytes;
    float *px;
    if (!image_bytes(w, h, 3 * sizeof(float), &bytes))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "image size %dx%d is invalid", w, h);
    px = fl_calloc(bytes, 1);
    if (!px)
        return fl_err_set(err, FL_ERR_NOMEM, "float image %dx%d: out of memory", w, h);
    out->w = w;
    out->h = h;
    out->px = px;
    return FL_OK;
}

void fl_image_f32_free(struct fl_image_f32 *img)
{
    if (!img)
        return;
    fl_free(img->px);
    memset(img, 0, sizeof(*img));
}

/* Round half up and clamp to 0..255; NaN -> 0. v + 0.5 is positive where
 * it is converted, so truncation is floor (no libm call). */
static uint8_t f32_to_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 254.5f)
        return 255;
    return (uint8_t)(int)((double)v + 0.5);
}

enum fl_status fl_image_f32_to_u8(const struct fl_image_f32 *src, struct fl_image *out,
                                  struct fl_err *err)
{
    struct fl_image img;
    enum fl_status rc = fl_image_alloc(src->w, src->h, &img, err);
    if (rc != FL_OK)
        return rc;
    for (int y = 0; y < src->h; y++) {
        const float *s = src->px + (size_t)y * src->w * 3;
        uint8_t *d = fl_image_at(&img, 0, y);
        for (int i = 0; i < src->w * 3; i++)
            d[i] = f32_to_u8(s[i]);
    }
    *out = img;
    return FL_OK;
}

void fl__img_rgba_over_black(const uint8_t *rgba, int w, int h, struct fl_image *dst)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *s = rgba + (size_t)y * w * 4;
        uint8_t *d = fl_image_at(dst, 0, y);
        for (int x = 0; x < w; x++, s += 4, d += 3) {
            unsigned a = s[3];
            for (int c = 0; c < 3; c++)
                d[c] = (uint8_t)((s[c] * a + 127) / 255);
        }
    }
}

/* Orientation as a source lookup: output (x,y) of the oriented image (ow x
 * oh) reads stored pixel (sx,sy) of the W x H source. Orientation tags name
 * where the stored 0th row / 0th column end up when displayed (EXIF 2.3
 * Table: 1 top/left, 2 top/right, 3 bottom/right, 4 bottom/left, 5 left/top,
 * 6 right/top, 7 right/bottom, 8 left/bottom). */
static void orient_src(int o, int x, int y, int W, int H, int *sx, int *sy)
{
    switch (o) {
    case 2:
        *sx = W - 1 - x;
        *sy = y;
        break;
    case 3:
        *sx = W - 1 - x;
        *sy = H - 1 - y;
        break;
    case 4:
        *sx = x;
        *sy = H - 1 - y;
        break;
    case 5:
        *sx = y;
        *sy = x;
        break;
    case 6:
        *sx = y;
        *sy = H - 1 - x;
        break;
    case 7:
        *sx = W - 1 - y;
        *sy = H - 1 - x;
        break;
    case 8:
        *sx = W - 1 - y;
        *sy = x;
        break;
    default:
        *sx = x;
        *sy = y;
        break;
    }
}

enum fl_status fl_img_orient(const struct fl_image *src, int orientation, struct fl_image *out,
                             struct fl_err *err)
{
    struct fl_image img;
    int o = (orientation >= 1 && orientation <= 8) ? orientation : 1;
    bool swap = o >= 5;
    enum fl_status rc = fl_image_alloc(swap ? src->h : src->w, swap ? src->w : src->h, &img, err);
    if (rc != FL_OK)
        return rc;
    if (o == 1) {
        for (int y = 0; y < src->h; y++)
            memcpy(fl_image_at(&img, 0, y), fl_image_at(src, 0, y), (size_t)src->w * 3);
    } else {
        for (int y = 0; y < img.h; y++) {
            uint8_t *d = fl_image_at(&img, 0, y);
            for (int x = 0; x < img.w; x++, d += 3) {
                int sx, sy;
                orient_src(o, x, y, src->w, src->h, &sx, &sy);
                memcpy(d, fl_image_at(src, sx, sy), 3);
            }
        }
    }
    *out = img;
    return FL_OK;
}

enum fl_status fl_img_crop_pad(const struct fl_image *src, int x, int y, int w, int h, int out_w,
                               int out_h, int off_x, int off_y, struct fl_image *out,
                               struct fl_err *err)
{
    struct fl_image img;
    enum fl_status rc;
    long x0, y0, x1, y1; /* source span copied: [x0,x1) x [y0,y1), long: no overflow */

    if (w < 0 || h < 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "crop size %dx%d is negative", w, h);
    rc = fl_image_alloc(out_w, out_h, &img, err);
    if (rc != FL_OK)
        return rc;
    /* Intersect the crop with the source, then with the canvas (in source
     * coordinates: canvas pixel cx maps to source x + cx - off_x). */
    x0 = FL_MAX((long)x, 0L);
    y0 = FL_MAX((long)y, 0L);
    x1 = FL_MIN((long)x + w, (long)src->w);
    y1 = FL_MIN((long)y + h, (long)src->h);
    x0 = FL_MAX(x0, (long)x - off_x);
    y0 = FL_MAX(y0, (long)y - off_y);
    x1 = FL_MIN(x1, (long)x - off_x + out_w);
    y1 = FL_MIN(y1, (long)y - off_y + out_h);
    for (long sy = y0; sy < y1; sy++) {
        long cx = x0 - x + off_x, cy = sy - y + off_y;
        if (x1 > x0)
            memcpy(fl_image_at(&img, (int)cx, (int)cy), fl_image_at(src, (int)x0, (int)sy),
                   (size_t)(x1 - x0) * 3);
    }
    *out = img;
    return FL_OK;
}

enum fl_status fl_img_crop_square(const struct fl_image *src, int x, int y, int w, int h,
                                  bool centred, struct fl_image *out, struct fl_err *err)
{
    int side = FL_MAX(w, h), d = abs(h - w);
    int before = centred ? d - (d + 1) / 2 : 0; /* round(d/2) = (d+1)/2 goes after */
    if (w < 1 || h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "crop size %dx%d is empty", w, h);
    return fl_img_crop_pad(src, x, y, w, h, side, side, w < h ? before : 0, h < w ? before : 0, out,
                           err);
}
