/* test_img_geom.c: the image layer's geometry: bilinear/area/TF-legacy
 * resize against scalar references and known vectors, crop and pad, orient,
 * affine warp, and the golden face chips (MobileFaceNet aligned warps and
 * face-api recognition chips) reproduced from the golden source PNGs. */
#include "t.h"
#include "img/img.h"

T_MAIN_STATE;

/* ============================== Helpers ============================== */

static void random_image(struct fl_image *img, int w, int h, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 7u;
    if (fl_image_alloc(w, h, img, NULL) != FL_OK)
        return;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++) {
            s = s * 1664525u + 1013904223u;
            fl_image_at(img, 0, y)[x] = (uint8_t)(s >> 24);
        }
}

static int ref_round(double v)
{
    double r = floor(v + 0.5);
    return r < 0 ? 0 : r > 255 ? 255 : (int)r;
}

static uint8_t *read_shared(const char *rel, size_t *n)
{
    char path[1024];
    uint8_t *b = NULL;
    if (!t_shared(rel, path, sizeof(path)))
        return NULL;
    if (fl_file_read(path, 1 << 26, &b, n, NULL) != FL_OK)
        return NULL;
    return b;
}

static bool decode_shared_png(const char *rel, struct fl_image *img)
{
    size_t n;
    uint8_t *b = read_shared(rel, &n);
    struct fl_img_decode_opts o;
    enum fl_status rc;
    if (!b)
        return false;
    fl_img_decode_opts_default(&o);
    o.min_side = 0;
    rc = fl_img_decode(b, n, &o, img, NULL, NULL);
    fl_free(b);
    return rc == FL_OK;
}

/* max |a-b| over all samples and the count of differing samples */
static int max_diff(const struct fl_image *a, const struct fl_image *b, long *n_diff)
{
    int m = 0;
    *n_diff = 0;
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w * 3; x++) {
            int d = abs((int)fl_image_at(a, 0, y)[x] - (int)fl_image_at(b, 0, y)[x]);
            m = d > m ? d : m;
            *n_diff += d != 0;
        }
    return m;
}

/* Calls fn(row) for each JSON line of a golden file; returns rows seen. */
static int for_each_jsonl(const char *rel, void (*fn)(json_t *row, void *ctx), void *ctx)
{
    size_t n;
    uint8_t *b = read_shared(rel, &n);
    int rows = 0;
    size_t start = 0;
    if (!b)
        return -1;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || b[i] == '\n') {
            if (i > start) {
                json_error_t je;
                json_t *row = json_loadb((const char *)b + start, i - start, 0, &je);
                if (row) {
                    fn(row, ctx);
                    json_decref(row);
                    rows++;
                }
            }
            start = i + 1;
        }
    }
    fl_free(b);
    return rows;
}

/* ============================= Resize tests ============================= */

static void test_bilinear_known(void)
{
    struct fl_image src = {0}, out = {0};
    T_REQUIRE(fl_image_alloc(2, 1, &src, NULL) == FL_OK);
    fl_image_at(&src, 1, 0)[0] = 255;
    T_REQUIRE(fl_img_resize_bilinear(&src, 4, 1, &out, NULL) == FL_OK);
    /* OpenCV INTER_LINEAR gives 0, 64, 191, 255 for this row */
    T_CHECK_EQ_INT(fl_image_at(&out, 0, 0)[0], 0);
    T_CHECK_EQ_INT(fl_image_at(&out, 1, 0)[0], 64);
    T_CHECK_EQ_INT(fl_image_at(&out, 2, 0)[0], 191);
    T_CHECK_EQ_INT(fl_image_at(&out, 3, 0)[0], 255);
    fl_image_free(&out);
    fl_image_free(&src);
}

