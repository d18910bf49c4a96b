/*
 * crop.c: the face data IndexFaces retains so that a collection can later be
 * re-embedded with another model (ReindexCollection, DESIGN.md §5), and
 * exported with it (crops/ in the export, DESIGN.md §8).
 *
 * What is kept is chosen so that ANY model's chip can be re-made from it:
 * not a model's own chip (the dlib chip is too loose for nothing and the
 * ArcFace chip too tight for dlib), but a loose, similarity-aligned crop of
 * the face plus the 68 landmarks in the crop's coordinates. fl_face_chip()
 * then runs on the decoded crop exactly as on a photo: a least-squares
 * similarity fit is equivariant under similarity maps, so the chip fitted on
 * the crop's landmarks is the chip of the photo, resampled once more.
 *
 * The retained blob (the store keeps it opaque, faces.crop), little-endian:
 *
 *   offset size  field
 *   0      4     magic "FLC1"
 *   4      1     kind: 1 = aligned crop, 2 = whole photo
 *   5      1     encoding of the pixels: 1 = JPEG (the only one written)
 *   6      2     reserved, 0
 *   8      4     u32 width of the pixel data
 *   12     4     u32 height
 *   16     544   136 float32: the iBUG 68 landmarks (x, y) in the pixel data's
 *                coordinates (pixel centres at integers)
 *   560    4     u32 n = length of the encoded pixels
 *   564    n     the encoded pixels (RGB)
 *
 * Kind 1 (crop_retention "crops", the default): CROP_SIZE x CROP_SIZE =
 * 320 x 320, the similarity that maps the face onto dlib's mean face with
 * CROP_PADDING = 1.0 (dlib's get_face_chip_details convention; the
 * recognition chip uses 150 px and 0.25). Its scale is therefore
 * (320 / 3.0) / (150 / 1.5) = 1.067 times the dlib chip's, so that chip is
 * re-made without upsampling. Measured on sample1.jpg's three faces: eyes
 * 53-59 px apart in the crop, which spans 5.4-6.0 inter-ocular distances
 * against 2.7-3.0 for the dlib chip and 3.0-3.3 for the ArcFace 112
 * template (256 px with padding 0.625, a first try, would span ~3.2: barely
 * the ArcFace chip). JPEG quality 95 without chroma subsampling: ~33 kB a
 * face. Re-embedding from it (tests/unit/test_api_crop.c, 22 faces): dlib
 * vectors move by <= 0.05 (its match threshold is 0.6), MobileFaceNet
 * vectors keep cosine >= 0.997.
 * Kind 2 (crop_retention "images"): the whole EXIF-oriented photo,
 * re-encoded the same way, with the landmarks in its coordinates (one copy
 * per face: simple, and costly for group photos; documented).
 *
 * Threading: pure functions; a turbojpeg handle per call.
 */
#include "api/api.h"

#include "img/img.h"

#include <math.h>
#include <string.h>
#include <turbojpeg.h>

#define CROP_SIZE    320
#define CROP_PADDING 1.0
#define JPEG_QUALITY 95
#define HDR_LEN      564

enum fl__api_crop_mode fl__api_crop_mode_parse(const char *s, bool *ok)
{
    *ok = true;
    if (!s || strcmp(s, "crops") == 0)
        return FL__API_CROP_CROPS;
    if (strcmp(s, "none") == 0)
        return FL__API_CROP_NONE;
    if (strcmp(s, "images") == 0)
        return FL__API_CROP_IMAGES;
    *ok = false;
    return FL__API_CROP_CROPS;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(p, u);
}

static float get_f32(const uint8_t *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The blob for pixels px with landmarks lm (in px's coordinates). */
static enum fl_status encode(const struct fl_image *px, const float lm[136], int kind,
                             uint8_t **out, size_t *out_len, struct fl_err *err)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jpg_len = 0;
    uint8_t *blob = NULL;
    enum fl_status rc = FL_OK;
    if (!tj)
        return fl_err_set(err, FL_ERR_NOMEM, "turbojpeg: %s", tjGetErrorStr());
    if (tjCompress2(tj, px->px, px->w, (int)px->stride, px->h, TJPF_RGB, &jpg, &jpg_len, TJSAMP_444,
                    JPEG_QUALITY, TJFLAG_ACCURATEDCT) != 0) {
        rc = fl_err_set(err, FL_ERR_INTERNAL, "turbojpeg: %s", tjGetErrorStr2(tj));
        goto out;
    }
    blob = fl_malloc(HDR_LEN + (size_t)jpg_len);
    if (!blob) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (crop)");
        goto out;
    }
    memcpy(blob, "FLC1", 4);
    blob[4] = (uint8_t)kind;
    blob[5] = 1;
    blob[6] = blob[7] = 0;
    put_u32(blob + 8, (uint32_t)px->w);
    put_u32(blob + 12, (uint32_t)px->h);
    for (int i = 0; i < 136; i++)
        put_f32(blob + 16 + 4 * i, lm[i]);
    put_u32(blob + 560, (uint32_t)jpg_len);
    memcpy(blob + HDR_LEN, jpg, jpg_len);
    *out = blob;
    *out_len = HDR_LEN + (size_t)jpg_len;
out:
    tjFree(jpg);
    tjDestroy(tj);
    return rc;
}

