/*
 * img.h: the image layer (library-internal; used by face/ and api/).
 *
 * Decode JPEG / PNG / WebP bytes into 8-bit RGB under explicit limits, apply
 * EXIF orientation, and the geometric operations the face pipelines need:
 * bilinear and area resize, TF-legacy bilinear resize to float, crop with zero
 * padding, and affine warp. Depends on core only.
 *
 * Conventions:
 *   - struct fl_image is 8-bit RGB, interleaved (R,G,B per pixel), rows top to
 *     bottom, stride_bytes >= 3*w between rows. Images made here own px
 *     (fl_image_free()).
 *   - Pixel coordinates: pixel (x,y) has its centre at (x,y) for the warp
 *     (cv2 convention) and at (x+0.5,y+0.5) for the half-pixel resize; each
 *     function states which.
 *   - u8 results of float arithmetic are rounded half up and clamped to 0..255.
 *   - Output parameters are written only on success.
 *
 * Threading: every function is reentrant; images are plain data and may be
 * read concurrently, written by one thread.
 */
#ifndef FL_IMG_H
#define FL_IMG_H

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================ Images ================================ */

/* 8-bit RGB interleaved image. */
struct fl_image {
    int w, h;      /* pixels, >= 1 for a valid image */
    size_t stride; /* bytes between rows, >= 3*w */
    uint8_t *px;   /* owned; fl_image_free() */
};

/* Float RGB image, HWC, rows packed (stride 3*w floats). Net inputs. */
struct fl_image_f32 {
    int w, h;  /* pixels */
    float *px; /* owned; fl_image_f32_free(); 3*w*h floats */
};

/* Allocate a w x h RGB image (stride 3*w), zero-filled. FL_ERR_INVALID_ARG for
 * w or h < 1 or a byte size that overflows; FL_ERR_NOMEM. */
enum fl_status fl_image_alloc(int w, int h, struct fl_image *out, struct fl_err *err);
/* Free img->px and zero the struct. img may be NULL; freeing twice is safe. */
void fl_image_free(struct fl_image *img);
/* Pointer to pixel (x,y) (3 bytes). Caller guarantees 0<=x<w, 0<=y<h. */
static inline uint8_t *fl_image_at(const struct fl_image *img, int x, int y)
{
    return img->px + (size_t)y * img->stride + (size_t)x * 3;
}

/* Allocate a w x h float image, zero-filled. Same errors as fl_image_alloc. */
enum fl_status fl_image_f32_alloc(int w, int h, struct fl_image_f32 *out, struct fl_err *err);
void fl_image_f32_free(struct fl_image_f32 *img);
/* Float -> u8 image of the same size: round half up (floor(v + 0.5)),
 * clamped to 0..255; NaN gives 0. out is allocated (caller frees). */
enum fl_status fl_image_f32_to_u8(const struct fl_image_f32 *src, struct fl_image *out,
                                  struct fl_err *err);

/* =============================== Decoding =============================== */

enum fl_img_format {
    FL_IMG_FORMAT_UNKNOWN = 0,
    FL_IMG_FORMAT_JPEG = 1,
    FL_IMG_FORMAT_PNG = 2,
    FL_IMG_FORMAT_WEBP = 3,
};

#define FL_IMG_DEFAULT_MAX_BYTES  ((size_t)5 * 1024 * 1024) /* Rekognition's 5 MB Bytes cap */
#define FL_IMG_DEFAULT_MAX_PIXELS ((uint64_t)40000000)      /* 40 megapixels, from the header */
#define FL_IMG_DEFAULT_MIN_SIDE   80                        /* Rekognition's minimum 80x80 */

/* Decode options. Start from fl_img_decode_opts_default(). */
struct fl_img_decode_opts {
    size_t max_bytes;    /* input bytes cap; over it: FL_ERR_IMAGE_TOO_LARGE */
    uint64_t max_pixels; /* declared w*h cap, checked before allocating: FL_ERR_IMAGE_TOO_LARGE */
    int min_side;        /* min(w,h) below it: FL_ERR_INVALID_ARG (0 = no check) */
    int max_side;        /* 0 = full size; else a JPEG may be DCT-scaled down to the smallest
                            factor whose output keeps max(w,h) >= max_side */
    bool no_orient;      /* true: do not apply EXIF orientation (still reported) */
};

