/*
 * decode.c: sniff, limits, dispatch to the format decoders, orientation.
 *
 * What: fl_img_decode() turns untrusted bytes into an RGB fl_image. The work
 * is split in two phases per format (img_int.h): a header read that allocates
 * no pixel memory, then the pixel decode. The limits sit between the phases,
 * so a decompression bomb (a tiny file declaring 100000x100000 pixels) is
 * refused from its header, before any pixel buffer exists (stb_image's
 * STBI_MAX_DIMENSIONS idea, libvips' header/load split).
 *
 * Order of checks, each with its status (the HTTP layer maps them to
 * Rekognition's exceptions):
 *   1. n > max_bytes                  -> FL_ERR_IMAGE_TOO_LARGE
 *   2. n == 0                         -> FL_ERR_INVALID_ARG (Bytes has min length 1)
 *   3. unknown magic                  -> FL_ERR_IMAGE_FORMAT
 *   4. corrupt/truncated header       -> FL_ERR_IMAGE_FORMAT
 *   5. declared w*h > max_pixels      -> FL_ERR_IMAGE_TOO_LARGE
 *   6. min(w,h) < min_side            -> FL_ERR_INVALID_ARG
 *   7. corrupt/truncated pixel data   -> FL_ERR_IMAGE_FORMAT
 * The size checks use the stored (declared) dimensions, which orientation
 * does not change as a set and DCT scaling only reduces.
 *
 * EXIF orientation is read for JPEG only (where cameras put it). PNG eXIf
 * and WebP EXIF chunks are ignored; browsers differ on them too.
 *
 * Threading: reentrant; no shared state.
 */
#include "img/img_int.h"

#include <string.h>

void fl_img_decode_opts_default(struct fl_img_decode_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_bytes = FL_IMG_DEFAULT_MAX_BYTES;
    opts->max_pixels = FL_IMG_DEFAULT_MAX_PIXELS;
    opts->min_side = FL_IMG_DEFAULT_MIN_SIDE;
}

enum fl_img_format fl_img_sniff(const uint8_t *buf, size_t n)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return FL_IMG_FORMAT_JPEG;
    if (n >= 8 && memcmp(buf, png_magic, 8) == 0)
        return FL_IMG_FORMAT_PNG;
    if (n >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return FL_IMG_FORMAT_WEBP;
    return FL_IMG_FORMAT_UNKNOWN;
}

const char *fl_img_format_name(enum fl_img_format f)
{
    switch (f) {
    case FL_IMG_FORMAT_JPEG:
        return "jpeg";
    case FL_IMG_FORMAT_PNG:
        return "png";
    case FL_IMG_FORMAT_WEBP:
        return "webp";
    default:
        return "unknown";
    }
}

/* Steps 1-5 of the essay: sniff, header, byte and pixel caps. Fills *fmt and
 * *hdr on success. */
static enum fl_status read_header(const uint8_t *buf, size_t n, const struct fl_img_decode_opts *o,
                                  enum fl_img_format *fmt, struct fl__img_header *hdr,
                                  struct fl_err *err)
{
    enum fl_status rc;
    uint64_t pixels;

    if (n > o->max_bytes)
        return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                          "image is %zu bytes; the maximum is %zu bytes", n, o->max_bytes);
    if (n == 0 || !buf)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "image bytes are empty");
    memset(hdr, 0, sizeof(*hdr));
    hdr->orientation = 1;
    *fmt = fl_img_sniff(buf, n);
    switch (*fmt) {
    case FL_IMG_FORMAT_JPEG:
        rc = fl__img_jpeg_header(buf, n, hdr, err);
        break;
    case FL_IMG_FORMAT_PNG:
        rc = fl__img_png_header(buf, n, hdr, err);
        break;
    case FL_IMG_FORMAT_WEBP:
        rc = fl__img_webp_header(buf, n, hdr, err);
        break;
    default:
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT,
                          "unsupported image format; expected JPEG or PNG (or WebP)");
    }
    if (rc != FL_OK) {
        /* A reader may know the declared size of a header it refuses. */
        if (rc == FL_ERR_IMAGE_FORMAT && hdr->w > 0 && hdr->h > 0 &&
            (uint64_t)hdr->w * (uint64_t)hdr->h > o->max_pixels)
            return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                              "image declares %dx%d pixels; the maximum is %llu pixels", hdr->w,
                              hdr->h, (unsigned long long)o->max_pixels);
        return rc;
    }
    if (hdr->w < 1 || hdr->h < 1)
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "%s: image declares %dx%d pixels",
                          fl_img_format_name(*fmt), hdr->w, hdr->h);
    pixels = (uint64_t)hdr->w * (uint64_t)hdr->h;
    if (pixels > o->max_pixels)
        return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                          "image declares %dx%d pixels (%llu); the maximum is %llu pixels", hdr->w,
                          hdr->h, (unsigned long long)pixels, (unsigned long long)o->max_pixels);
    return FL_OK;
}