enum fl_status fl__api_crop_make(enum fl__api_crop_mode mode, const struct fl_image *img,
                                 const struct fl_face *f, uint8_t **out, size_t *out_len,
                                 struct fl_err *err)
{
    struct fl_image crop = {0};
    float lm[136];
    double m[6];
    enum fl_status rc;
    FL_ASSERT(mode != FL__API_CROP_NONE);
    if (mode == FL__API_CROP_IMAGES)
        return encode(img, f->lm68, 2, out, out_len, err);
    if (!fl_face_dlib_chip_transform(f->lm68, CROP_SIZE, CROP_PADDING, m))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate landmarks");
    for (int i = 0; i < 68; i++) {
        double x = f->lm68[2 * i], y = f->lm68[2 * i + 1];
        lm[2 * i] = (float)(m[0] * x + m[1] * y + m[2]);
        lm[2 * i + 1] = (float)(m[3] * x + m[4] * y + m[5]);
    }
    rc = fl_face_warp(img, m, CROP_SIZE, &crop, err);
    if (rc == FL_OK)
        rc = encode(&crop, lm, 1, out, out_len, err);
    fl_image_free(&crop);
    return rc;
}

enum fl_status fl__api_crop_open(const void *blob, size_t len, struct fl_image *out_img,
                                 struct fl_face *out_face, struct fl_err *err)
{
    const uint8_t *p = blob;
    struct fl_img_decode_opts o;
    struct fl_image img = {0};
    uint32_t w, h, n;
    enum fl_status rc;
    if (len < HDR_LEN || memcmp(p, "FLC1", 4) != 0 || (p[4] != 1 && p[4] != 2) || p[5] != 1)
        return fl_err_set(err, FL_ERR_CORRUPT, "not a FaceLink crop (FLC1) blob");
    w = get_u32(p + 8);
    h = get_u32(p + 12);
    n = get_u32(p + 560);
    if ((size_t)n != len - HDR_LEN)
        return fl_err_set(err, FL_ERR_CORRUPT, "crop blob: %u image bytes announced, %zu present",
                          n, len - HDR_LEN);
    fl_img_decode_opts_default(&o);
    rc = fl_img_decode(p + HDR_LEN, n, &o, &img, NULL, err);
    if (rc != FL_OK)
        return rc == FL_ERR_NOMEM ? rc
                                  : fl_err_set(err, FL_ERR_CORRUPT, "crop blob: %s",
                                               err ? err->msg : "undecodable");
    if ((uint32_t)img.w != w || (uint32_t)img.h != h) {
        fl_image_free(&img);
        return fl_err_set(err, FL_ERR_CORRUPT, "crop blob: %ux%u announced, %dx%d decoded", w, h,
                          img.w, img.h);
    }
    memset(out_face, 0, sizeof(*out_face));
    for (int i = 0; i < 136; i++) {
        float v = get_f32(p + 16 + 4 * i);
        if (!isfinite(v)) {
            fl_image_free(&img);
            return fl_err_set(err, FL_ERR_CORRUPT, "crop blob: landmark %d is not finite", i / 2);
        }
        out_face->lm68[i] = v;
    }
    *out_img = img;
    return FL_OK;
}

enum fl_status fl__api_crop_embed(struct fl_face_worker *w, const void *blob, size_t len,
                                  enum fl_face_model m, float *out, struct fl_err *err)
{
    struct fl_image img = {0};
    struct fl_face f;
    enum fl_status rc = fl__api_crop_open(blob, len, &img, &f, err);
    if (rc == FL_OK)
        rc = fl_face_embed(w, &img, &f, m, out, err);
    fl_image_free(&img);
    return rc;
}