/* What the decoder saw. */
struct fl_img_info {
    enum fl_img_format format;
    int stored_w, stored_h;     /* dimensions declared in the file (before scaling/orientation) */
    int orientation;            /* EXIF orientation 1..8 (1 when absent, corrupt, or not JPEG) */
    int scale_num, scale_denom; /* DCT scale applied (1/1 when none) */
    bool had_alpha;             /* alpha was present and composited over black */
};

/* Fill opts with the defaults above (max_side 0, orientation applied). */
void fl_img_decode_opts_default(struct fl_img_decode_opts *opts);

/* Format from the leading magic bytes; FL_IMG_FORMAT_UNKNOWN if none matches. */
enum fl_img_format fl_img_sniff(const uint8_t *buf, size_t n);
/* Static name ("jpeg", "png", "webp", "unknown"). */
const char *fl_img_format_name(enum fl_img_format f);

/* Read format and declared dimensions (and JPEG EXIF orientation) without
 * decoding pixels. Applies the byte and pixel caps of opts (NULL = defaults)
 * but not min_side. Errors as fl_img_decode. */
enum fl_status fl_img_probe(const uint8_t *buf, size_t n, const struct fl_img_decode_opts *opts,
                            struct fl_img_info *out_info, struct fl_err *err);

/* Decode an image to RGB. The result is oriented (EXIF, JPEG only) and, with
 * opts->max_side, possibly DCT-scaled; out_info (may be NULL) records the
 * stored size, scale and orientation. Grayscale, CMYK/YCCK (Adobe inverted),
 * palette and 16-bit inputs are converted to 8-bit RGB; alpha is composited
 * over black (c*a/255, rounded). Gamma/ICC are ignored.
 * Returns:
 *   FL_ERR_INVALID_ARG     empty input, or min(w,h) < opts->min_side
 *   FL_ERR_IMAGE_TOO_LARGE n > max_bytes, or declared w*h > max_pixels
 *   FL_ERR_IMAGE_FORMAT    unknown magic, truncated or corrupt data, animated WebP
 *   FL_ERR_NOMEM
 * buf is borrowed for the call; out is allocated (caller fl_image_free()s). */
enum fl_status fl_img_decode(const uint8_t *buf, size_t n, const struct fl_img_decode_opts *opts,
                             struct fl_image *out, struct fl_img_info *out_info,
                             struct fl_err *err);

/* Apply EXIF orientation o (1..8) to src, giving a new image (w/h swapped for
 * 5..8). Values outside 1..8 act as 1 (a copy). out is allocated. */
enum fl_status fl_img_orient(const struct fl_image *src, int orientation, struct fl_image *out,
                             struct fl_err *err);

/* ============================ Crop and pad ============================== */

/* Make an out_w x out_h zero image and copy into it, at (off_x, off_y), the
 * part of the rectangle (x, y, w, h) of src that lies inside src. Pixels of
 * the canvas not covered stay 0. Any of the rectangles may be partly outside.
 * FL_ERR_INVALID_ARG for out_w/out_h < 1 or w/h < 0. out is allocated. */
enum fl_status fl_img_crop_pad(const struct fl_image *src, int x, int y, int w, int h, int out_w,
                               int out_h, int off_x, int off_y, struct fl_image *out,
                               struct fl_err *err);

/* Crop (x,y,w,h) and zero-pad it to a square of side max(w,h).
 * centred == true: face-api's padToSquare(isCenterImage): with d = |h-w|,
 *   round(d/2) (half up) zero rows/columns go after the content and the rest
 *   d - round(d/2) before it.
 * centred == false: all padding bottom/right (SSD / Tiny YOLO input). */