/* Scalar double reference of half-pixel bilinear, written from the formula. */
static double ref_bilinear(const struct fl_image *s, double fx, double fy, int c)
{
    int x0, y0, x1, y1;
    double ax, ay;
    fx = fx < 0 ? 0 : fx;
    fy = fy < 0 ? 0 : fy;
    x0 = (int)fx;
    y0 = (int)fy;
    if (x0 >= s->w - 1) {
        x0 = s->w - 1;
        fx = x0;
    }
    if (y0 >= s->h - 1) {
        y0 = s->h - 1;
        fy = y0;
    }
    x1 = x0 + 1 < s->w ? x0 + 1 : x0;
    y1 = y0 + 1 < s->h ? y0 + 1 : y0;
    ax = fx - x0;
    ay = fy - y0;
    return (1 - ay) * ((1 - ax) * fl_image_at(s, x0, y0)[c] + ax * fl_image_at(s, x1, y0)[c]) +
           ay * ((1 - ax) * fl_image_at(s, x0, y1)[c] + ax * fl_image_at(s, x1, y1)[c]);
}

static void test_bilinear_vs_reference(void)
{
    static const int sizes[][4] = {{37, 29, 53, 17}, {37, 29, 11, 41}, {64, 64, 40, 40},
                                   {5, 3, 5, 3},     {1, 1, 7, 9},     {100, 80, 64, 51}};
    for (size_t k = 0; k < FL_ARRAY_LEN(sizes); k++) {
        struct fl_image s = {0}, o = {0};
        int W = sizes[k][0], H = sizes[k][1], w = sizes[k][2], h = sizes[k][3], bad = 0;
        random_image(&s, W, H, (uint32_t)k);
        T_REQUIRE(s.px && fl_img_resize_bilinear(&s, w, h, &o, NULL) == FL_OK);
        T_REQUIRE(o.w == w && o.h == h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    double fx = (x + 0.5) * W / w - 0.5, fy = (y + 0.5) * H / h - 0.5;
                    int r = ref_round(ref_bilinear(&s, fx, fy, c));
                    bad += abs(r - fl_image_at(&o, x, y)[c]) > 1;
                }
        T_CHECK_EQ_INT(bad, 0);
        fl_image_free(&s);
        fl_image_free(&o);
    }
}

/* Double reference of the area filter: integrate the source over each
 * output footprint. */
static double ref_area(const struct fl_image *s, int w, int h, int x, int y, int c)
{
    double sx = (double)s->w / w, sy = (double)s->h / h, acc = 0, wsum = 0;
    for (int j = 0; j < s->h; j++) {
        double oy = fmin(j + 1.0, (y + 1) * sy) - fmax((double)j, y * sy);
        if (oy <= 0)
            continue;
        for (int i = 0; i < s->w; i++) {
            double ox = fmin(i + 1.0, (x + 1) * sx) - fmax((double)i, x * sx);
            if (ox <= 0)
                continue;
            acc += ox * oy * fl_image_at(s, i, j)[c];
            wsum += ox * oy;
        }
    }
    return acc / wsum;
}

static void test_area_vs_reference(void)
{
    static const int sizes[][4] = {
        {40, 30, 20, 15}, {97, 61, 29, 18}, {50, 50, 7, 7}, {33, 20, 33, 20}, {300, 200, 31, 23}};
    for (size_t k = 0; k < FL_ARRAY_LEN(sizes); k++) {
        struct fl_image s = {0}, o = {0};
        int W = sizes[k][0], H = sizes[k][1], w = sizes[k][2], h = sizes[k][3], bad = 0;
        random_image(&s, W, H, 100 + (uint32_t)k);
        T_REQUIRE(s.px && fl_img_resize_area(&s, w, h, &o, NULL) == FL_OK);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    bad +=
                        abs(ref_round(ref_area(&s, w, h, x, y, c)) - fl_image_at(&o, x, y)[c]) > 1;
        T_CHECK_EQ_INT(bad, 0);
        /* integer factor 2: the exact 2x2 mean, rounded half up (+-1 for float) */
        fl_image_free(&s);
        fl_image_free(&o);
    }
    {
        struct fl_image s = {0}, o = {0};
        random_image(&s, 8, 6, 5);
        T_REQUIRE(s.px && fl_img_resize_area(&s, 4, 3, &o, NULL) == FL_OK);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                for (int c = 0; c < 3; c++) {
                    int sum = fl_image_at(&s, 2 * x, 2 * y)[c] +
                              fl_image_at(&s, 2 * x + 1, 2 * y)[c] +
                              fl_image_at(&s, 2 * x, 2 * y + 1)[c] +
                              fl_image_at(&s, 2 * x + 1, 2 * y + 1)[c];
                    int want = (sum + 2) / 4, got = fl_image_at(&o, x, y)[c];
                    T_CHECK(abs(want - got) <= (sum % 4 == 2 ? 1 : 0));
                }
        fl_image_free(&s);
        fl_image_free(&o);
    }
}

