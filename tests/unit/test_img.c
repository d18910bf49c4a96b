/* test_img.c: the image layer's decoders: real photos, formats generated
 * here with the libraries' encoders, EXIF orientation, hostile inputs, limits
 * and allocation failures. Geometry (resize, crop, warp) is in
 * test_img_geom.c. */
#include "t.h"
#include "img/img.h"
#include "img/img_int.h"

#include <spng.h>
#include <turbojpeg.h>
#include <webp/encode.h>

T_MAIN_STATE;

/* ============================== Helpers ============================== */

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A deterministic, non-symmetric test pattern (w x h RGB, packed). */
static uint8_t *pattern(int w, int h, uint32_t seed)
{
    uint8_t *p = fl_malloc((size_t)w * h * 3);
    uint32_t s = seed * 2654435761u + 1u;
    for (size_t i = 0; p && i < (size_t)w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(s >> 24);
    }
    return p;
}

/* PNG bytes (fl_malloc'd; *n) of an image with the given spng colour type,
 * bit depth and raw sample buffer. NULL on failure. */
static uint8_t *png_encode(const void *px, size_t px_len, int w, int h, int color_type, int depth,
                           const struct spng_plte *plte, const struct spng_trns *trns, size_t *n)
{
    uint8_t *res = NULL;
    void *out;
    int e;
    size_t len = 0;
    struct spng_ihdr ihdr = {
        (uint32_t)w, (uint32_t)h, (uint8_t)depth, (uint8_t)color_type, 0, 0, 0};
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx)
        return NULL;
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    spng_set_ihdr(ctx, &ihdr);
    if (plte)
        spng_set_plte(ctx, (struct spng_plte *)plte);
    if (trns)
        spng_set_trns(ctx, (struct spng_trns *)trns);
    e = spng_encode_image(ctx, px, px_len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (e == 0) {
        out = spng_get_png_buffer(ctx, &len, &e);
        if (out) {
            res = fl_malloc(len);
            memcpy(res, out, len);
            *n = len;
            free(out); /* libspng allocated it with the default allocator */
        }
    }
    spng_ctx_free(ctx);
    return res;
}

static uint8_t *png_rgb(const uint8_t *px, int w, int h, size_t *n)
{
    return png_encode(px, (size_t)w * h * 3, w, h, SPNG_COLOR_TYPE_TRUECOLOR, 8, NULL, NULL, n);
}

/* JPEG bytes (fl_malloc'd) of an RGB image; 4:4:4 when sub444. */
static uint8_t *jpeg_rgb(const uint8_t *px, int w, int h, int quality, bool sub444, size_t *n)
{
    uint8_t *res = NULL, *jb = NULL;
    unsigned long len = 0;
    tjhandle tj = tjInitCompress();
    if (!tj)
        return NULL;
    if (tjCompress2(tj, px, w, w * 3, h, TJPF_RGB, &jb, &len, sub444 ? TJSAMP_444 : TJSAMP_420,
                    quality, 0) == 0) {
        res = fl_malloc(len);
        memcpy(res, jb, len);
        *n = len;
    }
    tjFree(jb);
    tjDestroy(tj);
    return res;
}

/* Insert an APP1 segment with payload p[0..len) right after SOI. */
static uint8_t *jpeg_insert_app1(const uint8_t *jpg, size_t n, const uint8_t *p, size_t len,
                                 size_t *out_n)
{
    uint8_t *r = fl_malloc(n + len + 4);
    memcpy(r, jpg, 2);
    r[2] = 0xff;
    r[3] = 0xe1;
    r[4] = (uint8_t)((len + 2) >> 8);
    r[5] = (uint8_t)(len + 2);
    memcpy(r + 6, p, len);
    memcpy(r + 6 + len, jpg + 2, n - 2);
    *out_n = n + len + 4;
    return r;
}

/* "Exif\0\0" + TIFF header + IFD0 with one Orientation entry. type/count
 * and the IFD offset can be made wrong for the corruption tests. Returns the
 * length written to buf (>= 64 bytes). */
static size_t exif_app1(uint8_t *buf, bool big_endian, int orientation, uint16_t type,
                        uint32_t count, uint32_t ifd_off)
{
    size_t n = 0;
    uint8_t *t;
#define W16(v)                                                                                     \
    do {                                                                                           \
        uint16_t v_ = (uint16_t)(v);                                                               \
        if (big_endian) {                                                                          \
            t[n - 6] = (uint8_t)(v_ >> 8);                                                         \
            t[n - 5] = (uint8_t)v_;                                                                \
        } else {                                                                                   \
            t[n - 6] = (uint8_t)v_;                                                                \
            t[n - 5] = (uint8_t)(v_ >> 8);                                                         \
        }                                                                                          \
        n += 2;                                                                                    \
    } while (0)
#define W32(v)                                                                                     \
    do {                                                                                           \
        uint32_t v_ = (v);                                                                         \
        for (int i_ = 0; i_ < 4; i_++)                                                             \
            t[n - 6 + i_] = (uint8_t)(big_endian ? v_ >> (24 - 8 * i_) : v_ >> (8 * i_));          \
        n += 4;                                                                                    \
    } while (0)
    memcpy(buf, "Exif\0\0", 6);
    n = 6;
    t = buf + 6;
    t[0] = t[1] = big_endian ? 'M' : 'I';
    n += 2;
    W16(42);
    W32(ifd_off);
    /* IFD0 at 8 */
    W16(1);
    W16(0x0112);
    W16(type);
    W32(count);
    W16(orientation);
    W16(0);
    W32(0); /* next IFD */
#undef W16
#undef W32
    return n;
}

/* Status of decoding with default options (image freed). */
static enum fl_status decode_status(const uint8_t *b, size_t n)
{
    struct fl_image img = {0};
    struct fl_err err;
    enum fl_status rc = fl_img_decode(b, n, NULL, &img, NULL, &err);
    fl_image_free(&img);
    return rc;
}

static bool img_equals(const struct fl_image *img, const uint8_t *ref, int w, int h)
{
    if (img->w != w || img->h != h)
        return false;
    for (int y = 0; y < h; y++)
        if (memcmp(fl_image_at(img, 0, y), ref + (size_t)y * w * 3, (size_t)w * 3) != 0)
            return false;
    return true;
}

/* Independent JPEG SOF parser (for sizes of real photos). */
static bool jpeg_sof_size(const uint8_t *d, size_t n, int *w, int *h)
{
    size_t i = 2;
    while (i + 4 < n) {
        uint8_t m;
        size_t len;
        while (i < n && d[i] == 0xff)
            i++;
        if (i + 3 >= n)
            return false;
        m = d[i++];
        len = ((size_t)d[i] << 8) | d[i + 1];
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            if (i + 7 > n)
                return false;
            *h = (d[i + 3] << 8) | d[i + 4];
            *w = (d[i + 5] << 8) | d[i + 6];
            return true;
        }
        i += len;
    }
    return false;
}