enum fl_status fl_img_crop_square(const struct fl_image *src, int x, int y, int w, int h,
                                  bool centred, struct fl_image *out, struct fl_err *err);

/* ================================ Resize ================================ */

/* Bilinear resize u8 -> u8 with half-pixel centres (src = (dst+0.5)*in/out -
 * 0.5, clamped to the border), as OpenCV INTER_LINEAR / PIL without
 * antialias. Good for factors down to ~0.5; use area below that. */
enum fl_status fl_img_resize_bilinear(const struct fl_image *src, int out_w, int out_h,
                                      struct fl_image *out, struct fl_err *err);

/* The bilinear taps of fl_img_resize_bilinear (half_pixel: TF half-pixel
 * centres, clamped) and fl_img_resize_tf_f32 (legacy align_corners=false)
 * along one axis: output i = src[i0[i]] + (src[i1[i]] - src[i0[i]]) * f[i];
 * i0, i1 and f have out entries (the caller's). */
void fl_img_bilinear_taps(int in, int out, bool half_pixel, int *i0, int *i1, float *f);

/* The box-filter (area) taps fl_img_resize_area uses along one axis, from in
 * to out samples, for resamplers that must give its bytes exactly (MTCNN's
 * fused pyramid): output i = sum of w[k] * src[first[i] + k - off[i]] for k
 * in off[i] .. off[i+1]-1. The caller provides first (out ints), off (out+1
 * ints) and w (fl_img_area_taps_cap(in, out) floats). */
size_t fl_img_area_taps_cap(int in, int out);
void fl_img_area_taps(int in, int out, int *first, int *off, float *w);

/* A resampled float back to a byte, as every float resizer here rounds it:
 * half up, clamped to 0..255. v + 0.5 is positive where it is converted, so
 * the int conversion (truncation) is floor; floorf would be a libm call
 * without SSE4.1. */
static inline uint8_t fl_img_round_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 254.5f)
        return 255;
    return (uint8_t)(int)(v + 0.5f);
}

/* Area (box) resize: each output pixel is the mean of the source area it
 * covers, partial pixels weighted by coverage (OpenCV INTER_AREA for
 * shrinking). For upscaling it degrades to nearest-ish boxes; use bilinear. */
enum fl_status fl_img_resize_area(const struct fl_image *src, int out_w, int out_h,
                                  struct fl_image *out, struct fl_err *err);

/* TF legacy bilinear (tf.image.resizeBilinear, align_corners=false,
 * half_pixel_centers=false): src = dst*in/out, top/left = floor, the
 * bottom/right neighbour clamped to in-1, out = top + (bottom-top)*frac after
 * left/right lerp. Output is float, unrounded, values in 0..255. */
enum fl_status fl_img_resize_tf_f32(const struct fl_image *src, int out_w, int out_h,
                                    struct fl_image_f32 *out, struct fl_err *err);

/* ================================= Warp ================================= */

/* Affine warp, cv2.warpAffine convention: M maps source to destination
 * ([u,v] = M [x,y,1]); dst(x,y) = src(M^-1 [x,y,1]) with integer pixel
 * centres, bilinear in double, source neighbours outside the image count as
 * 0, round half up. FL_ERR_INVALID_ARG for a singular M or bad size. */
enum fl_status fl_img_warp_affine(const struct fl_image *src, const double m[2][3], int out_w,
                                  int out_h, struct fl_image *out, struct fl_err *err);

/* Like fl_img_warp_affine, but when M shrinks by more than 2 (sqrt|det| <
 * 0.5) the source is first halved with 2x2 box means until the remaining
 * scale is >= 0.5 (dlib-style pyramid), which avoids aliasing. Equals the
 * plain warp when no halving is needed. */
enum fl_status fl_img_warp_affine_prefilter(const struct fl_image *src, const double m[2][3],
                                            int out_w, int out_h, struct fl_image *out,
                                            struct fl_err *err);

#ifdef __cplusplus
}
#endif
#endif /* FL_IMG_H */
