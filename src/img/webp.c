/*
 * webp.c: WebP (lossy and lossless, still images) through libwebp.
 *
 * What: header read with WebPGetFeatures (no pixel allocation) and decode
 * into our buffer with WebPDecodeRGB(A)Into. Alpha is composited over black,
 * as for PNG. Animated WebP is refused (FL_ERR_IMAGE_FORMAT): Rekognition
 * takes still images only, and picking a frame would be a silent guess.
 *
 * libwebp allocates its working memory itself (no allocator hook in the
 * simple API); it is bounded by the pixel cap checked before decoding.
 *
 * Threading: reentrant.
 */
#include "img/img_int.h"

#include <webp/decode.h>

enum fl_status fl__img_webp_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                   struct fl_err *err)
{
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(buf, n, &f);
    if (st != VP8_STATUS_OK)
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "webp: invalid header (status %d)", (int)st);
    if (f.has_animation)
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "webp: animated images are not supported");
    hdr->w = f.width;
    hdr->h = f.height;
    hdr->has_alpha = f.has_alpha != 0;
    return FL_OK;
}

enum fl_status fl__img_webp_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                   struct fl_image *out, struct fl_err *err)
{
    enum fl_status rc;
    struct fl_image img = {0};
    uint8_t *rgba = NULL;
    size_t bytes;
    uint8_t *ret;

    rc = fl_image_alloc(hdr->w, hdr->h, &img, err);
    if (rc != FL_OK)
        goto out;
    if (hdr->has_alpha) {
        if (!fl_size_mul((size_t)hdr->w * 4, (size_t)hdr->h, &bytes)) {
            rc = fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE, "webp: size overflows");
            goto out;
        }
        rgba = fl_malloc(bytes);
        if (!rgba) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "webp: out of memory");
            goto out;
        }
        ret = WebPDecodeRGBAInto(buf, n, rgba, bytes, hdr->w * 4);
    } else {
        ret = WebPDecodeRGBInto(buf, n, img.px, img.stride * (size_t)img.h, (int)img.stride);
    }
    if (!ret) {
        rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "webp: corrupt or truncated data");
        goto out;
    }
    if (rgba)
        fl__img_rgba_over_black(rgba, hdr->w, hdr->h, &img);
    *out = img;
    img.px = NULL;
out:
    fl_image_free(&img);
    fl_free(rgba);
    return rc;
}
