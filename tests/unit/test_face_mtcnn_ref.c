/* test_face_mtcnn_ref.c: the optimised MTCNN cascade (fused resampling into
 * the net input, cached taps and executors, RNet/ONet in batches) against a
 * plain one written here the obvious way: every pyramid level and crop
 * through the img module's resizers (fl_img_resize_area/_bilinear,
 * fl_img_crop_pad) into an image, copied transposed into the input, PNet
 * executors made per level, RNet/ONet one candidate per batch-1 run. Both
 * follow facenet's detect_face.py; the optimisations claim not to change a
 * bit, so every box, score and landmark must be equal, on photos with many
 * faces (hundreds of RNet candidates, batches and remainders), at full size
 * and at 640x480, and for boxes that leave the image. */
#include "t.h"
#include "t_img.h"
#include "face/detect.h"
#include "face/face_int.h"
#include "img/img.h"

T_MAIN_STATE;

static struct fl__mtcnn *g_m;
static struct fl__mtcnn_exec *g_x;
static struct fl_nn_model *g_net[3]; /* the plain cascade's pnet, rnet, onet */

struct rc_cand {
    float x1, y1, x2, y2, score, reg[4], pts[10];
};

struct rc_list {
    struct rc_cand *v;
    int n, cap;
};

static void push(struct rc_list *l, const struct rc_cand *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = fl_realloc(l->v, (size_t)l->cap * sizeof(*l->v));
        FL_ASSERT(l->v);
    }
    l->v[l->n++] = *c;
}