static double mean_abs_diff(const struct fl_image *a, const struct fl_image *b)
{
    double s = 0;
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w * 3; x++)
            s += abs((int)fl_image_at(a, 0, y)[x] - (int)fl_image_at(b, 0, y)[x]);
    return s / ((double)a->w * a->h * 3);
}

/* =============================== Tests =============================== */

static void test_sniff(void)
{
    static const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t webp[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'};
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0, 0};
    T_CHECK_EQ_INT(fl_img_sniff(jpg, sizeof(jpg)), FL_IMG_FORMAT_JPEG);
    T_CHECK_EQ_INT(fl_img_sniff(png, sizeof(png)), FL_IMG_FORMAT_PNG);
    T_CHECK_EQ_INT(fl_img_sniff(webp, sizeof(webp)), FL_IMG_FORMAT_WEBP);
    T_CHECK_EQ_INT(fl_img_sniff(gif, sizeof(gif)), FL_IMG_FORMAT_UNKNOWN);
    T_CHECK_EQ_INT(fl_img_sniff(png, 7), FL_IMG_FORMAT_UNKNOWN);
    T_CHECK_EQ_INT(fl_img_sniff(jpg, 2), FL_IMG_FORMAT_UNKNOWN);
    T_CHECK_EQ_STR(fl_img_format_name(FL_IMG_FORMAT_WEBP), "webp");
}

/* Golden PNGs: the decoded raster's sha256 equals that of an independent
 * decoder (the sandbox's Python zlib-based convert stand-in, PPM output). */
static void test_png_golden_sha256(void)
{
    static const struct {
        const char *id;
        int w, h;
        const char *sha;
    } cases[] = {
        {"Serena_Williams_0001", 250, 250,
         "e8673d84e9c5c328d64c673673135ab25b6800bb4c8bea2a4b7e08f2eeaaf559"},
        {"group1", 500, 332, "def2c3263048af41eead6cf43a12f31b12f750546e7d28d4fb7c6a94c1c5a56b"},
        {"group3", 440, 293, "d9c61865e3cb445ed74b2bcdc0facb8aef412d9d2c1525f4e139bf33dbc6f991"},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        char rel[256], path[1024], hex[65];
        uint8_t *b = NULL;
        size_t n = 0;
        struct fl_image img = {0};
        struct fl_img_info info;
        snprintf(rel, sizeof(rel), "golden/src/%s.png", cases[i].id);
        if (!t_shared(rel, path, sizeof(path)))
            T_SKIP("../shared/golden absent");
        T_REQUIRE(fl_file_read(path, 1 << 24, &b, &n, NULL) == FL_OK);
        T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, &info, NULL), FL_OK);
        T_CHECK_EQ_INT(info.format, FL_IMG_FORMAT_PNG);
        T_CHECK_EQ_INT(img.w, cases[i].w);
        T_CHECK_EQ_INT(img.h, cases[i].h);
        T_REQUIRE(img.stride == (size_t)img.w * 3);
        fl_sha256_hex(img.px, img.stride * img.h, hex);
        T_CHECK_EQ_STR(hex, cases[i].sha);
        fl_image_free(&img);
        fl_free(b);
    }
}

/* PNG colour types and depths, generated with libspng's encoder; expected
 * pixels computed here from the raw samples. */
static void test_png_color_types(void)
{
    const int w = 97, h = 83;
    uint8_t *rgb = pattern(w, h, 1);
    uint8_t *gray = fl_malloc((size_t)w * h), *ga = fl_malloc((size_t)w * h * 2);
    uint8_t *rgba = fl_malloc((size_t)w * h * 4), *g16 = fl_malloc((size_t)w * h * 2);
    uint8_t *idx = fl_malloc((size_t)w * h), *exp = fl_malloc((size_t)w * h * 3);
    struct spng_plte plte = {0};
    uint8_t *b;
    size_t n;
    struct fl_image img = {0};
    struct fl_img_info info;

    T_REQUIRE(rgb && gray && ga && rgba && g16 && idx && exp);
    for (int i = 0; i < w * h; i++) {
        gray[i] = rgb[3 * i];
        ga[2 * i] = rgb[3 * i];
        ga[2 * i + 1] = rgb[3 * i + 1];
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i % 7 == 0 ? 0 : i % 7 == 1 ? 255 : rgb[3 * i + 2]);
        g16[2 * i] = rgb[3 * i]; /* big-endian v*257: any 16->8 conversion gives v */
        g16[2 * i + 1] = rgb[3 * i];
        idx[i] = (uint8_t)(i % 16);
    }
    plte.n_entries = 16;
    for (int k = 0; k < 16; k++) {
        plte.entries[k].red = (uint8_t)(k * 16);
        plte.entries[k].green = (uint8_t)(255 - k * 9);
        plte.entries[k].blue = (uint8_t)(k * k);
        plte.entries[k].alpha = 255;
    }

    /* RGB8: exact round trip */
    b = png_rgb(rgb, w, h, &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, &info, NULL), FL_OK);
    T_CHECK(img_equals(&img, rgb, w, h));
    T_CHECK(!info.had_alpha);
    fl_image_free(&img);
    fl_free(b);

    /* gray8 and gray16 -> R=G=B */
    for (int i = 0; i < w * h; i++)
        exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] = gray[i];
    b = png_encode(gray, (size_t)w * h, w, h, SPNG_COLOR_TYPE_GRAYSCALE, 8, NULL, NULL, &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, NULL), FL_OK);
    T_CHECK(img_equals(&img, exp, w, h));
    fl_image_free(&img);
    fl_free(b);
    b = png_encode(g16, (size_t)w * h * 2, w, h, SPNG_COLOR_TYPE_GRAYSCALE, 16, NULL, NULL, &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, NULL), FL_OK);
    T_CHECK(img_equals(&img, exp, w, h));
    fl_image_free(&img);
    fl_free(b);

    /* gray + alpha: composited over black */
    for (int i = 0; i < w * h; i++)
        exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] =
            (uint8_t)((ga[2 * i] * ga[2 * i + 1] + 127) / 255);
    b = png_encode(ga, (size_t)w * h * 2, w, h, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, NULL, NULL, &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, &info, NULL), FL_OK);
    T_CHECK(img_equals(&img, exp, w, h));
    T_CHECK(info.had_alpha);
    fl_image_free(&img);
    fl_free(b);

    /* RGBA: composited over black; alpha 0 -> black, 255 -> unchanged */
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            exp[3 * i + c] = (uint8_t)((rgba[4 * i + c] * rgba[4 * i + 3] + 127) / 255);
    b = png_encode(rgba, (size_t)w * h * 4, w, h, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, NULL, NULL,
                   &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, NULL), FL_OK);
    T_CHECK(img_equals(&img, exp, w, h));
    T_CHECK_EQ_INT(fl_image_at(&img, 0, 0)[0], 0); /* i = 0: alpha 0 */
    fl_image_free(&img);
    fl_free(b);

    /* palette */
    for (int i = 0; i < w * h; i++) {
        exp[3 * i] = plte.entries[idx[i]].red;
        exp[3 * i + 1] = plte.entries[idx[i]].green;
        exp[3 * i + 2] = plte.entries[idx[i]].blue;
    }
    b = png_encode(idx, (size_t)w * h, w, h, SPNG_COLOR_TYPE_INDEXED, 8, &plte, NULL, &n);
    T_REQUIRE(b != NULL);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, NULL), FL_OK);
    T_CHECK(img_equals(&img, exp, w, h));
    fl_image_free(&img);
    fl_free(b);

    fl_free(rgb);
    fl_free(gray);
    fl_free(ga);
    fl_free(rgba);
    fl_free(g16);
    fl_free(idx);
    fl_free(exp);
}

