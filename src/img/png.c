/*
 * png.c: PNG through libspng.
 *
 * What: header read (IHDR, and whether the image carries transparency) and
 * decode to RGB. libspng does the format conversions: palette, grayscale and
 * 16-bit samples become 8-bit RGB(A) (16 -> 8 bits by its scaling). Images
 * with an alpha channel or a tRNS chunk decode as RGBA and are composited
 * over black here, so transparent regions are black whatever colour values
 * the encoder left under them. Gamma and ICC chunks are ignored.
 *
 * Safety: libspng validates CRCs of critical chunks, IHDR fields and the
 * zlib stream; every failure, a truncated file included, is
 * FL_ERR_IMAGE_FORMAT. Chunk sizes and the ancillary-chunk cache are capped
 * so compressed text/ICC chunks cannot expand without bound. libspng uses our
 * allocator (spng_ctx_new2).
 *
 * Threading: one spng context per call; reentrant.
 */
#include "img/img_int.h"

#include <spng.h>
#include <string.h>

#define PNG_CHUNK_LIMIT ((size_t)1 << 20) /* bytes per ancillary chunk, decompressed */
#define PNG_CACHE_LIMIT ((size_t)4 << 20) /* bytes of ancillary chunks in total */

static void *png_malloc(size_t s)
{
    return fl_malloc(s);
}
static void *png_realloc(void *p, size_t s)
{
    return fl_realloc(p, s);
}
static void *png_calloc(size_t n, size_t s)
{
    return fl_calloc(n, s);
}
static void png_free(void *p)
{
    fl_free(p);
}

/* A libspng context reading buf, with our allocator and limits; NULL on OOM. */
static spng_ctx *png_open(const uint8_t *buf, size_t n)
{
    struct spng_alloc a = {png_malloc, png_realloc, png_calloc, png_free};
    spng_ctx *ctx = spng_ctx_new2(&a, 0);
    if (!ctx)
        return NULL;
    if (spng_set_chunk_limits(ctx, PNG_CHUNK_LIMIT, PNG_CACHE_LIMIT) != 0 ||
        spng_set_png_buffer(ctx, buf, n) != 0) {
        spng_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Read IHDR and the chunks before IDAT; fill w, h, has_alpha. */
static enum fl_status png_read_ihdr(spng_ctx *ctx, struct fl__img_header *hdr, struct fl_err *err)
{
    struct spng_ihdr ihdr;
    struct spng_trns trns;
    int e = spng_get_ihdr(ctx, &ihdr);
    if (e != 0)
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "png: invalid header: %s", spng_strerror(e));
    if (ihdr.width > (uint32_t)INT32_MAX || ihdr.height > (uint32_t)INT32_MAX)
        return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE, "png: declares %ux%u pixels",
                          (unsigned)ihdr.width, (unsigned)ihdr.height);
    hdr->w = (int)ihdr.width;
    hdr->h = (int)ihdr.height;
    hdr->has_alpha = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ||
                     ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA;
    if (!hdr->has_alpha) {
        e = spng_get_trns(ctx, &trns);
        if (e == 0)
            hdr->has_alpha = true;
        else if (e != SPNG_ECHUNKAVAIL)
            return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "png: %s", spng_strerror(e));
    }
    return FL_OK;
}

/* Big-endian u32. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum fl_status fl__img_png_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                  struct fl_err *err)
{
    enum fl_status rc;
    spng_ctx *ctx;

    /* Declared size straight from IHDR, so that decode.c can classify a
     * bomb as too large even when libspng refuses the header first (it
     * reports "arithmetic overflow" for e.g. 2^31-1 x 2^31-1). */
    if (n >= 24 && memcmp(buf + 12, "IHDR", 4) == 0 && be32(buf + 16) <= INT32_MAX &&
        be32(buf + 20) <= INT32_MAX) {
        hdr->w = (int)be32(buf + 16);
        hdr->h = (int)be32(buf + 20);
    }
    ctx = png_open(buf, n);
    if (!ctx)
        return fl_err_set(err, FL_ERR_NOMEM, "png: cannot create a decoder");
    rc = png_read_ihdr(ctx, hdr, err);
    spng_ctx_free(ctx);
    return rc;
}

enum fl_status fl__img_png_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                  struct fl_image *out, struct fl_err *err)
{
    enum fl_status rc;
    struct fl__img_header h2;
    struct fl_image img = {0};
    uint8_t *rgba = NULL;
    size_t need = 0, have;
    int fmt = hdr->has_alpha ? SPNG_FMT_RGBA8 : SPNG_FMT_RGB8;
    int e;
    spng_ctx *ctx = png_open(buf, n);

    if (!ctx)
        return fl_err_set(err, FL_ERR_NOMEM, "png: cannot create a decoder");
    rc = png_read_ihdr(ctx, &h2, err);
    if (rc != FL_OK)
        goto out;
    FL_ASSERT(h2.w == hdr->w && h2.h == hdr->h); /* same bytes, same parser */
    rc = fl_image_alloc(hdr->w, hdr->h, &img, err);
    if (rc != FL_OK)
        goto out;
    e = spng_decoded_image_size(ctx, fmt, &need);
    if (e != 0) {
        rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "png: %s", spng_strerror(e));
        goto out;
    }
    if (hdr->has_alpha) {
        if (!fl_size_mul((size_t)hdr->w * 4, (size_t)hdr->h, &have) || have != need) {
            rc = fl_err_set(err, FL_ERR_INTERNAL, "png: unexpected RGBA size %zu", need);
            goto out;
        }
        rgba = fl_malloc(need);
        if (!rgba) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "png: out of memory");
            goto out;
        }
        e = spng_decode_image(ctx, rgba, need, fmt, SPNG_DECODE_TRNS);
    } else {
        have = img.stride * (size_t)img.h;
        if (have != need) {
            rc = fl_err_set(err, FL_ERR_INTERNAL, "png: unexpected RGB size %zu", need);
            goto out;
        }
        e = spng_decode_image(ctx, img.px, need, fmt, 0);
    }
    if (e != 0) {
        rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "png: corrupt or truncated data: %s",
                        spng_strerror(e));
        goto out;
    }
    if (rgba)
        fl__img_rgba_over_black(rgba, hdr->w, hdr->h, &img);
    *out = img;
    img.px = NULL;
out:
    fl_image_free(&img);
    fl_free(rgba);
    spng_ctx_free(ctx);
    return rc;
}