static int by_score(const void *a, const void *b)
{
    float x = ((const struct rc_cand *)a)->score, y = ((const struct rc_cand *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* facenet's nms() with inclusive areas; "Min" over the smaller area. */
static void plain_nms(struct rc_list *l, float th, int min_mode)
{
    int k = 0;
    if (!l->n)
        return;
    qsort(l->v, (size_t)l->n, sizeof(*l->v), by_score);
    for (int i = 0; i < l->n; i++) {
        const struct rc_cand *a = &l->v[i];
        float aa = (a->x2 - a->x1 + 1) * (a->y2 - a->y1 + 1);
        int keep = 1;
        for (int j = 0; j < k && keep; j++) {
            const struct rc_cand *b = &l->v[j];
            float ab = (b->x2 - b->x1 + 1) * (b->y2 - b->y1 + 1);
            float w = fmaxf(0, fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1) + 1);
            float h = fmaxf(0, fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1) + 1);
            float o = min_mode ? w * h / fminf(aa, ab) : w * h / (aa + ab - w * h);
            keep = !(o > th);
        }
        if (keep)
            l->v[k++] = *a;
    }
    l->n = k;
}

static void square(struct rc_cand *c)
{
    float w = c->x2 - c->x1, h = c->y2 - c->y1, s = fmaxf(w, h);
    c->x1 = c->x1 + w * 0.5f - s * 0.5f;
    c->y1 = c->y1 + h * 0.5f - s * 0.5f;
    c->x2 = c->x1 + s;
    c->y2 = c->y1 + s;
}

static void fix(struct rc_cand *c)
{
    c->x1 = truncf(c->x1);
    c->y1 = truncf(c->y1);
    c->x2 = truncf(c->x2);
    c->y2 = truncf(c->y2);
}

static void to_input(const struct fl_image *img, float *in)
{
    for (int x = 0; x < img->w; x++)
        for (int y = 0; y < img->h; y++)
            for (int c = 0; c < 3; c++)
                in[3 * ((size_t)x * img->h + y) + c] =
                    ((float)img->px[(size_t)y * img->stride + 3 * (size_t)x + c] - 127.5f) *
                    0.0078125f;
}

static const float *out_c(struct fl_nn_exec *e, int c, int shape[3])
{
    for (int i = 0; i < 3; i++) {
        int s[3];
        const float *p = fl_nn_exec_output(e, i, s);
        if (p && s[2] == c) {
            if (shape)
                memcpy(shape, s, sizeof(s));
            return p;
        }
    }
    return NULL;
}

/* The cascade, plainly. Returns the final candidates (fl_free .v). */
static struct rc_list plain_detect(const struct fl_image *img, const struct fl__mtcnn_params *p)
{
    struct rc_list all = {0}, lvl = {0};
    struct fl_image base = {0};
    double m = 12.0 / p->min_face_px, minl = FL_MIN(img->w, img->h) * m, scale = m;
    while (minl >= 12) {
        int ws = (int)ceil(img->w * scale), hs = (int)ceil(img->h * scale), sp[3] = {0};
        struct fl_image l = {0};
        struct fl_nn_exec *e = fl_nn_exec_new(g_net[0], ws, hs, FL_NN_BACKEND_XNNPACK, 1, NULL);
        const float *prob, *reg;
        FL_ASSERT(e);
        if (!base.px)
            FL_ASSERT(fl_img_resize_area(img, ws, hs, &base, NULL) == FL_OK);
        FL_ASSERT(fl_img_resize_area(&base, ws, hs, &l, NULL) == FL_OK);
        to_input(&l, fl_nn_exec_input(e));
        FL_ASSERT(fl_nn_exec_run(e, NULL) == FL_OK);
        prob = out_c(e, 2, sp);
        reg = out_c(e, 4, NULL);
        lvl.n = 0;
        for (int i = 0; i < sp[0]; i++)
            for (int j = 0; j < sp[1]; j++) {
                size_t at = (size_t)i * sp[1] + j;
                struct rc_cand c = {0};
                if (prob[2 * at + 1] < p->thresh[0])
                    continue;
                c.x1 = truncf((float)((2.0 * i + 1) / scale));
                c.y1 = truncf((float)((2.0 * j + 1) / scale));
                c.x2 = truncf((float)((2.0 * i + 12) / scale));
                c.y2 = truncf((float)((2.0 * j + 12) / scale));
                c.score = prob[2 * at + 1];
                memcpy(c.reg, reg + 4 * at, sizeof(c.reg));
                push(&lvl, &c);
            }
        plain_nms(&lvl, 0.5f, 0);
        for (int k = 0; k < lvl.n; k++)
            push(&all, &lvl.v[k]);
        fl_image_free(&l);
        fl_nn_exec_free(e);
        scale *= p->factor;
        minl *= p->factor;
    }
    fl_image_free(&base);
    fl_free(lvl.v);
    plain_nms(&all, 0.7f, 0);
    for (int k = 0; k < all.n; k++) {
        struct rc_cand *c = &all.v[k];
        float w = c->x2 - c->x1, h = c->y2 - c->y1;
        c->x1 += c->reg[0] * w;
        c->y1 += c->reg[1] * h;
        c->x2 += c->reg[2] * w;
        c->y2 += c->reg[3] * h;
        square(c);
        fix(c);
    }
    for (int stage = 1; stage <= 2 && all.n; stage++) {
        int size = stage == 1 ? 24 : 48, keep = 0;
        struct fl_nn_exec *e = fl_nn_exec_new(g_net[stage], 0, 0, FL_NN_BACKEND_XNNPACK, 1, NULL);
        FL_ASSERT(e);
        for (int k = 0; k < all.n; k++) {
            struct rc_cand c = all.v[k];
            int bw = (int)(c.x2 - c.x1 + 1), bh = (int)(c.y2 - c.y1 + 1);
            struct fl_image crop = {0}, small = {0};
            const float *prob, *reg, *pts;
            FL_ASSERT(fl_img_crop_pad(img, (int)c.x1, (int)c.y1, bw, bh, bw, bh, 0, 0, &crop,
                                      NULL) == FL_OK);
            if (bw == size && bh == size)
                FL_ASSERT(fl_img_crop_pad(&crop, 0, 0, bw, bh, bw, bh, 0, 0, &small, NULL) ==
                          FL_OK);
            else if (bw >= size && bh >= size)
                FL_ASSERT(fl_img_resize_area(&crop, size, size, &small, NULL) == FL_OK);
            else
                FL_ASSERT(fl_img_resize_bilinear(&crop, size, size, &small, NULL) == FL_OK);
            to_input(&small, fl_nn_exec_input(e));
            fl_image_free(&crop);
            fl_image_free(&small);
            FL_ASSERT(fl_nn_exec_run(e, NULL) == FL_OK);
            prob = out_c(e, 2, NULL);
            reg = out_c(e, 4, NULL);
            pts = out_c(e, 10, NULL);
            if (prob[1] <= p->thresh[stage])
                continue;
            c.score = prob[1];
            memcpy(c.reg, reg, sizeof(c.reg));
            if (stage == 2) {
                float w = c.x2 - c.x1 + 1, h = c.y2 - c.y1 + 1;
                for (int j = 0; j < 5; j++) {
                    c.pts[2 * j] = w * pts[j] + c.x1 - 1;
                    c.pts[2 * j + 1] = h * pts[j + 5] + c.y1 - 1;
                }
            }
            all.v[keep++] = c;
        }
        all.n = keep;
        fl_nn_exec_free(e);
        if (stage == 1)
            plain_nms(&all, 0.7f, 0);
        for (int k = 0; k < all.n; k++) {
            struct rc_cand *c = &all.v[k];
            float w = c->x2 - c->x1 + 1, h = c->y2 - c->y1 + 1;
            c->x1 += c->reg[0] * w;
            c->y1 += c->reg[1] * h;
            c->x2 += c->reg[2] * w;
            c->y2 += c->reg[3] * h;
            if (stage == 1) {
                square(c);
                fix(c);
            }
        }
        if (stage == 2)
            plain_nms(&all, 0.7f, 1);
    }
    return all;
}

/* Detect with both, check equal results; returns the face count. */
static int compare(const char *what, const struct fl_image *img, const struct fl__mtcnn_params *p)
{
    struct fl__det *d = NULL;
    int nd = -1, bad = 0;
    struct rc_list r = plain_detect(img, p);
    T_CHECK(fl__mtcnn_detect(g_x, img, p, &d, &nd, NULL) == FL_OK);
    T_CHECK_EQ_INT(nd, r.n);
    for (int k = 0; k < nd && k < r.n && !bad; k++) {
        const struct rc_cand *c = &r.v[k];
        bad = d[k].box.x != c->x1 || d[k].box.y != c->y1 || d[k].box.w != c->x2 - c->x1 + 1 ||
              d[k].box.h != c->y2 - c->y1 + 1 || d[k].score != c->score ||
              memcmp(d[k].pts5, c->pts, sizeof(c->pts)) != 0;
        if (bad)
            printf("# %s: face %d differs: (%g %g %g %g %g) vs (%g %g %g %g %g)\n", what, k,
                   d[k].box.x, d[k].box.y, d[k].box.w, d[k].box.h, d[k].score, c->x1, c->y1,
                   c->x2 - c->x1 + 1, c->y2 - c->y1 + 1, c->score);
    }
    T_CHECK(!bad);
    fl_free(d);
    fl_free(r.v);
    return nd;
}

static void test_photos_bit_equal(void)
{
    static const char *rel[] = {"data/detect/boxes/2008_002470.jpg", "data/detect/group/1.jpg",
                                "data/detect/group/17.jpg", "data/detect/negative/horses.jpg"};
    int n_faces = 0, n_img = 0;
    if (!g_x)
        T_SKIP("models absent");
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        char path[1024];
        struct fl_image img = {0}, vga = {0};
        struct fl__mtcnn_params p;
        if (!t_shared(rel[i], path, sizeof(path)))
            continue;
        T_REQUIRE(t_load_image(path, &img));
        fl__mtcnn_params_default(&img, &p);
        n_faces += compare(rel[i], &img, &p);
        /* 640x480 (stretched; the aspect does not matter here) */
        T_REQUIRE(fl_img_resize_area(&img, 640, 480, &vga, NULL) == FL_OK);
        fl__mtcnn_params_default(&vga, &p);
        n_faces += compare(rel[i], &vga, &p);
        n_img++;
        fl_image_free(&img);
        fl_image_free(&vga);
    }
    if (!n_img)
        T_SKIP("../shared/data absent");
    printf("# %d images, %d faces, all bit-equal to the plain cascade\n", 2 * n_img, n_faces);
    T_CHECK(n_faces > 50); /* the group photos exercise many candidates */
}