static void test_tf_resize_known(void)
{
    struct fl_image src = {0};
    struct fl_image_f32 out = {0};
    T_REQUIRE(fl_image_alloc(2, 1, &src, NULL) == FL_OK);
    fl_image_at(&src, 1, 0)[0] = 255;
    T_REQUIRE(fl_img_resize_tf_f32(&src, 4, 1, &out, NULL) == FL_OK);
    /* tf legacy: src x = 0, 0.5, 1.0, 1.5 (right neighbour clamped) */
    T_CHECK_NEAR(out.px[0], 0.0, 0);
    T_CHECK_NEAR(out.px[3], 127.5, 1e-5);
    T_CHECK_NEAR(out.px[6], 255.0, 0);
    T_CHECK_NEAR(out.px[9], 255.0, 0);
    fl_image_f32_free(&out);
    /* 3 -> 2: x = 0, 1.5 */
    fl_image_free(&src);
    T_REQUIRE(fl_image_alloc(3, 1, &src, NULL) == FL_OK);
    fl_image_at(&src, 1, 0)[1] = 100;
    fl_image_at(&src, 2, 0)[1] = 200;
    T_REQUIRE(fl_img_resize_tf_f32(&src, 2, 1, &out, NULL) == FL_OK);
    T_CHECK_NEAR(out.px[1], 0.0, 0);
    T_CHECK_NEAR(out.px[4], 150.0, 1e-5);
    fl_image_f32_free(&out);
    fl_image_free(&src);
}

static void test_tf_resize_vs_reference(void)
{
    struct fl_image s = {0};
    struct fl_image_f32 o = {0};
    double maxd = 0;
    random_image(&s, 71, 53, 9);
    T_REQUIRE(s.px && fl_img_resize_tf_f32(&s, 150, 112, &o, NULL) == FL_OK);
    for (int y = 0; y < o.h; y++)
        for (int x = 0; x < o.w; x++)
            for (int c = 0; c < 3; c++) {
                double iy = y * (53.0 / 112.0), ix = x * (71.0 / 150.0);
                int y0 = (int)floor(iy), x0 = (int)floor(ix);
                int y1 = y0 + 1 < 53 ? y0 + 1 : 52, x1 = x0 + 1 < 71 ? x0 + 1 : 70;
                double fy = iy - y0, fx = ix - x0;
                double tl = fl_image_at(&s, x0, y0)[c], tr = fl_image_at(&s, x1, y0)[c];
                double bl = fl_image_at(&s, x0, y1)[c], br = fl_image_at(&s, x1, y1)[c];
                double top = tl + (tr - tl) * fx, bot = bl + (br - bl) * fx;
                double want = top + (bot - top) * fy;
                double d = fabs(want - o.px[((size_t)y * o.w + x) * 3 + c]);
                maxd = d > maxd ? d : maxd;
            }
    printf("# tf resize max |f32 - f64 reference| = %.3g\n", maxd);
    T_CHECK(maxd < 1e-3);
    fl_image_free(&s);
    fl_image_f32_free(&o);
}

static void test_f32_to_u8_rounding(void)
{
    struct fl_image_f32 f = {0};
    struct fl_image u = {0};
    float vals[6] = {0.5f, 1.49999f, 254.5f, 300.0f, -3.0f, NAN};
    int want[6] = {1, 1, 255, 255, 0, 0};
    T_REQUIRE(fl_image_f32_alloc(2, 1, &f, NULL) == FL_OK);
    memcpy(f.px, vals, sizeof(vals));
    T_REQUIRE(fl_image_f32_to_u8(&f, &u, NULL) == FL_OK);
    for (int i = 0; i < 6; i++)
        T_CHECK_EQ_INT(u.px[i], want[i]);
    fl_image_free(&u);
    fl_image_f32_free(&f);
}