static void test_webp(void)
{
    const int w = 101, h = 90;
    uint8_t *rgb = pattern(w, h, 2), *rgba = fl_malloc((size_t)w * h * 4), *enc = NULL;
    size_t n;
    struct fl_image img = {0};
    struct fl_img_info info;
    T_REQUIRE(rgb && rgba);

    n = WebPEncodeLosslessRGB(rgb, w, h, w * 3, &enc);
    T_REQUIRE(n > 0);
    T_CHECK_EQ_INT(fl_img_decode(enc, n, NULL, &img, &info, NULL), FL_OK);
    T_CHECK_EQ_INT(info.format, FL_IMG_FORMAT_WEBP);
    T_CHECK(img_equals(&img, rgb, w, h));
    fl_image_free(&img);
    WebPFree(enc);

    /* lossless RGBA: composited over black, exactly */
    for (int i = 0; i < w * h; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i * 7);
    }
    n = WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &enc);
    T_REQUIRE(n > 0);
    T_CHECK_EQ_INT(fl_img_decode(enc, n, NULL, &img, &info, NULL), FL_OK);
    T_CHECK(info.had_alpha);
    {
        int bad = 0;
        for (int i = 0; i < w * h; i++)
            for (int c = 0; c < 3; c++)
                bad += fl_image_at(&img, i % w, i / w)[c] !=
                       (uint8_t)((rgba[4 * i + c] * rgba[4 * i + 3] + 127) / 255);
        T_CHECK_EQ_INT(bad, 0);
    }
    fl_image_free(&img);
    WebPFree(enc);

    /* lossy: smooth gradient decodes close to the original */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 2);
            p[1] = (uint8_t)(y * 2);
            p[2] = 128;
        }
    n = WebPEncodeRGB(rgb, w, h, w * 3, 95.0f, &enc);
    T_REQUIRE(n > 0);
    T_CHECK_EQ_INT(fl_img_decode(enc, n, NULL, &img, NULL, NULL), FL_OK);
    {
        struct fl_image ref = {w, h, (size_t)w * 3, rgb};
        T_CHECK(img.w == w && img.h == h && mean_abs_diff(&img, &ref) < 2.0);
    }
    fl_image_free(&img);
    WebPFree(enc);
    fl_free(rgb);
    fl_free(rgba);
}

/* Grayscale and CMYK JPEGs (TurboJPEG writes CMYK as Adobe YCCK and returns
 * the stored values on decode; we convert inverted CMYK: R = C*K/255). */
static void test_jpeg_gray_cmyk(void)
{
    const int w = 96, h = 88;
    uint8_t *g = fl_malloc((size_t)w * h), *cmyk = fl_malloc((size_t)w * h * 4), *jb = NULL;
    unsigned long len = 0;
    struct fl_image img = {0};
    tjhandle tj = tjInitCompress();
    int bad = 0;
    T_REQUIRE(g && cmyk && tj);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = cmyk + ((size_t)y * w + x) * 4;
            g[(size_t)y * w + x] = (uint8_t)(x + y);
            p[0] = (uint8_t)(x * 2);
            p[1] = (uint8_t)(y * 2);
            p[2] = 200;
            p[3] = (uint8_t)(255 - x);
        }
    T_REQUIRE(tjCompress2(tj, g, w, w, h, TJPF_GRAY, &jb, &len, TJSAMP_GRAY, 95, 0) == 0);
    T_REQUIRE(fl_img_decode(jb, len, NULL, &img, NULL, NULL) == FL_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = fl_image_at(&img, x, y);
            bad += p[0] != p[1] || p[1] != p[2] || abs(p[0] - g[(size_t)y * w + x]) > 4;
        }
    T_CHECK_EQ_INT(bad, 0);
    fl_image_free(&img);
    tjFree(jb);
    jb = NULL;
    T_REQUIRE(tjCompress2(tj, cmyk, w, w * 4, h, TJPF_CMYK, &jb, &len, TJSAMP_444, 95, 0) == 0);
    T_REQUIRE(fl_img_decode(jb, len, NULL, &img, NULL, NULL) == FL_OK);
    for (int y = 2; y < h - 2; y++)
        for (int x = 2; x < w - 2; x++) {
            const uint8_t *p = fl_image_at(&img, x, y), *q = cmyk + ((size_t)y * w + x) * 4;
            for (int c = 0; c < 3; c++)
                bad += abs(p[c] - q[c] * q[3] / 255) > 6;
        }
    T_CHECK_EQ_INT(bad, 0);
    fl_image_free(&img);
    tjFree(jb);
    tjDestroy(tj);
    fl_free(g);
    fl_free(cmyk);
}

