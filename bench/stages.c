/*
 * stages.c: milliseconds per stage per face on one core, on real photos
 * (a benchmark, not a test; `make bench` runs it).
 *
 * Stages: decode (JPEG/PNG to RGB), detect (MTCNN over the whole image, per
 * image; at 640x480 also split into its PNet pyramid, RNet and ONet stages,
 * resampling and NMS included, with the candidates each saw), landmarks (face-api landmark68 per
 * face), align (the 150 px dlib chip and the 112 px ArcFace chip, per face), embed (dlib ResNet and
 * MobileFaceNet, per face). Each is timed over several repetitions and the
 * median is printed.
 *
 * Then the embeddings by batch size: the dlib ResNet and MobileFaceNet alone
 * (nn executors) at batch 1, 2, 4 and 8, ms per chip, the batch sizes run
 * interleaved in every round so machine noise hits them alike, with the
 * heap each executor holds (glibc mallinfo2 before and after it is made
 * and run once: packed weights, XNNPACK workspace, our buffers); and
 * fl_face_embed_chips() as the service calls it, on the dlib chips of one
 * face and its mirror image (2 chips) and of four faces (8).
 *
 *   build/bench/stages [IMAGE...]   (default: the face-api demo photos)
 */
#include "bench_util.h"
#include "face/face_int.h"
#include "face/detect.h"
#include "img/img.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 5

struct series {
    const char *name;
    double v[4096], wall[4096];
    int n;
};

/* A time stamp: thread CPU time and monotonic wall time. */
struct stamp {
    uint64_t cpu, wall;
};

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

/* Record a CPU time measured elsewhere (no wall time: printed as 0). */
static void add_ns(struct series *s, uint64_t cpu_ns)
{
    if (s->n < 4096) {
        s->v[s->n] = (double)cpu_ns / 1e6;
        s->wall[s->n++] = 0;
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

/* Heap bytes in use, MB (glibc mallinfo2: arena blocks in use plus mmapped
 * blocks; XNNPACK allocates through malloc too). */
static double heap_mb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd) / 1048576.0;
}

#define EMB_ROUNDS 15
static const int emb_batches[4] = {1, 2, 4, 8};

/* The embedding nets alone at batches 1, 2, 4, 8: ms per chip (median CPU
 * over EMB_ROUNDS interleaved rounds) into ms[net][k], executor memory into
 * mb[net][k]. Returns false if a net does not load. */