/* Faces at the border: PNet's boxes leave the image, crops are zero-padded. */
static void test_border_crops_bit_equal(void)
{
    char path[1024];
    struct fl_image img = {0}, cut = {0};
    struct fl__mtcnn_params p;
    if (!g_x)
        T_SKIP("models absent");
    if (!t_shared("data/detect/boxes/2008_002506.jpg", path, sizeof(path)))
        T_SKIP("../shared/data absent");
    T_REQUIRE(t_load_image(path, &img));
    /* its faces sit at y 65..187, x 125..438: cut through them */
    T_REQUIRE(fl_img_crop_pad(&img, 170, 120, 300, 200, 300, 200, 0, 0, &cut, NULL) == FL_OK);
    fl__mtcnn_params_default(&cut, &p);
    compare("cut", &cut, &p);
    p.min_face_px = 12; /* the smallest allowed: the most levels and candidates */
    compare("cut, min face 12", &cut, &p);
    fl_image_free(&img);
    fl_image_free(&cut);
}

/* Past the executor's scratch limit (SCRATCH_KEEP, 2 MB), where the base
 * level and the padded crop buffer are freed after each detection: faces
 * cut by the border, upscaled x8 (crops of ~900 px leaving the image), and
 * a 1100x730 photo searched down to 12 px (a 2.4 MB base level); each twice,
 * so the second detection runs on freshly grown scratch. */
