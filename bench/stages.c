/*
 * stages.c: milliseconds per stage per face on one core, on real photos
 * (a benchmark, not a test; `make bench` runs it).
 *
 * Stages: decode (JPEG/PNG to RGB), detect (MTCNN over the whole image, per
 * image), landmarks (face-api landmark68 per face), align (the 150 px dlib
 * chip and the 112 px ArcFace chip, per face), embed (dlib ResNet and
 * MobileFaceNet, per face). Each is timed over several repetitions and the
 * median is printed.
 *
 *   build/bench/stages [IMAGE...]   (default: the face-api demo photos)
 */
#include "face/face_int.h"
#include "face/detect.h"
#include "img/img.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct series {
    const char *name;
    double v[4096], wall[4096];
    int n;
};

/* A time stamp: thread CPU time and monotonic wall time. */
struct stamp {
    uint64_t cpu, wall;
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct stamp now(void)
{
    struct stamp t = {thread_cpu_ns(), fl_time_mono_ns()};
    return t;
}

/* Record the time since t0 in s. */
static void add(struct series *s, struct stamp t0)
{
    struct stamp t1 = now();
    if (s->n < 4096) {
        s->v[s->n] = (double)(t1.cpu - t0.cpu) / 1e6;
        s->wall[s->n++] = (double)(t1.wall - t0.wall) / 1e6;
    }
}

static double med(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n ? v[n / 2] : 0;
}

static double median(struct series *s)
{
    return med(s->v, s->n);
}

static double median_wall(struct series *s)
{
    return med(s->wall, s->n);
}

static void row(struct series *s)
{
    printf("  %-34s %8.2f %8.2f\n", s->name, median(s), median_wall(s));
}

/* The photo centre-cropped to 4:3 and area-resized to 640x480. */
static enum fl_status to_vga(const struct fl_image *img, struct fl_image *out, struct fl_err *e)
{
    struct fl_image crop = {0};
    int w = img->w, h = img->h, cw = w, ch = h;
    enum fl_status st;
    if (w * 3 > h * 4)
        cw = h * 4 / 3;
    else
        ch = w * 3 / 4;
    st = fl_img_crop_pad(img, (w - cw) / 2, (h - ch) / 2, cw, ch, cw, ch, 0, 0, &crop, e);
    if (st == FL_OK)
        st = fl_img_resize_area(&crop, 640, 480, out, e);
    fl_image_free(&crop);
    return st;
}

int main(int argc, char **argv)
{
    static const char *defaults[] = {
        "models/face-api/demo/sample1.jpg", "models/face-api/demo/sample2.jpg",
        "models/face-api/demo/sample3.jpg", "models/face-api/demo/sample4.jpg",
        "models/face-api/demo/sample5.jpg", "models/face-api/demo/sample6.jpg"};
    const char **files = argc > 1 ? (const char **)argv + 1 : defaults;
    int n_files = argc > 1 ? argc - 1 : (int)(sizeof(defaults) / sizeof(defaults[0]));
    static struct series decode = {"decode (per image)"}, detect = {"detect, MTCNN (per image)"},
                         detect_vga = {"detect, MTCNN 640x480 (per image)"},
                         chip_emb = {"align + embed dlib (per face)"},
                         lm = {"landmarks (per face)"}, align_d = {"align dlib 150 (per face)"},
                         align_m = {"align arcface 112 (per face)"},
                         emb_d = {"embed dlib (per face)"}, emb_m = {"embed mobilefacenet (per face)"};
    struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
    struct fl_err e;
    struct fl_face_engine *eng;
    struct fl_face_worker *w;
    struct fl__mtcnn *mt;
    struct fl__mtcnn_exec *mx;
    int n_faces = 0;
    long n_pixels = 0;

    fl_core_init();
    eng = fl_face_engine_new(&cfg, &e);
    w = eng ? fl_face_worker_new(eng, &e) : NULL;
    mt = w ? fl__mtcnn_load("models", &e) : NULL;
    mx = mt ? fl__mtcnn_exec_new(mt, FL_NN_BACKEND_XNNPACK, &e) : NULL;
    if (!mx) {
        printf("cannot load the engine: %s\n", e.msg);
        return 1;
    }
    for (int i = 0; i < n_files; i++) {
        uint8_t *buf = NULL;
        size_t n = 0;
        struct fl_img_decode_opts o;
        struct fl_image img = {0};
        struct fl_face *faces = NULL;
        int nf = 0;

        fl_img_decode_opts_default(&o);
        if (fl_file_read(files[i], 64u << 20, &buf, &n, &e) != FL_OK) {
            printf("skip %s: %s\n", files[i], e.msg);
            continue;
        }
        for (int r = 0; r < REPS; r++) {
            struct stamp t0 = now();
            fl_image_free(&img);
            if (fl_img_decode(buf, n, &o, &img, NULL, &e) != FL_OK)
                break;
            add(&decode, t0);
        }
        fl_free(buf);
        if (!img.px) {
            printf("skip %s: %s\n", files[i], e.msg);
            continue;
        }
        n_pixels += (long)img.w * img.h;
        if (fl_face_detect(w, &img, 0, 0, &faces, &nf, &e) != FL_OK) {
            printf("skip %s: %s\n", files[i], e.msg);
            fl_image_free(&img);
            continue;
        }
        {
            struct fl_image vga = {0};
            struct fl__mtcnn_params p;
            if (to_vga(&img, &vga, &e) != FL_OK) {
                printf("skip %s: %s\n", files[i], e.msg);
                fl_image_free(&img);
                continue;
            }
            for (int r = 0; r <= REPS; r++) { /* run 0 warms the PNet executors */
                struct fl__det *d = NULL;
                int nd = 0;
                struct stamp t0 = now();
                fl__mtcnn_params_default(&img, &p);
                if (fl__mtcnn_detect(mx, &img, &p, &d, &nd, &e) == FL_OK && r)
                    add(&detect, t0);
                fl_free(d);
                d = NULL;
                t0 = now();
                fl__mtcnn_params_default(&vga, &p);
                if (fl__mtcnn_detect(mx, &vga, &p, &d, &nd, &e) == FL_OK && r)
                    add(&detect_vga, t0);
                fl_free(d);
            }
            fl_image_free(&vga);
        }
        for (int k = 0; k < nf; k++) {
            for (int r = 0; r < REPS; r++) {
                float lm68[136], v[FL_FACE_MAX_DIM];
                struct fl_image chip = {0};
                struct stamp t0 = now(), t1;
                fl__face_landmarks_from_box(w, &img, faces[k].box, lm68, NULL);
                add(&lm, t0);
                t0 = now();
                fl_face_chip(w, &img, &faces[k], FL_FACE_MODEL_DLIB, &chip, NULL);
                add(&align_d, t0);
                t1 = now();
                fl_face_embed_chip(w, &chip, FL_FACE_MODEL_DLIB, v, NULL);
                add(&emb_d, t1);
                add(&chip_emb, t0);
                fl_image_free(&chip);
                t0 = now();
                fl_face_chip(w, &img, &faces[k], FL_FACE_MODEL_MFN, &chip, NULL);
                add(&align_m, t0);
                t0 = now();
                fl_face_embed_chip(w, &chip, FL_FACE_MODEL_MFN, v, NULL);
                add(&emb_m, t0);
                fl_image_free(&chip);
            }
        }
        printf("%-40s %4dx%-4d %2d faces\n", files[i], img.w, img.h, nf);
        n_faces += nf;
        fl_free(faces);
        fl_image_free(&img);
    }
    printf("\none core, XNNPACK, %d images, %d faces, median of %d runs\n", n_files, n_faces, REPS);
    printf("  %-34s %8s %8s\n", "stage", "cpu ms", "wall ms");
    row(&decode);
    row(&detect);
    row(&detect_vga);
    row(&lm);
    row(&align_d);
    row(&emb_d);
    row(&chip_emb);
    row(&align_m);
    row(&emb_m);
    printf("  (mean image %.2f MP)\n", n_files ? n_pixels / 1e6 / n_files : 0);
    printf("@ours decode=%.3f detect=%.3f detect_vga=%.3f landmarks=%.3f align_dlib=%.3f "
           "embed_dlib=%.3f align_embed_dlib=%.3f align_mfn=%.3f embed_mfn=%.3f faces=%d\n",
           median(&decode), median(&detect), median(&detect_vga), median(&lm), median(&align_d),
           median(&emb_d), median(&chip_emb), median(&align_m), median(&emb_m), n_faces);
    fl__mtcnn_exec_free(mx);
    fl__mtcnn_free(mt);
    fl_face_worker_free(w);
    fl_face_engine_free(eng);
    return 0;
}