static void test_resize_bad_args(void)
{
    struct fl_image s = {0}, o = {0};
    struct fl_image_f32 of = {0};
    random_image(&s, 4, 4, 1);
    T_CHECK_EQ_INT(fl_img_resize_bilinear(&s, 0, 4, &o, NULL), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_img_resize_area(&s, 4, -1, &o, NULL), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_img_resize_tf_f32(&s, 0, 0, &of, NULL), FL_ERR_INVALID_ARG);
    /* byte size overflows size_t: refused before any allocation */
    T_CHECK_EQ_INT(fl_image_f32_alloc(INT32_MAX, INT32_MAX, &of, NULL), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_image_alloc(0, 5, &o, NULL), FL_ERR_INVALID_ARG);
    T_CHECK(o.px == NULL && of.px == NULL);
    fl_image_free(&s);
}

/* ========================== Crop / pad / orient ========================== */

static void test_crop_square(void)
{
    struct fl_image s = {0}, o = {0};
    random_image(&s, 20, 20, 3);
    T_REQUIRE(s.px != NULL);
    /* w=5, h=8: d=3, round(3/2)=2 columns after, 1 before */
    T_REQUIRE(fl_img_crop_square(&s, 2, 3, 5, 8, true, &o, NULL) == FL_OK);
    T_REQUIRE(o.w == 8 && o.h == 8);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            const uint8_t *p = fl_image_at(&o, x, y);
            if (x < 1 || x >= 6)
                T_CHECK(p[0] == 0 && p[1] == 0 && p[2] == 0);
            else
                T_CHECK(memcmp(p, fl_image_at(&s, 2 + x - 1, 3 + y), 3) == 0);
        }
    fl_image_free(&o);
    /* w=9, h=5: d=4, 2 rows after, 2 before */
    T_REQUIRE(fl_img_crop_square(&s, 0, 0, 9, 5, true, &o, NULL) == FL_OK);
    T_REQUIRE(o.w == 9 && o.h == 9);
    T_CHECK(fl_image_at(&o, 0, 1)[0] == 0 && fl_image_at(&o, 0, 7)[0] == 0);
    T_CHECK(memcmp(fl_image_at(&o, 4, 2), fl_image_at(&s, 4, 0), 3) == 0);
    T_CHECK(memcmp(fl_image_at(&o, 8, 6), fl_image_at(&s, 8, 4), 3) == 0);
    fl_image_free(&o);
    /* bottom/right pad */
    T_REQUIRE(fl_img_crop_square(&s, 4, 4, 6, 3, false, &o, NULL) == FL_OK);
    T_REQUIRE(o.w == 6 && o.h == 6);
    T_CHECK(memcmp(fl_image_at(&o, 0, 0), fl_image_at(&s, 4, 4), 3) == 0);
    T_CHECK(memcmp(fl_image_at(&o, 5, 2), fl_image_at(&s, 9, 6), 3) == 0);
    T_CHECK(fl_image_at(&o, 5, 3)[0] == 0 && fl_image_at(&o, 0, 5)[2] == 0);
    fl_image_free(&o);
    /* crop reaching outside the image: outside pixels are 0 */
    T_REQUIRE(fl_img_crop_pad(&s, -3, 18, 6, 6, 6, 6, 0, 0, &o, NULL) == FL_OK);
    T_CHECK(fl_image_at(&o, 2, 0)[0] == 0);
    T_CHECK(memcmp(fl_image_at(&o, 3, 0), fl_image_at(&s, 0, 18), 3) == 0);
    T_CHECK(memcmp(fl_image_at(&o, 5, 1), fl_image_at(&s, 2, 19), 3) == 0);
    T_CHECK(fl_image_at(&o, 5, 2)[1] == 0);
    fl_image_free(&o);
    /* completely outside and absurd offsets: all zero, no crash */
    T_REQUIRE(fl_img_crop_pad(&s, 1000000, -2000000000, 50, 50, 4, 4, -2000000000, 2000000000, &o,
                              NULL) == FL_OK);
    T_CHECK(fl_image_at(&o, 3, 3)[0] == 0);
    fl_image_free(&o);
    T_CHECK_EQ_INT(fl_img_crop_square(&s, 0, 0, 0, 5, true, &o, NULL), FL_ERR_INVALID_ARG);
    fl_image_free(&s);
}