/* Every real JPEG decodes at the size its SOF declares (own parser). */
static void test_jpeg_real_photos(void)
{
    static const char *dirs[] = {"data/detect/group", NULL};
    static const char *group[] = {"1",  "2",  "3",  "5",  "6",  "8",  "9",  "10",
                                  "11", "12", "13", "15", "16", "17", "18", "19",
                                  "20", "21", "23", "24", "25", "26", "27", "libfd-children"};
    static const char *demo[] = {"sample1", "sample2", "sample3", "sample4", "sample5", "sample6"};
    int n_ok = 0;
    (void)dirs;
    for (size_t i = 0; i < FL_ARRAY_LEN(group) + FL_ARRAY_LEN(demo); i++) {
        char rel[256], path[1024];
        const char *p;
        uint8_t *b = NULL;
        size_t n = 0;
        int w = 0, h = 0;
        struct fl_image img = {0};
        struct fl_img_info info;
        struct fl_err err;
        if (i < FL_ARRAY_LEN(group)) {
            snprintf(rel, sizeof(rel), "data/detect/group/%s.jpg", group[i]);
            p = t_shared(rel, path, sizeof(path));
        } else {
            snprintf(rel, sizeof(rel), "face-api/demo/%s.jpg", demo[i - FL_ARRAY_LEN(group)]);
            p = t_model(rel, path, sizeof(path));
        }
        if (!p)
            continue;
        T_REQUIRE(fl_file_read(p, 1 << 24, &b, &n, NULL) == FL_OK);
        T_REQUIRE(jpeg_sof_size(b, n, &w, &h));
        if (fl_img_decode(b, n, NULL, &img, &info, &err) != FL_OK) {
            printf("# %s: %s\n", rel, err.msg);
            T_CHECK(0);
        } else {
            bool swap = info.orientation >= 5;
            T_CHECK_EQ_INT(info.stored_w, w);
            T_CHECK_EQ_INT(info.stored_h, h);
            T_CHECK_EQ_INT(img.w, swap ? h : w);
            T_CHECK_EQ_INT(img.h, swap ? w : h);
            n_ok++;
        }
        fl_image_free(&img);
        fl_free(b);
    }
    if (n_ok == 0)
        T_SKIP("no JPEGs in ../shared/data or models/face-api/demo");
    printf("# decoded %d real JPEGs\n", n_ok);
}

/* libjpeg-turbo vs jpeg-js (the golden group PNGs were decoded from these
 * JPEGs with jpeg-js 0.4.4): different IDCT/upsampling, so close, not equal. */
static void test_jpeg_vs_independent_decoder(void)
{
    static const struct {
        const char *jpg, *png;
    } cases[] = {{"data/detect/group/1.jpg", "golden/src/group2.png"},
                 {"data/detect/group/libfd-children.jpg", "golden/src/group3.png"}};
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        char p1[1024], p2[1024];
        uint8_t *b1 = NULL, *b2 = NULL;
        size_t n1, n2;
        struct fl_image a = {0}, b = {0};
        if (!t_shared(cases[i].jpg, p1, sizeof(p1)) || !t_shared(cases[i].png, p2, sizeof(p2)))
            T_SKIP("../shared absent");
        T_REQUIRE(fl_file_read(p1, 1 << 24, &b1, &n1, NULL) == FL_OK);
        T_REQUIRE(fl_file_read(p2, 1 << 24, &b2, &n2, NULL) == FL_OK);
        T_CHECK_EQ_INT(fl_img_decode(b1, n1, NULL, &a, NULL, NULL), FL_OK);
        T_CHECK_EQ_INT(fl_img_decode(b2, n2, NULL, &b, NULL, NULL), FL_OK);
        if (a.px && b.px && a.w == b.w && a.h == b.h) {
            double d = mean_abs_diff(&a, &b);
            printf("# %s: mean |turbojpeg - jpeg-js| = %.3f\n", cases[i].jpg, d);
            T_CHECK(d < 2.0);
        } else {
            T_CHECK(0);
        }
        fl_image_free(&a);
        fl_image_free(&b);
        fl_free(b1);
        fl_free(b2);
    }
}

/* DCT scaling: the smallest n/8 whose output keeps max side >= max_side
 * (computed here), and pixels close to a full decode + area resize. */
static void test_jpeg_dct_scaling(void)
{
    char path[1024];
    uint8_t *b = NULL;
    size_t n;
    int sides[] = {100, 300, 512, 608, 1000, 1920, 4000};
    if (!t_model("face-api/demo/sample1.jpg", path, sizeof(path)))
        T_SKIP("models/face-api/demo absent");
    T_REQUIRE(fl_file_read(path, 1 << 24, &b, &n, NULL) == FL_OK);
    for (size_t i = 0; i < FL_ARRAY_LEN(sides); i++) {
        struct fl_img_decode_opts o;
        struct fl_image full = {0}, sc = {0}, ref = {0};
        struct fl_img_info info;
        int W = 1920, H = 1280, want_n = 8;
        for (int k = 1; k <= 8; k++)
            if ((W * k + 7) / 8 >= sides[i]) {
                want_n = k;
                break;
            }
        fl_img_decode_opts_default(&o);
        o.max_side = sides[i];
        T_REQUIRE(fl_img_decode(b, n, &o, &sc, &info, NULL) == FL_OK);
        /* reduce both fractions before comparing */
        T_CHECK_EQ_INT(info.scale_num * 8, want_n * info.scale_denom);
        T_CHECK_EQ_INT(sc.w, (W * want_n + 7) / 8);
        T_CHECK_EQ_INT(sc.h, (H * want_n + 7) / 8);
        T_CHECK(FL_MAX(sc.w, sc.h) >= FL_MIN(sides[i], W));
        T_CHECK_EQ_INT(info.stored_w, W);
        if (want_n < 8) {
            T_REQUIRE(fl_img_decode(b, n, NULL, &full, NULL, NULL) == FL_OK);
            T_REQUIRE(fl_img_resize_area(&full, sc.w, sc.h, &ref, NULL) == FL_OK);
            double d = mean_abs_diff(&sc, &ref);
            printf("# max_side %d: scale %d/%d -> %dx%d, mean |dct - area| = %.3f\n", sides[i],
                   info.scale_num, info.scale_denom, sc.w, sc.h, d);
            T_CHECK(d < 2.5);
        }
        fl_image_free(&full);
        fl_image_free(&sc);
        fl_image_free(&ref);
    }
    fl_free(b);
}

/* Where stored row 0 / column 0 appear when displayed, per the EXIF 2.3
 * Orientation table ('T'op, 'B'ottom, 'L'eft, 'R'ight). */
static const char exif_row0[9] = {0, 'T', 'T', 'B', 'B', 'L', 'R', 'R', 'L'};
static const char exif_col0[9] = {0, 'L', 'R', 'R', 'L', 'T', 'T', 'B', 'B'};

/* Stored image: quadrants red (TL), green (TR), blue (BL), white (BR). The
 * stored corner (row r, col c) lands at the displayed corner given by the
 * sides of row 0 / column 0 (or their opposites). */
