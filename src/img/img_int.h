/*
 * img_int.h: shared by the src/img C files only.
 *
 * Each format file exposes a header reader (no pixel allocation) and a pixel
 * decoder. decode.c sniffs, enforces the limits between the two calls and
 * applies orientation.
 */
#ifndef FL_IMG_INT_H
#define FL_IMG_INT_H

#include "img/img.h"

/* Declared geometry of a file, filled by the *_header functions. */
struct fl__img_header {
    int w, h;        /* stored dimensions */
    int orientation; /* EXIF 1..8 (JPEG only; 1 otherwise) */
    bool has_alpha;  /* PNG/WebP alpha (or PNG tRNS) */
    int jpeg_cs;     /* TurboJPEG colourspace (JPEG only) */
};

/* Header readers: fill *hdr from buf[0..n). FL_ERR_IMAGE_FORMAT on corrupt or
 * truncated headers, FL_ERR_NOMEM. No pixel buffers are allocated. On
 * failure hdr->w/h may still hold the declared size (caller zeroes hdr). */
enum fl_status fl__img_jpeg_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                   struct fl_err *err);
enum fl_status fl__img_png_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                  struct fl_err *err);
enum fl_status fl__img_webp_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                   struct fl_err *err);

/* Pixel decoders. hdr is the result of the matching header call (limits
 * already checked by the caller). out is allocated on success.
 * JPEG: max_side > 0 selects DCT scaling; the scale_num and scale_denom outputs report it. */
enum fl_status fl__img_jpeg_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                   int max_side, struct fl_image *out, int *scale_num,
                                   int *scale_denom, struct fl_err *err);
enum fl_status fl__img_png_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                  struct fl_image *out, struct fl_err *err);
enum fl_status fl__img_webp_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                   struct fl_image *out, struct fl_err *err);

/* EXIF orientation of a JPEG (1..8), from the first APP1 "Exif" segment
 * before SOS; 1 when absent, unreadable or out of range. Never fails. */
int fl__img_jpeg_exif_orientation(const uint8_t *buf, size_t n);

/* Composite RGBA8 (packed, 4*w*h bytes) over black into dst (RGB, stride):
 * c' = (c*a + 127) / 255. */
void fl__img_rgba_over_black(const uint8_t *rgba, int w, int h, struct fl_image *dst);

#endif /* FL_IMG_INT_H */