static bool same_image(const struct fl_image *a, const struct fl_image *b)
{
    long nd;
    return a->w == b->w && a->h == b->h && max_diff(a, b, &nd) == 0;
}

static void test_orient_group(void)
{
    /* Inverse pairs of the dihedral group: 6 and 8 undo each other; 2,3,4,5,7
     * are involutions. */
    static const int inv[9] = {0, 1, 2, 3, 4, 5, 8, 7, 6};
    struct fl_image s = {0};
    random_image(&s, 7, 4, 11);
    T_REQUIRE(s.px != NULL);
    for (int o = 1; o <= 8; o++) {
        struct fl_image a = {0}, b = {0};
        T_REQUIRE(fl_img_orient(&s, o, &a, NULL) == FL_OK);
        T_CHECK_EQ_INT(a.w, o >= 5 ? 4 : 7);
        T_REQUIRE(fl_img_orient(&a, inv[o], &b, NULL) == FL_OK);
        T_CHECK(same_image(&b, &s));
        fl_image_free(&a);
        fl_image_free(&b);
    }
    {
        /* 6 = rotate 90 clockwise: the stored bottom-left goes to the top-left */
        struct fl_image a = {0};
        T_REQUIRE(fl_img_orient(&s, 6, &a, NULL) == FL_OK);
        T_CHECK(memcmp(fl_image_at(&a, 0, 0), fl_image_at(&s, 0, 3), 3) == 0);
        T_CHECK(memcmp(fl_image_at(&a, 3, 0), fl_image_at(&s, 0, 0), 3) == 0);
        fl_image_free(&a);
    }
    fl_image_free(&s);
}

/* =============================== Warp ================================ */

static void test_warp_basic(void)
{
    struct fl_image s = {0}, o = {0};
    double id[2][3] = {{1, 0, 0}, {0, 1, 0}};
    double shift[2][3] = {{1, 0, 2}, {0, 1, -1}};
    double half[2][3] = {{1, 0, 0.5}, {0, 1, 0}};
    double sing[2][3] = {{1, 2, 0}, {2, 4, 0}};
    long nd;
    random_image(&s, 13, 9, 4);
    T_REQUIRE(s.px != NULL);
    T_REQUIRE(fl_img_warp_affine(&s, id, 13, 9, &o, NULL) == FL_OK);
    T_CHECK_EQ_INT(max_diff(&s, &o, &nd), 0);
    fl_image_free(&o);
    /* dst(x,y) = src(x-2, y+1); zero where that is outside */
    T_REQUIRE(fl_img_warp_affine(&s, shift, 13, 9, &o, NULL) == FL_OK);
    T_CHECK(memcmp(fl_image_at(&o, 2, 0), fl_image_at(&s, 0, 1), 3) == 0);
    T_CHECK(memcmp(fl_image_at(&o, 12, 7), fl_image_at(&s, 10, 8), 3) == 0);
    T_CHECK(fl_image_at(&o, 1, 3)[0] == 0 && fl_image_at(&o, 5, 8)[2] == 0);
    fl_image_free(&o);
    /* half-pixel shift: mean of horizontal neighbours, round half up; at x=0
     * the left neighbour is outside (0) */
    T_REQUIRE(fl_img_warp_affine(&s, half, 13, 9, &o, NULL) == FL_OK);
    for (int x = 1; x < 13; x++) {
        int a = fl_image_at(&s, x - 1, 4)[1], b = fl_image_at(&s, x, 4)[1];
        T_CHECK_EQ_INT(fl_image_at(&o, x, 4)[1], (a + b + 1) / 2);
    }
    T_CHECK_EQ_INT(fl_image_at(&o, 0, 4)[1], (fl_image_at(&s, 0, 4)[1] + 1) / 2);
    fl_image_free(&o);
    T_CHECK_EQ_INT(fl_img_warp_affine(&s, sing, 4, 4, &o, NULL), FL_ERR_INVALID_ARG);
    fl_image_free(&s);
}