static void expected_corner(int o, bool last_row, bool last_col, int *dx, int *dy, int dw, int dh)
{
    char rs = exif_row0[o], cs = exif_col0[o];
    /* side the stored row lies on, and the side the stored column lies on */
    char r_side = last_row ? (rs == 'T' ? 'B' : rs == 'B' ? 'T' : rs == 'L' ? 'R' : 'L') : rs;
    char c_side = last_col ? (cs == 'T' ? 'B' : cs == 'B' ? 'T' : cs == 'L' ? 'R' : 'L') : cs;
    *dx = *dy = -1;
    if (r_side == 'L' || r_side == 'R')
        *dx = r_side == 'L' ? 0 : dw - 1;
    else
        *dy = r_side == 'T' ? 0 : dh - 1;
    if (c_side == 'L' || c_side == 'R')
        *dx = c_side == 'L' ? 0 : dw - 1;
    else
        *dy = c_side == 'T' ? 0 : dh - 1;
}

static uint8_t *quadrants(int w, int h)
{
    uint8_t *p = fl_malloc((size_t)w * h * 3);
    static const uint8_t col[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(p + ((size_t)y * w + x) * 3, col[(y >= h / 2) * 2 + (x >= w / 2)], 3);
    return p;
}

static bool near_color(const uint8_t *p, const uint8_t *q)
{
    for (int c = 0; c < 3; c++)
        if (abs((int)p[c] - (int)q[c]) > 40)
            return false;
    return true;
}

static void test_exif_orientation(void)
{
    const int w = 128, h = 96;
    uint8_t *px = quadrants(w, h);
    size_t n_jpg, n;
    uint8_t *jpg = jpeg_rgb(px, w, h, 95, true, &n_jpg);
    T_REQUIRE(jpg != NULL);
    for (int be = 0; be < 2; be++) {
        for (int o = 1; o <= 8; o++) {
            uint8_t app1[128], *file;
            struct fl_image img = {0};
            struct fl_img_info info;
            size_t len = exif_app1(app1, be, o, 3 /* SHORT */, 1, 8);
            bool swap = o >= 5;
            file = jpeg_insert_app1(jpg, n_jpg, app1, len, &n);
            T_REQUIRE(fl_img_decode(file, n, NULL, &img, &info, NULL) == FL_OK);
            T_CHECK_EQ_INT(info.orientation, o);
            T_CHECK_EQ_INT(info.stored_w, w);
            T_CHECK_EQ_INT(img.w, swap ? h : w);
            T_CHECK_EQ_INT(img.h, swap ? w : h);
            for (int corner = 0; corner < 4; corner++) {
                int dx, dy;
                bool lr = corner >= 2, lc = corner & 1;
                const uint8_t *want = px + ((size_t)(lr ? h - 1 : 0) * w + (lc ? w - 1 : 0)) * 3;
                expected_corner(o, lr, lc, &dx, &dy, img.w, img.h);
                T_REQUIRE(dx >= 0 && dy >= 0);
                /* sample 4 px inside the corner (JPEG edges ring a little) */
                dx = dx == 0 ? 4 : dx - 4;
                dy = dy == 0 ? 4 : dy - 4;
                if (!near_color(fl_image_at(&img, dx, dy), want)) {
                    printf("# orientation %d (%s) corner %d wrong\n", o, be ? "MM" : "II", corner);
                    T_CHECK(0);
                }
            }
            /* no_orient keeps the stored layout and still reports the tag */
            {
                struct fl_img_decode_opts op;
                struct fl_image raw = {0};
                fl_img_decode_opts_default(&op);
                op.no_orient = true;
                T_REQUIRE(fl_img_decode(file, n, &op, &raw, &info, NULL) == FL_OK);
                T_CHECK_EQ_INT(info.orientation, o);
                T_CHECK(raw.w == w && raw.h == h);
                fl_image_free(&raw);
            }
            fl_image_free(&img);
            fl_free(file);
        }
    }
    fl_free(jpg);
    fl_free(px);
}

/* Corrupt EXIF never fails the decode and gives orientation 1. */
static void test_exif_corrupt(void)
{
    const int w = 96, h = 96;
    uint8_t *px = quadrants(w, h);
    size_t n_jpg, n;
    uint8_t *jpg = jpeg_rgb(px, w, h, 90, true, &n_jpg);
    uint8_t app1[4096];
    int n_case = 0;
    T_REQUIRE(jpg != NULL);
    for (int k = 0; k < 12; k++) {
        size_t len;
        uint8_t *file;
        struct fl_image img = {0};
        struct fl_img_info info;
        struct fl_err err;
        memset(app1, 0, sizeof(app1));
        switch (k) {
        case 0:
            len = exif_app1(app1, false, 6, 3, 1, 0xfffffff0u);
            break; /* IFD off far out */
        case 1:
            len = exif_app1(app1, true, 6, 3, 1, 7);
            break; /* misaligned IFD */
        case 2:
            len = exif_app1(app1, false, 6, 4 /* LONG */, 1, 8);
            break;
        case 3:
            len = exif_app1(app1, false, 9, 3, 1, 8);
            break; /* out of range */
        case 4:
            len = exif_app1(app1, false, 0, 3, 1, 8);
            break;
        case 5:
            len = exif_app1(app1, false, 6, 3, 0x40000000u, 8);
            break; /* huge count */
        case 6:
            len = exif_app1(app1, false, 6, 3, 1, 8) - 10;
            break; /* truncated TIFF */
        case 7:
            len = 6 + 3;
            memcpy(app1, "Exif\0\0II*", 9);
            break;
        case 8:
            memcpy(app1, "Exif\0\0", 6);
            for (size_t i = 6; i < 3000; i++)
                app1[i] = (uint8_t)(i * 131 + 7);
            len = 3000;
            break;
        case 9:
            len = exif_app1(app1, false, 6, 3, 1, 8);
            app1[6] = 'X'; /* bad byte order mark */
            break;
        case 10:
            len = exif_app1(app1, false, 6, 3, 1, 8);
            app1[14] = 0;
            app1[15] = 0;
            break; /* 0 entries */
        default:
            len = exif_app1(app1, false, 6, 0 /* bad type */, 1, 8);
            break;
        }
        file = jpeg_insert_app1(jpg, n_jpg, app1, len, &n);
        if (fl_img_decode(file, n, NULL, &img, &info, &err) != FL_OK) {
            printf("# case %d: %s\n", k, err.msg);
            T_CHECK(0);
        } else {
            if (info.orientation != 1)
                printf("# case %d: orientation %d\n", k, info.orientation);
            T_CHECK_EQ_INT(info.orientation, 1);
            T_CHECK(img.w == w && img.h == h);
            T_CHECK(near_color(fl_image_at(&img, 4, 4), px));
            n_case++;
        }
        fl_image_free(&img);
        fl_free(file);
    }
    /* APP1 length field pointing past the end of the file */
    {
        uint8_t *file = fl_malloc(n_jpg + 4);
        memcpy(file, jpg, 2);
        memcpy(file + 2, "\xff\xe1\xff\xf0", 4);
        memcpy(file + 6, jpg + 2, n_jpg - 2);
        T_CHECK(decode_status(file, n_jpg + 4) != FL_OK); /* the JPEG itself is broken now */
        T_CHECK_EQ_INT(fl__img_jpeg_exif_orientation(file, n_jpg + 4), 1);
        fl_free(file);
    }
    T_CHECK_EQ_INT(n_case, 12);
    fl_free(jpg);
    fl_free(px);
}

/* Every prefix of a valid file fails with a status (or, for a prefix that
 * only lacks trailing bytes the decoder does not need, succeeds); never a
 * crash. Prefixes shorter than the data must be FL_ERR_IMAGE_FORMAT. */
static void check_truncations(const char *what, const uint8_t *b, size_t n, size_t tail_ok)
{
    int bad = 0, n_ok_tail = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 256 ? 1 : 1 + cut / 64)) {
        enum fl_status rc = decode_status(b, cut);
        enum fl_status want = cut == 0 ? FL_ERR_INVALID_ARG : FL_ERR_IMAGE_FORMAT;
        if (rc == FL_OK && cut + tail_ok >= n) {
            n_ok_tail++;
            continue;
        }
        if (rc != want) {
            if (bad++ < 5)
                printf("# %s cut at %zu/%zu: status %d\n", what, cut, n, (int)rc);
        }
    }
    for (size_t cut = n > 64 ? n - 64 : 0; cut < n; cut++) {
        enum fl_status rc = decode_status(b, cut);
        if (rc == FL_OK && cut + tail_ok >= n)
            continue;
        if (rc != FL_ERR_IMAGE_FORMAT && bad++ < 5)
            printf("# %s cut at %zu/%zu: status %d\n", what, cut, n, (int)rc);
    }
    T_CHECK_EQ_INT(bad, 0);
}