static void test_large_scratch_bit_equal(void)
{
    char path[1024];
    struct fl_image img = {0}, cut = {0}, big = {0};
    struct fl__mtcnn_params p;
    if (!g_x)
        T_SKIP("models absent");
    if (!t_shared("data/detect/boxes/2008_002506.jpg", path, sizeof(path)))
        T_SKIP("../shared/data absent");
    T_REQUIRE(t_load_image(path, &img));
    T_REQUIRE(fl_img_crop_pad(&img, 170, 120, 300, 200, 300, 200, 0, 0, &cut, NULL) == FL_OK);
    T_REQUIRE(fl_img_resize_bilinear(&cut, 2400, 1600, &big, NULL) == FL_OK);
    fl__mtcnn_params_default(&big, &p);
    T_CHECK(compare("cut x8", &big, &p) > 0);
    compare("cut x8, again", &big, &p);
    fl_image_free(&big);
    T_REQUIRE(fl_img_resize_area(&img, 1100, 730, &big, NULL) == FL_OK);
    fl__mtcnn_params_default(&big, &p);
    p.min_face_px = 12;
    T_CHECK(compare("1100x730, min face 12", &big, &p) > 0);
    compare("1100x730, min face 12, again", &big, &p);
    fl_image_free(&img);
    fl_image_free(&cut);
    fl_image_free(&big);
}

int main(int argc, char **argv)
{
    char dir[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_model("expo/android/src/main/assets/pnet.tflite", dir, sizeof(dir))) {
        const char *models = getenv("FL_MODELS") ? getenv("FL_MODELS") : "models";
        struct fl_err e;
        static const enum fl__face_net nets[3] = {FL__FACE_NET_PNET, FL__FACE_NET_RNET,
                                                  FL__FACE_NET_ONET};
        g_m = fl__mtcnn_load(models, &e);
        if (g_m)
            g_x = fl__mtcnn_exec_new(g_m, FL_NN_BACKEND_XNNPACK, &e);
        for (int i = 0; i < 3 && g_x; i++) {
            g_net[i] = fl__face_load_net(models, nets[i], &e);
            if (!g_net[i]) {
                fl__mtcnn_exec_free(g_x);
                g_x = NULL;
            }
        }
        if (!g_x)
            printf("# MTCNN load failed: %s\n", e.msg);
    }
    T_RUN(test_photos_bit_equal);
    T_RUN(test_border_crops_bit_equal);
    T_RUN(test_large_scratch_bit_equal);
    fl__mtcnn_exec_free(g_x);
    fl__mtcnn_free(g_m);
    for (int i = 0; i < 3; i++)
        fl_nn_model_unref(g_net[i]);
    return t_done();
}