static void fill_info(struct fl_img_info *info, enum fl_img_format fmt,
                      const struct fl__img_header *hdr)
{
    memset(info, 0, sizeof(*info));
    info->format = fmt;
    info->stored_w = hdr->w;
    info->stored_h = hdr->h;
    info->orientation = hdr->orientation;
    info->scale_num = 1;
    info->scale_denom = 1;
    info->had_alpha = hdr->has_alpha;
}

enum fl_status fl_img_probe(const uint8_t *buf, size_t n, const struct fl_img_decode_opts *opts,
                            struct fl_img_info *out_info, struct fl_err *err)
{
    struct fl_img_decode_opts defaults;
    struct fl__img_header hdr;
    enum fl_img_format fmt = FL_IMG_FORMAT_UNKNOWN;
    enum fl_status rc;

    if (!opts) {
        fl_img_decode_opts_default(&defaults);
        opts = &defaults;
    }
    rc = read_header(buf, n, opts, &fmt, &hdr, err);
    if (rc != FL_OK)
        return rc;
    fill_info(out_info, fmt, &hdr);
    return FL_OK;
}

enum fl_status fl_img_decode(const uint8_t *buf, size_t n, const struct fl_img_decode_opts *opts,
                             struct fl_image *out, struct fl_img_info *out_info, struct fl_err *err)
{
    struct fl_img_decode_opts defaults;
    struct fl__img_header hdr;
    struct fl_image raw = {0}, oriented = {0};
    struct fl_img_info info;
    enum fl_img_format fmt = FL_IMG_FORMAT_UNKNOWN;
    enum fl_status rc;
    int snum = 1, sden = 1;

    if (!opts) {
        fl_img_decode_opts_default(&defaults);
        opts = &defaults;
    }
    rc = read_header(buf, n, opts, &fmt, &hdr, err);
    if (rc != FL_OK)
        goto out;
    if (opts->min_side > 0 && (hdr.w < opts->min_side || hdr.h < opts->min_side)) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        "image is %dx%d pixels; the minimum image dimensions are %dx%d pixels",
                        hdr.w, hdr.h, opts->min_side, opts->min_side);
        goto out;
    }
    switch (fmt) {
    case FL_IMG_FORMAT_JPEG:
        rc = fl__img_jpeg_decode(buf, n, &hdr, opts->max_side, &raw, &snum, &sden, err);
        break;
    case FL_IMG_FORMAT_PNG:
        rc = fl__img_png_decode(buf, n, &hdr, &raw, err);
        break;
    case FL_IMG_FORMAT_WEBP:
        rc = fl__img_webp_decode(buf, n, &hdr, &raw, err);
        break;
    default:
        rc = fl_err_set(err, FL_ERR_INTERNAL, "img: format %d not dispatched", (int)fmt);
    }
    if (rc != FL_OK)
        goto out;
    fill_info(&info, fmt, &hdr);
    info.scale_num = snum;
    info.scale_denom = sden;
    if (!opts->no_orient && hdr.orientation != 1) {
        rc = fl_img_orient(&raw, hdr.orientation, &oriented, err);
        if (rc != FL_OK)
            goto out;
        fl_image_free(&raw);
        raw = oriented;
    }
    *out = raw;
    raw.px = NULL;
    if (out_info)
        *out_info = info;
out:
    fl_image_free(&raw);
    return rc;
}