static void test_hostile_truncated(void)
{
    const int w = 120, h = 100;
    uint8_t *px = pattern(w, h, 3), *jpg, *png, *webp = NULL, *webp_lossy = NULL;
    size_t nj, np, nw, nl;
    T_REQUIRE(px != NULL);
    jpg = jpeg_rgb(px, w, h, 80, false, &nj);
    png = png_rgb(px, w, h, &np);
    nw = WebPEncodeLosslessRGB(px, w, h, w * 3, &webp);
    nl = WebPEncodeRGB(px, w, h, w * 3, 80.0f, &webp_lossy);
    T_REQUIRE(jpg && png && nw > 0 && nl > 0);
    T_CHECK_EQ_INT(decode_status(jpg, nj), FL_OK);
    T_CHECK_EQ_INT(decode_status(png, np), FL_OK);
    T_CHECK_EQ_INT(decode_status(webp, nw), FL_OK);
    T_CHECK_EQ_INT(decode_status(webp_lossy, nl), FL_OK);
    check_truncations("jpeg", jpg, nj, 0);
    /* libspng needs neither IEND nor the CRC of the last IDAT once the zlib
     * stream (adler32 checked) is complete: the pixels are all there. */
    check_truncations("png", png, np, 16);
    check_truncations("webp-lossless", webp, nw, 0);
    check_truncations("webp-lossy", webp_lossy, nl, 0);
    /* bit flips in the middle: any status, no crash (ASan build checks) */
    for (size_t i = 0; i < 400; i++) {
        uint8_t *bufs[3] = {jpg, png, webp};
        size_t ns[3] = {nj, np, nw};
        for (int f = 0; f < 3; f++) {
            size_t pos = (i * 7919u) % ns[f];
            uint8_t *c = fl_malloc(ns[f]);
            memcpy(c, bufs[f], ns[f]);
            c[pos] ^= (uint8_t)(1u << (i % 8));
            (void)decode_status(c, ns[f]);
            fl_free(c);
        }
    }
    fl_free(px);
    fl_free(jpg);
    fl_free(png);
    WebPFree(webp);
    WebPFree(webp_lossy);
}