static void test_warp_prefilter(void)
{
    struct fl_image s = {0}, a = {0}, b = {0};
    double m_big[2][3] = {{0.8, -0.1, 3}, {0.1, 0.8, 2}};
    double m_small[2][3] = {{0.25, 0, 0}, {0, 0.25, 0}};
    long nd;
    int plain_extreme = 0, pre_far = 0;
    T_REQUIRE(fl_image_alloc(256, 256, &s, NULL) == FL_OK);
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++)
            memset(fl_image_at(&s, x, y), ((x + y) & 1) ? 255 : 0, 3);
    /* scale >= 0.5: identical to the plain warp */
    T_REQUIRE(fl_img_warp_affine(&s, m_big, 64, 64, &a, NULL) == FL_OK);
    T_REQUIRE(fl_img_warp_affine_prefilter(&s, m_big, 64, 64, &b, NULL) == FL_OK);
    T_CHECK_EQ_INT(max_diff(&a, &b, &nd), 0);
    fl_image_free(&a);
    fl_image_free(&b);
    /* 1-px checkerboard at 1/4: plain bilinear aliases (samples land on pixel
     * centres: 0 or 255), the prefiltered one is mid grey */
    T_REQUIRE(fl_img_warp_affine(&s, m_small, 60, 60, &a, NULL) == FL_OK);
    T_REQUIRE(fl_img_warp_affine_prefilter(&s, m_small, 60, 60, &b, NULL) == FL_OK);
    for (int y = 2; y < 58; y++)
        for (int x = 2; x < 58; x++) {
            int va = fl_image_at(&a, x, y)[0], vb = fl_image_at(&b, x, y)[0];
            plain_extreme += va == 0 || va == 255;
            pre_far += abs(vb - 128) > 2;
        }
    T_CHECK(plain_extreme > 56 * 56 / 2);
    T_CHECK_EQ_INT(pre_far, 0);
    fl_image_free(&a);
    fl_image_free(&b);
    fl_image_free(&s);
}

/* ============================ Golden chips ============================ */

struct golden_stats {
    int rows, max_diff, fails;
    long n_diff, n_samples;
};

static void warp_row(json_t *row, void *vctx)
{
    struct golden_stats *st = vctx;
    const char *id = json_string_value(json_object_get(row, "id"));
    json_t *m = json_object_get(row, "M_2x3");
    char rel[256];
    struct fl_image src = {0}, ref = {0}, out = {0};
    double M[2][3];
    long nd;
    int md;
    if (!id || !json_is_array(m) || json_array_size(m) != 2) {
        st->fails++;
        return;
    }
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            M[r][c] = json_number_value(json_array_get(json_array_get(m, (size_t)r), (size_t)c));
    snprintf(rel, sizeof(rel), "golden/src/%s.png", id);
    if (!decode_shared_png(rel, &src)) {
        st->fails++;
        return;
    }
    snprintf(rel, sizeof(rel), "golden/mobilefacenet/aligned/%s.png", id);
    if (!decode_shared_png(rel, &ref) ||
        fl_img_warp_affine(&src, M, 112, 112, &out, NULL) != FL_OK) {
        st->fails++;
    } else {
        md = max_diff(&out, &ref, &nd);
        st->max_diff = md > st->max_diff ? md : st->max_diff;
        st->n_diff += nd;
        st->n_samples += 112 * 112 * 3;
        if (md > 1) {
            printf("# %s: max diff %d\n", id, md);
            st->fails++;
        }
    }
    st->rows++;
    fl_image_free(&src);
    fl_image_free(&ref);
    fl_image_free(&out);
}

static void test_golden_mobilefacenet_warp(void)
{
    struct golden_stats st = {0};
    int rows = for_each_jsonl("golden/mobilefacenet/embeddings.jsonl", warp_row, &st);
    if (rows < 0)
        T_SKIP("../shared/golden absent");
    printf("# warp: %d rows, max |diff| %d, %ld of %ld samples differ\n", st.rows, st.max_diff,
           st.n_diff, st.n_samples);
    T_CHECK_EQ_INT(st.rows, 40);
    T_CHECK_EQ_INT(st.fails, 0);
}

