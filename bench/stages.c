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

#define REPS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct series {
    const char *name;
    double v[4096];
    int n;
};

static void add(struct series *s, double ms)
{
    if (s->n < 4096)
        s->v[s->n++] = ms;
}

static double median(struct series *s)
{
    qsort(s->v, (size_t)s->n, sizeof(double), cmp_double);
    return s->n ? s->v[s->n / 2] : 0;
}

static double ms_since(uint64_t t0)
{
    return (double)(fl_time_mono_ns() - t0) / 1e6;
}

int main(int argc, char **argv)
{
    static const char *defaults[] = {
        "models/face-api/demo/sample1.jpg", "models/face-api/demo/sample2.jpg",
        "models/face-api/demo/sample3.jpg", "models/face-api/demo/sample4.jpg",
        "models/face-api/demo/sample5.jpg", "models/face-api/demo/sample6.jpg"};
    const char **files = argc > 1 ? (const char **)argv + 1 : defaults;
    int n_files = argc > 1 ? argc - 1 : (int)(sizeof(defaults) / sizeof(defaults[0]));
    static struct series decode = {"decode (per image)"}, detect = {"detect (per image)"},
                         lm = {"landmarks (per face)"}, align_d = {"align dlib 150 (per face)"},
                         align_m = {"align arcface 112 (per face)"},
                         emb_d = {"embed dlib (per face)"}, emb_m = {"embed mobilefacenet (per face)"};
    struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
    struct fl_err e;
    struct fl_face_engine *eng;
    struct fl_face_worker *w;
    int n_faces = 0;
    long n_pixels = 0;

    fl_core_init();
    eng = fl_face_engine_new(&cfg, &e);
    w = eng ? fl_face_worker_new(eng, &e) : NULL;
    if (!w) {
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
            uint64_t t0 = fl_time_mono_ns();
            fl_image_free(&img);
            if (fl_img_decode(buf, n, &o, &img, NULL, &e) != FL_OK)
                break;
            add(&decode, ms_since(t0));
        }
        fl_free(buf);
        if (!img.px) {
            printf("skip %s: %s\n", files[i], e.msg);
            continue;
        }
        n_pixels += (long)img.w * img.h;
        for (int r = 0; r < REPS; r++) {
            uint64_t t0 = fl_time_mono_ns();
            fl_free(faces);
            faces = NULL;
            if (fl_face_detect(w, &img, 0, 0, &faces, &nf, &e) != FL_OK)
                break;
            add(&detect, ms_since(t0)); /* includes landmarks, pose, quality: subtracted below */
        }
        for (int k = 0; k < nf; k++) {
            for (int r = 0; r < REPS; r++) {
                float lm68[136], v[FL_FACE_MAX_DIM];
                struct fl_image chip = {0};
                uint64_t t0 = fl_time_mono_ns();
                fl__face_landmarks_from_box(w, &img, faces[k].box, lm68, NULL);
                add(&lm, ms_since(t0));
                t0 = fl_time_mono_ns();
                fl_face_chip(w, &img, &faces[k], FL_FACE_MODEL_DLIB, &chip, NULL);
                add(&align_d, ms_since(t0));
                t0 = fl_time_mono_ns();
                fl_face_embed_chip(w, &chip, FL_FACE_MODEL_DLIB, v, NULL);
                add(&emb_d, ms_since(t0));
                fl_image_free(&chip);
                t0 = fl_time_mono_ns();
                fl_face_chip(w, &img, &faces[k], FL_FACE_MODEL_MFN, &chip, NULL);
                add(&align_m, ms_since(t0));
                t0 = fl_time_mono_ns();
                fl_face_embed_chip(w, &chip, FL_FACE_MODEL_MFN, v, NULL);
                add(&emb_m, ms_since(t0));
                fl_image_free(&chip);
            }
        }
        printf("%-40s %4dx%-4d %2d faces\n", files[i], img.w, img.h, nf);
        n_faces += nf;
        fl_free(faces);
        fl_image_free(&img);
    }
    {
        /* detect as timed includes the per-face landmark/pose/quality work:
         * report MTCNN alone by subtracting the landmark median per face */
        double lm_med = median(&lm), det_med = median(&detect);
        double faces_per_image = n_files ? (double)n_faces / n_files : 0;
        printf("\none core, XNNPACK, %d images, %d faces, median of %d runs (ms):\n", n_files,
               n_faces, REPS);
        printf("  %-32s %8.2f\n", decode.name, median(&decode));
        printf("  %-32s %8.2f\n", "detect, MTCNN (per image)",
               det_med - lm_med * faces_per_image);
        printf("  %-32s %8.2f\n", lm.name, lm_med);
        printf("  %-32s %8.2f\n", align_d.name, median(&align_d));
        printf("  %-32s %8.2f\n", emb_d.name, median(&emb_d));
        printf("  %-32s %8.2f\n", align_m.name, median(&align_m));
        printf("  %-32s %8.2f\n", emb_m.name, median(&emb_m));
        printf("  (mean image %.2f MP)\n", n_files ? n_pixels / 1e6 / n_files : 0);
    }
    fl_face_worker_free(w);
    fl_face_engine_free(eng);
    return 0;
}