static void test_hostile_small_inputs(void)
{
    static const uint8_t one[1] = {0xff};
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00";
    static const uint8_t bmp[] = "BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00";
    static const uint8_t text[] = "{\"Image\": {\"Bytes\": \"...\"}}";
    struct fl_image img = {0};
    struct fl_err err;
    T_CHECK_EQ_INT(decode_status((const uint8_t *)"", 0), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_img_decode(NULL, 0, NULL, &img, NULL, NULL), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(decode_status(one, 1), FL_ERR_IMAGE_FORMAT);
    T_CHECK_EQ_INT(fl_img_decode(gif, sizeof(gif), NULL, &img, NULL, &err), FL_ERR_IMAGE_FORMAT);
    T_CHECK_EQ_STR(err.msg, "unsupported image format; expected JPEG or PNG (or WebP)");
    T_CHECK_EQ_INT(decode_status(bmp, sizeof(bmp)), FL_ERR_IMAGE_FORMAT);
    T_CHECK_EQ_INT(decode_status(text, sizeof(text)), FL_ERR_IMAGE_FORMAT);
    T_CHECK(img.px == NULL); /* outputs untouched on failure */
}

/* Build a PNG from an IHDR (w,h) with a valid CRC and one tiny IDAT. */
static uint8_t *png_with_ihdr(uint32_t w, uint32_t h, size_t *n)
{
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    uint8_t *b = fl_calloc(8 + 25 + 12 + sizeof(idat) + 12, 1);
    size_t o = 0;
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    o = 8;
    put_be32(b + o, 13);
    memcpy(b + o + 4, "IHDR", 4);
    put_be32(b + o + 8, w);
    put_be32(b + o + 12, h);
    b[o + 16] = 8;
    b[o + 17] = 2;
    put_be32(b + o + 21, crc32_ref(b + o + 4, 17));
    o += 25;
    put_be32(b + o, sizeof(idat));
    memcpy(b + o + 4, "IDAT", 4);
    memcpy(b + o + 8, idat, sizeof(idat));
    put_be32(b + o + 8 + sizeof(idat), crc32_ref(b + o + 4, 4 + sizeof(idat)));
    o += 12 + sizeof(idat);
    put_be32(b + o, 0);
    memcpy(b + o + 4, "IEND", 4);
    put_be32(b + o + 8, crc32_ref(b + o + 4, 4));
    o += 12;
    *n = o;
    return b;
}

static void test_limits(void)
{
    size_t n;
    uint8_t *b;
    struct fl_err err;
    struct fl_image img = {0};
    struct fl_img_info info;
    long live0 = fl_alloc_live();

    /* PNG bombs: refused from the header, before any pixel allocation */
    b = png_with_ihdr(100000, 100000, &n);
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, &err), FL_ERR_IMAGE_TOO_LARGE);
    printf("# %s\n", err.msg);
    T_CHECK_EQ_INT(fl_img_probe(b, n, NULL, &info, NULL), FL_ERR_IMAGE_TOO_LARGE);
    fl_free(b);
    b = png_with_ihdr(40001, 1000, &n); /* 40.001 MP */
    T_CHECK_EQ_INT(fl_img_decode(b, n, NULL, &img, NULL, &err), FL_ERR_IMAGE_TOO_LARGE);
    printf("# %s\n", err.msg);
    fl_free(b);
    b = png_with_ihdr(0x7fffffff, 0x7fffffff, &n);
    T_CHECK_EQ_INT(decode_status(b, n), FL_ERR_IMAGE_TOO_LARGE);
    fl_free(b);
    b = png_with_ihdr(0, 0, &n);
    T_CHECK_EQ_INT(decode_status(b, n), FL_ERR_IMAGE_FORMAT);
    fl_free(b);
    b = png_with_ihdr(0x80000000u, 10, &n); /* over the PNG spec's 2^31-1 */
    T_CHECK(decode_status(b, n) != FL_OK);
    fl_free(b);
    /* 1 x 1 passes the header but fails min_side; probe succeeds */
    b = png_with_ihdr(1, 1, &n);
    T_CHECK_EQ_INT(decode_status(b, n), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_img_probe(b, n, NULL, &info, NULL), FL_OK);
    T_CHECK(info.stored_w == 1 && info.stored_h == 1);
    fl_free(b);

    /* min side: 79x80 and 80x79 refused, 80x80 accepted */
    {
        int sizes[3][2] = {{79, 80}, {80, 79}, {80, 80}};
        for (int i = 0; i < 3; i++) {
            uint8_t *px = pattern(sizes[i][0], sizes[i][1], 9);
            uint8_t *p = png_rgb(px, sizes[i][0], sizes[i][1], &n);
            enum fl_status rc = fl_img_decode(p, n, NULL, &img, NULL, &err);
            T_CHECK_EQ_INT(rc, i < 2 ? FL_ERR_INVALID_ARG : FL_OK);
            if (i == 0)
                printf("# %s\n", err.msg);
            fl_image_free(&img);
            fl_free(px);
            fl_free(p);
        }
    }

    /* JPEG declaring 65000x65000 (SOF patched) and 0 height */
    {
        uint8_t *px = pattern(96, 96, 4);
        uint8_t *j = jpeg_rgb(px, 96, 96, 80, true, &n);
        size_t i = 2;
        T_REQUIRE(j != NULL);
        while (i + 9 < n && !(j[i] == 0xff && j[i + 1] == 0xc0))
            i++;
        T_REQUIRE(i + 9 < n);
        j[i + 5] = 0xfd; /* height hi/lo */
        j[i + 6] = 0xe8;
        j[i + 7] = 0xfd; /* width */
        j[i + 8] = 0xe8;
        T_CHECK_EQ_INT(fl_img_decode(j, n, NULL, &img, NULL, &err), FL_ERR_IMAGE_TOO_LARGE);
        j[i + 5] = 0;
        j[i + 6] = 0;
        T_CHECK_EQ_INT(decode_status(j, n), FL_ERR_IMAGE_FORMAT);
        fl_free(j);
        fl_free(px);
    }

    /* WebP lossless declaring 16384x16384 (VP8L header patched) */
    {
        uint8_t *px = pattern(96, 96, 5), *wb = NULL, *c;
        size_t nw = WebPEncodeLosslessRGB(px, 96, 96, 96 * 3, &wb);
        T_REQUIRE(nw > 25 && memcmp(wb + 12, "VP8L", 4) == 0 && wb[20] == 0x2f);
        c = fl_malloc(nw);
        memcpy(c, wb, nw);
        /* 14 bits (w-1), 14 bits (h-1), little-endian bit order */
        {
            uint32_t bits = (uint32_t)c[21] | (uint32_t)c[22] << 8 | (uint32_t)c[23] << 16 |
                            (uint32_t)c[24] << 24;
            bits = (bits & ~0x0fffffffu) | 0x3fffu | (0x3fffu << 14);
            c[21] = (uint8_t)bits;
            c[22] = (uint8_t)(bits >> 8);
            c[23] = (uint8_t)(bits >> 16);
            c[24] = (uint8_t)(bits >> 24);
        }
        T_CHECK_EQ_INT(fl_img_decode(c, nw, NULL, &img, NULL, &err), FL_ERR_IMAGE_TOO_LARGE);
        fl_free(c);
        WebPFree(wb);
        fl_free(px);
    }

    /* over 5 MiB: refused before sniffing; exactly 5 MiB is not refused for size */
    {
        size_t big = FL_IMG_DEFAULT_MAX_BYTES + 1;
        uint8_t *p = fl_calloc(big, 1);
        memcpy(p, "\x89PNG\r\n\x1a\n", 8);
        T_CHECK_EQ_INT(fl_img_decode(p, big, NULL, &img, NULL, &err), FL_ERR_IMAGE_TOO_LARGE);
        printf("# %s\n", err.msg);
        T_CHECK_EQ_INT(decode_status(p, big - 1), FL_ERR_IMAGE_FORMAT);
        fl_free(p);
    }
    /* custom limits */
    {
        struct fl_img_decode_opts o;
        uint8_t *px = pattern(200, 100, 6), *p = png_rgb(px, 200, 100, &n);
        fl_img_decode_opts_default(&o);
        o.max_pixels = 19999;
        T_CHECK_EQ_INT(fl_img_decode(p, n, &o, &img, NULL, NULL), FL_ERR_IMAGE_TOO_LARGE);
        o.max_pixels = 20000;
        o.max_bytes = n - 1;
        T_CHECK_EQ_INT(fl_img_decode(p, n, &o, &img, NULL, NULL), FL_ERR_IMAGE_TOO_LARGE);
        o.max_bytes = n;
        o.min_side = 101;
        T_CHECK_EQ_INT(fl_img_decode(p, n, &o, &img, NULL, NULL), FL_ERR_INVALID_ARG);
        o.min_side = 0;
        T_CHECK_EQ_INT(fl_img_decode(p, n, &o, &img, NULL, NULL), FL_OK);
        fl_image_free(&img);
        fl_free(px);
        fl_free(p);
    }
    T_CHECK_EQ_INT(fl_alloc_live(), live0);
}