static bool embed_batches(double ms[2][4], double mb[2][4])
{
    static const enum fl__face_net nets[2] = {FL__FACE_NET_DLIB, FL__FACE_NET_MFN};
    static double t[2][4][EMB_ROUNDS];
    struct fl_nn_exec *x[2][4] = {{0}};
    struct fl_err e;
    bool ok = true;
    for (int n = 0; n < 2 && ok; n++) {
        struct fl_nn_model *m = fl__face_load_net("models", nets[n], &e);
        if (!m) {
            printf("embedding batches: %s\n", e.msg);
            ok = false;
            break;
        }
        for (int k = 0; k < 4 && ok; k++) {
            double r0 = heap_mb();
            size_t n_in;
            x[n][k] = fl_nn_exec_new_batch(m, emb_batches[k], 0, 0, FL_NN_BACKEND_XNNPACK, 1, &e);
            if (!x[n][k]) {
                printf("embedding batches: %s\n", e.msg);
                ok = false;
                break;
            }
            n_in = nets[n] == FL__FACE_NET_DLIB ? 150 * 150 * 3 : 112 * 112 * 3;
            for (size_t i = 0; i < n_in * (size_t)emb_batches[k]; i++)
                fl_nn_exec_input(x[n][k])[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
            fl_nn_exec_run(x[n][k], NULL);
            mb[n][k] = heap_mb() - r0;
        }
        fl_nn_model_unref(m); /* the executors hold references */
    }
    for (int r = 0; r < EMB_ROUNDS && ok; r++) {
        for (int n = 0; n < 2; n++) {
            for (int k = 0; k < 4; k++) {
                uint64_t c0 = thread_cpu_ns();
                fl_nn_exec_run(x[n][k], NULL);
                t[n][k][r] = (double)(thread_cpu_ns() - c0) / 1e6 / emb_batches[k];
            }
        }
    }
    for (int n = 0; n < 2; n++) {
        for (int k = 0; k < 4; k++) {
            if (ok)
                ms[n][k] = med(t[n][k], EMB_ROUNDS);
            fl_nn_exec_free(x[n][k]);
        }
    }
    return ok;
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
                         pnet_vga = {"  of which PNet pyramid"}, rnet_vga = {"  of which RNet"},
                         onet_vga = {"  of which ONet"},
                         chip_emb = {"align + embed dlib (per face)"},
                         lm = {"landmarks (per face)"}, align_d = {"align dlib 150 (per face)"},
                         align_m = {"align arcface 112 (per face)"},
                         emb_d = {"embed dlib (per face)"},
                         emb_m = {"embed mobilefacenet (per face)"},
                         emb_d2 = {"embed dlib, batch 2 (per chip)"},
                         emb_d8 = {"embed dlib, batch 8 (per chip)"},
                         emb_f = {"embed fused, default (per face)"};
    static struct fl_image chips[8];
    int n_chips = 0;
    double bms[2][4] = {{0}}, bmb[2][4] = {{0}};
    struct fl_face_engine_config cfg = {"models", FL_NN_BACKEND_XNNPACK};
    struct fl_err e;
    struct fl_face_engine *eng;
    struct fl_face_worker *w;
    struct fl__mtcnn *mt;
    struct fl__mtcnn_exec *mx;
    int n_faces = 0;
    long n_pixels = 0, n_vga = 0, cand_r = 0, cand_o = 0;

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
                fl__mtcnn_exec_stats(mx, NULL, true);
                if (fl__mtcnn_detect(mx, &vga, &p, &d, &nd, &e) == FL_OK && r) {
                    struct fl__mtcnn_stats st;
                    add(&detect_vga, t0);
                    fl__mtcnn_exec_stats(mx, &st, false);
                    add_ns(&pnet_vga, st.ns[0]);
                    add_ns(&rnet_vga, st.ns[1]);
                    add_ns(&onet_vga, st.ns[2]);
                    cand_r += st.n_in[1];
                    cand_o += st.n_in[2];
                    n_vga++;
                }
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
                if (r == 0 && n_chips < 8)
                    chips[n_chips++] = chip; /* kept for the batched calls below */
                else
                    fl_image_free(&chip);
                t0 = now();
                fl_face_chip(w, &img, &faces[k], FL_FACE_MODEL_MFN, &chip, NULL);
                add(&align_m, t0);
                t0 = now();
                fl_face_embed_chip(w, &chip, FL_FACE_MODEL_MFN, v, NULL);
                add(&emb_m, t0);
                fl_image_free(&chip);
                t0 = now();
                fl_face_embed(w, &img, &faces[k], FL_FACE_MODEL_FUSED, v, NULL);
                add(&emb_f, t0);
            }
        }
        printf("%-40s %4dx%-4d %2d faces\n", files[i], img.w, img.h, nf);
        n_faces += nf;
        fl_free(faces);
        fl_image_free(&img);
    }
    if (n_chips > 0) {
        /* fl_face_embed_chips as the service calls it: 2 chips (a face and
         * its mirror image) and 8 (four faces); the batch executors are made
         * by the first call, which is not timed. Interleaved rounds. */
        static struct fl_image set[8];
        static float v[8 * FL_FACE_MAX_DIM];
        for (int i = 0; i < 8; i++)
            set[i] = chips[i % n_chips];
        fl_face_embed_chips(w, set, 2, FL_FACE_MODEL_DLIB, v, NULL);
        fl_face_embed_chips(w, set, 8, FL_FACE_MODEL_DLIB, v, NULL);
        for (int r = 0; r < EMB_ROUNDS; r++) {
            struct stamp t0 = now();
            fl_face_embed_chips(w, set, 2, FL_FACE_MODEL_DLIB, v, NULL);
            add(&emb_d2, t0);
            emb_d2.v[emb_d2.n - 1] /= 2;
            emb_d2.wall[emb_d2.n - 1] /= 2;
            t0 = now();
            fl_face_embed_chips(w, set, 8, FL_FACE_MODEL_DLIB, v, NULL);
            add(&emb_d8, t0);
            emb_d8.v[emb_d8.n - 1] /= 8;
            emb_d8.wall[emb_d8.n - 1] /= 8;
        }
    }
    for (int i = 0; i < n_chips; i++)
        fl_image_free(&chips[i]);
    if (!embed_batches(bms, bmb))
        return 1;
    printf("\none core, XNNPACK, %d images, %d faces, median of %d runs\n", n_files, n_faces, REPS);
    printf("  %-34s %8s %8s\n", "stage", "cpu ms", "wall ms");
    row(&decode);
    row(&detect);
    row(&detect_vga);
    row(&pnet_vga);
    row(&rnet_vga);
    row(&onet_vga);
    printf("  (640x480: %.1f RNet and %.1f ONet candidates per image)\n",
           n_vga ? (double)cand_r / n_vga : 0, n_vga ? (double)cand_o / n_vga : 0);
    row(&lm);
    row(&align_d);
    row(&emb_d);
    row(&emb_d2);
    row(&emb_d8);
    row(&chip_emb);
    row(&align_m);
    row(&emb_m);
    row(&emb_f);
    printf("  (mean image %.2f MP)\n", n_files ? n_pixels / 1e6 / n_files : 0);
    printf("\nembedding nets alone by batch size: CPU ms per chip, median of %d interleaved "
           "rounds;\nMB: heap one executor holds (packed weights, workspace, buffers)\n",
           EMB_ROUNDS);
    printf("  %-16s %7s %7s %7s %7s   %6s %6s %6s %6s\n", "net", "b=1", "b=2", "b=4", "b=8",
           "MB b1", "b2", "b4", "b8");
    for (int n = 0; n < 2; n++)
        printf("  %-16s %7.2f %7.2f %7.2f %7.2f   %6.1f %6.1f %6.1f %6.1f\n",
               n ? "MobileFaceNet" : "dlib ResNet", bms[n][0], bms[n][1], bms[n][2], bms[n][3],
               bmb[n][0], bmb[n][1], bmb[n][2], bmb[n][3]);
    printf("@ours decode=%.3f detect=%.3f detect_vga=%.3f pnet_vga=%.3f rnet_vga=%.3f "
           "onet_vga=%.3f landmarks=%.3f align_dlib=%.3f "
           "embed_dlib=%.3f align_embed_dlib=%.3f align_mfn=%.3f embed_mfn=%.3f faces=%d "
           "embed_dlib_call2=%.3f embed_dlib_call8=%.3f net_dlib_b1=%.3f net_dlib_b2=%.3f "
           "net_dlib_b4=%.3f net_dlib_b8=%.3f net_mfn_b1=%.3f net_mfn_b2=%.3f net_mfn_b4=%.3f "
           "net_mfn_b8=%.3f embed_fused=%.3f\n",
           median(&decode), median(&detect), median(&detect_vga), median(&pnet_vga),
           median(&rnet_vga), median(&onet_vga), median(&lm), median(&align_d), median(&emb_d),
           median(&chip_emb), median(&align_m), median(&emb_m), n_faces, median(&emb_d2),
           median(&emb_d8), bms[0][0], bms[0][1], bms[0][2], bms[0][3], bms[1][0], bms[1][1],
           bms[1][2], bms[1][3], median(&emb_f));
    fl__mtcnn_exec_free(mx);
    fl__mtcnn_free(mt);
    fl_face_worker_free(w);
    fl_face_engine_free(eng);
    return 0;
}