static void pt_mean(json_t *lm, int a, int b, double *x, double *y)
{
    *x = *y = 0;
    for (int i = a; i < b; i++) {
        json_t *p = json_array_get(lm, (size_t)i);
        *x += json_number_value(json_array_get(p, 0));
        *y += json_number_value(json_array_get(p, 1));
    }
    *x /= (b - a);
    *y /= (b - a);
}

/* golden README §1 steps 1-7 */
static void chip_row(json_t *row, void *vctx)
{
    struct golden_stats *st = vctx;
    const char *id = json_string_value(json_object_get(row, "id"));
    json_t *lm = json_object_get(row, "landmarks68");
    char rel[256];
    struct fl_image src = {0}, ref = {0}, sq = {0}, chip = {0};
    struct fl_image_f32 f = {0};
    double lx, ly, rx, ry, mx, my, cx, cy, size, x, y, w, h;
    long nd;
    int md;
    if (!id || json_array_size(lm) != 68) {
        st->fails++;
        return;
    }
    snprintf(rel, sizeof(rel), "golden/src/%s.png", id);
    if (!decode_shared_png(rel, &src)) {
        st->fails++;
        return;
    }
    pt_mean(lm, 36, 42, &lx, &ly);
    pt_mean(lm, 42, 48, &rx, &ry);
    pt_mean(lm, 48, 68, &mx, &my);
    size = floor((hypot(mx - lx, my - ly) + hypot(mx - rx, my - ry)) / 2 / 0.45);
    cx = (lx + rx + mx) / 3;
    cy = (ly + ry + my) / 3;
    x = floor(fmax(0, cx - 0.5 * size));
    y = floor(fmax(0, cy - 0.43 * size));
    w = fmin(size, src.w + x);
    h = fmin(size, src.h + y);
    /* clipAtImageBorders + floor */
    w = floor(fmin(w, src.w - x));
    h = floor(fmin(h, src.h - y));
    snprintf(rel, sizeof(rel), "golden/faceapi/recognition/chips/%s.png", id);
    if (!decode_shared_png(rel, &ref) ||
        fl_img_crop_square(&src, (int)x, (int)y, (int)w, (int)h, true, &sq, NULL) != FL_OK ||
        fl_img_resize_tf_f32(&sq, 150, 150, &f, NULL) != FL_OK ||
        fl_image_f32_to_u8(&f, &chip, NULL) != FL_OK) {
        st->fails++;
    } else {
        md = max_diff(&chip, &ref, &nd);
        st->max_diff = md > st->max_diff ? md : st->max_diff;
        st->n_diff += nd;
        st->n_samples += 150 * 150 * 3;
        if (md > 1) {
            printf("# %s: rect %g,%g %gx%g max diff %d\n", id, x, y, w, h, md);
            st->fails++;
        }
    }
    st->rows++;
    fl_image_free(&src);
    fl_image_free(&ref);
    fl_image_free(&sq);
    fl_image_free(&chip);
    fl_image_f32_free(&f);
}

static void test_golden_faceapi_chips(void)
{
    struct golden_stats st = {0};
    int rows = for_each_jsonl("golden/faceapi/faces_pipeline.jsonl", chip_row, &st);
    if (rows < 0)
        T_SKIP("../shared/golden absent");
    printf("# chips: %d rows, max |diff| %d, %ld of %ld samples differ\n", st.rows, st.max_diff,
           st.n_diff, st.n_samples);
    T_CHECK_EQ_INT(st.rows, 40);
    T_CHECK_EQ_INT(st.fails, 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_bilinear_known);
    T_RUN(test_bilinear_vs_reference);
    T_RUN(test_area_vs_reference);
    T_RUN(test_tf_resize_known);
    T_RUN(test_tf_resize_vs_reference);
    T_RUN(test_f32_to_u8_rounding);
    T_RUN(test_resize_bad_args);
    T_RUN(test_crop_square);
    T_RUN(test_orient_group);
    T_RUN(test_warp_basic);
    T_RUN(test_warp_prefilter);
    T_RUN(test_golden_mobilefacenet_warp);
    T_RUN(test_golden_faceapi_chips);
    return t_done();
}
