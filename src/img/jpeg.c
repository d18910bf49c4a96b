/*
 * jpeg.c: JPEG through TurboJPEG (libjpeg-turbo 2.1 API).
 *
 * What: header read (size, colourspace, EXIF orientation) and pixel decode to
 * RGB, optionally with DCT-domain scaling.
 *
 * DCT scaling: libjpeg-turbo can run a reduced IDCT (scale factors n/8, from
 * 1/8 up) that outputs a smaller image for a fraction of the cost of a full
 * decode. When the caller will shrink the image to about max_side anyway (a
 * detector input is 512 or 608 px), we pick the smallest factor whose output
 * still has max(w,h) >= max_side, so the later resize only shrinks and the
 * detector sees no upsampling. The factor is reported to the caller, who must
 * map coordinates back with it (or use ratios, as Rekognition does).
 *
 * Colour: grayscale and YCbCr decode straight to RGB. CMYK/YCCK decode to
 * CMYK and are converted with R = C*K/255 (etc.), which assumes the Adobe
 * convention of inverted CMYK that nearly every CMYK JPEG in the wild uses.
 *
 * Corruption policy: libjpeg recovers from damaged data with warnings (grey
 * fill). A warning means we did not get the whole image, so it is
 * FL_ERR_IMAGE_FORMAT, with one exception: "extraneous bytes before marker",
 * which cameras and editors emit routinely and which loses no pixel data.
 * TurboJPEG 2.1 exposes warnings only as text, hence the string match.
 * TJFLAG_LIMITSCANS caps progressive scans (a CPU-exhaustion vector).
 *
 * Memory: TurboJPEG allocates its own working memory (no allocator hook); the
 * output buffer is ours. Working memory is bounded by the pixel cap that
 * decode.c checks before we are called.
 *
 * Threading: one TurboJPEG handle per call; reentrant.
 */
#include "img/img_int.h"

#include <string.h>
#include <turbojpeg.h>

enum fl_status fl__img_jpeg_header(const uint8_t *buf, size_t n, struct fl__img_header *hdr,
                                   struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    int w = 0, h = 0, subsamp = 0, cs = 0;
    tjhandle tj = tjInitDecompress();

    if (!tj)
        return fl_err_set(err, FL_ERR_NOMEM, "jpeg: cannot create a decoder");
    if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &subsamp, &cs) != 0) {
        rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "jpeg: invalid header: %s", tjGetErrorStr2(tj));
        goto out;
    }
    hdr->w = w;
    hdr->h = h;
    hdr->jpeg_cs = cs;
    hdr->orientation = fl__img_jpeg_exif_orientation(buf, n);
out:
    tjDestroy(tj);
    return rc;
}

/* Smallest TurboJPEG scaling factor <= 1 whose scaled max side is still >=
 * max_side; 1/1 when max_side <= 0 or nothing smaller qualifies. */
static tjscalingfactor pick_scale(int w, int h, int max_side)
{
    tjscalingfactor best = {1, 1};
    int n_sf = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n_sf);

    if (max_side <= 0 || !sf)
        return best;
    for (int i = 0; i < n_sf; i++) {
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        if (sf[i].num > sf[i].denom || FL_MAX(sw, sh) < max_side)
            continue;
        /* a/b < c/d  <=>  a*d < c*b (all small positive ints) */
        if (sf[i].num * best.denom < best.num * sf[i].denom)
            best = sf[i];
    }
    return best;
}

/* A warning that leaves the pixel data complete. */
static bool benign_warning(const char *msg)
{
    return msg && strstr(msg, "extraneous bytes before marker") != NULL;
}

enum fl_status fl__img_jpeg_decode(const uint8_t *buf, size_t n, const struct fl__img_header *hdr,
                                   int max_side, struct fl_image *out, int *scale_num,
                                   int *scale_denom, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    struct fl_image img = {0};
    uint8_t *cmyk = NULL;
    bool is_cmyk = hdr->jpeg_cs == TJCS_CMYK || hdr->jpeg_cs == TJCS_YCCK;
    tjscalingfactor sf = pick_scale(hdr->w, hdr->h, max_side);
    int sw = TJSCALED(hdr->w, sf), sh = TJSCALED(hdr->h, sf);
    int flags = TJFLAG_LIMITSCANS;
    int ret;
    tjhandle tj = tjInitDecompress();

    if (!tj)
        return fl_err_set(err, FL_ERR_NOMEM, "jpeg: cannot create a decoder");
    rc = fl_image_alloc(sw, sh, &img, err);
    if (rc != FL_OK)
        goto out;
    if (is_cmyk) {
        size_t bytes;
        if (!fl_size_mul((size_t)sw * 4, (size_t)sh, &bytes)) {
            rc = fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE, "jpeg: %dx%d CMYK overflows", sw, sh);
            goto out;
        }
        cmyk = fl_malloc(bytes);
        if (!cmyk) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "jpeg: out of memory");
            goto out;
        }
        ret = tjDecompress2(tj, buf, (unsigned long)n, cmyk, sw, sw * 4, sh, TJPF_CMYK, flags);
    } else {
        ret = tjDecompress2(tj, buf, (unsigned long)n, img.px, sw, (int)img.stride, sh, TJPF_RGB,
                            flags);
    }
    if (ret != 0) {
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || !benign_warning(msg)) {
            rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "jpeg: corrupt or truncated data: %s",
                            msg ? msg : "?");
            goto out;
        }
    }
    if (is_cmyk) {
        for (int y = 0; y < sh; y++) {
            const uint8_t *s = cmyk + (size_t)y * sw * 4;
            uint8_t *d = fl_image_at(&img, 0, y);
            for (int x = 0; x < sw; x++, s += 4, d += 3) {
                unsigned k = s[3];
                for (int c = 0; c < 3; c++)
                    d[c] = (uint8_t)((s[c] * k + 127) / 255);
            }
        }
    }
    *out = img;
    img.px = NULL;
    *scale_num = sf.num;
    *scale_denom = sf.denom;
out:
    fl_image_free(&img);
    fl_free(cmyk);
    tjDestroy(tj);
    return rc;
}