/* Allocation failures anywhere in the decoders give FL_ERR_NOMEM (or, when
 * a library absorbs the failure, another error status), never a leak or a
 * crash; the EXIF path degrades to orientation 1. */
static void test_alloc_failures(void)
{
    const int w = 90, h = 90;
    uint8_t *px = pattern(w, h, 7), *png, *jpg, *file, app1[128], *wb = NULL;
    size_t np, nj, n, nw;
    long live0;
    png = png_rgb(px, w, h, &np);
    jpg = jpeg_rgb(px, w, h, 85, true, &nj);
    file = jpeg_insert_app1(jpg, nj, app1, exif_app1(app1, false, 6, 3, 1, 8), &n);
    nw = WebPEncodeLosslessRGB(px, w, h, w * 3, &wb);
    T_REQUIRE(png && jpg && file && nw > 0);
    live0 = fl_alloc_live();
    for (int f = 0; f < 3; f++) {
        const uint8_t *b = f == 0 ? png : f == 1 ? file : wb;
        size_t bn = f == 0 ? np : f == 1 ? n : nw;
        int n_nomem = 0;
        for (long k = 1; k < 200; k++) {
            struct fl_image img = {0};
            struct fl_img_info info;
            enum fl_status rc;
            long injected;
            fl_test_fail_alloc_at(k);
            rc = fl_img_decode(b, bn, NULL, &img, &info, NULL);
            injected = fl_test_injected();
            fl_test_fail_alloc_at(0);
            if (rc == FL_OK) {
                T_CHECK(img.w >= 90 && img.h >= 90);
                fl_image_free(&img);
                if (injected == 0)
                    break; /* k is past the last allocation */
            } else {
                T_CHECK(rc == FL_ERR_NOMEM || rc == FL_ERR_IMAGE_FORMAT);
                n_nomem += rc == FL_ERR_NOMEM;
            }
            T_CHECK_EQ_INT(fl_alloc_live(), live0);
        }
        T_CHECK(n_nomem > 0);
    }
    fl_free(px);
    fl_free(png);
    fl_free(jpg);
    fl_free(file);
    WebPFree(wb);
}

/* Fastest of reps decodes, in ms (the minimum is the robust statistic on a
 * shared machine); -1 on a decode failure. */
static double ms_per_decode(const uint8_t *b, size_t n, const struct fl_img_decode_opts *o,
                            int reps)
{
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        struct fl_image img = {0};
        uint64_t t0 = fl_time_mono_ns();
        if (fl_img_decode(b, n, o, &img, NULL, NULL) != FL_OK)
            return -1.0;
        double ms = (double)(fl_time_mono_ns() - t0) / 1e6;
        best = ms < best ? ms : best;
        fl_image_free(&img);
    }
    return best;
}

/* Not a pass/fail check: prints decode cost (one core) for the report. */
static void test_decode_speed(void)
{
    static const char *files[] = {"data/detect/group/12.jpg", "data/detect/group/9.jpg",
                                  "data/detect/group/17.jpg"};
    for (size_t i = 0; i < FL_ARRAY_LEN(files); i++) {
        char path[1024];
        uint8_t *b = NULL;
        size_t n;
        struct fl_img_decode_opts o;
        int w = 0, h = 0;
        bool progressive = false;
        if (!t_shared(files[i], path, sizeof(path)))
            T_SKIP("../shared/data absent");
        T_REQUIRE(fl_file_read(path, 1 << 24, &b, &n, NULL) == FL_OK);
        T_REQUIRE(jpeg_sof_size(b, n, &w, &h));
        for (size_t k = 0; k + 1 < n; k++)
            if (b[k] == 0xff && (b[k + 1] == 0xc0 || b[k + 1] == 0xc1 || b[k + 1] == 0xc2)) {
                progressive = b[k + 1] == 0xc2;
                break;
            }
        fl_img_decode_opts_default(&o);
        double full = ms_per_decode(b, n, &o, 15);
        o.max_side = 512;
        double s512 = ms_per_decode(b, n, &o, 15);
        o.max_side = 256;
        double s256 = ms_per_decode(b, n, &o, 15);
        printf("# speed %s (%dx%d, %.2f MP, %s): min of 15: full %.2f ms, max_side 512 %.2f "
               "ms, max_side 256 %.2f ms\n",
               files[i], w, h, w * h / 1e6, progressive ? "progressive" : "baseline", full, s512,
               s256);
        T_CHECK(full > 0 && s512 > 0 && s256 > 0);
        if (i == 0) {
            /* per-request geometry on the decoded photo: best of 5 */
            struct fl_image img = {0}, r = {0};
            struct fl_image_f32 f = {0};
            double t_area = 1e30, t_bil = 1e30, t_tf = 1e30;
            T_REQUIRE(fl_img_decode(b, n, NULL, &img, NULL, NULL) == FL_OK);
            for (int k = 0; k < 5; k++) {
                uint64_t t0 = fl_time_mono_ns();
                T_REQUIRE(fl_img_resize_area(&img, 512, 384, &r, NULL) == FL_OK);
                uint64_t t1 = fl_time_mono_ns();
                fl_image_free(&r);
                T_REQUIRE(fl_img_resize_bilinear(&img, 512, 384, &r, NULL) == FL_OK);
                uint64_t t2 = fl_time_mono_ns();
                fl_image_free(&r);
                T_REQUIRE(fl_img_resize_tf_f32(&img, 512, 384, &f, NULL) == FL_OK);
                uint64_t t3 = fl_time_mono_ns();
                fl_image_f32_free(&f);
                t_area = FL_MIN(t_area, (t1 - t0) / 1e6);
                t_bil = FL_MIN(t_bil, (t2 - t1) / 1e6);
                t_tf = FL_MIN(t_tf, (t3 - t2) / 1e6);
            }
            printf("# speed %dx%d -> 512x384: area %.2f ms, bilinear %.2f ms, tf_f32 %.2f ms\n",
                   img.w, img.h, t_area, t_bil, t_tf);
            fl_image_free(&img);
        }
        fl_free(b);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_sniff);
    T_RUN(test_png_golden_sha256);
    T_RUN(test_png_color_types);
    T_RUN(test_webp);
    T_RUN(test_jpeg_gray_cmyk);
    T_RUN(test_jpeg_real_photos);
    T_RUN(test_jpeg_vs_independent_decoder);
    T_RUN(test_jpeg_dct_scaling);
    T_RUN(test_exif_orientation);
    T_RUN(test_exif_corrupt);
    T_RUN(test_hostile_truncated);
    T_RUN(test_hostile_small_inputs);
    T_RUN(test_limits);
    T_RUN(test_alloc_failures);
    T_RUN(test_decode_speed);
    return t_done();
}
