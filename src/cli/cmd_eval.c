/*
 * cmd_eval.c: `facelink eval lfw|detect|calibrate`: accuracy measurement.
 *
 * A thin front end over include/facelink_eval.h: it parses options, draws a
 * progress bar on stderr when stderr is a terminal, and prints the results
 * as text or, with --json, as one JSON object on stdout.
 */
#include "facelink_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_eval.h"

struct bar {
    bool tty;
    const char *last_stage;
};

/* Progress callback: a one-line bar on stderr (terminal only). */
static void bar_fn(void *ctx, const char *stage, long done, long total)
{
    struct bar *b = ctx;
    int width = 40, fill;
    if (!b->tty || total <= 0)
        return;
    fill = (int)(width * done / total);
    fprintf(stderr, "\r%-10s [%.*s%*s] %ld/%ld", stage, fill,
            "########################################", width - fill, "", done, total);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
    b->last_stage = stage;
}

static const char *opt_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "facelink eval: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

/* An integer option value in [0, 100000]; exits with status 2 otherwise. */
static int opt_int(int argc, char **argv, int *i)
{
    const char *name = argv[*i], *v = opt_value(argc, argv, i);
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || n < 0 || n > 100000) {
        fprintf(stderr, "facelink eval: %s wants a number, not '%s'\n", name, v);
        exit(2);
    }
    return (int)n;
}

static void lfw_usage(FILE *f)
{
    fprintf(f,
            "usage: facelink eval lfw [--images DIR] [--pairs FILE] [--model NAME] [--flip]\n"
            "                         [--flip-only] [--centre-crop] [--dlib-align A] [--subset N]\n"
            "                         [--threads N] [--cache FILE] [--models DIR] [--json]\n"
            "  --model dlib|mobilefacenet|fused|zfusion|all   (default fused, the service's\n"
            "                 default model; zfusion: score-level fusion, a diagnostic)\n"
            "  --flip         also report test-time flip averaging\n"
            "  --centre-crop  embed a centre crop when no face is detected (default: error)\n"
            "  --dlib-align dlib68|faceapi|mtcnn5   diagnostic: what dlib is fed (default dlib68:\n"
            "                 the dlib chip on the 68 landmarks; faceapi: face-api's axis-aligned\n"
            "                 crop; mtcnn5: the dlib chip on MTCNN's five points)\n"
            "  --subset N     the first N positive and N negative pairs of every fold\n"
            "  --cache FILE   keep embeddings in FILE (e.g. build/lfw-embeddings.bin)\n");
}

static int parse_model_mask(const char *s, unsigned *mask)
{
    if (strcmp(s, "all") == 0)
        *mask = (1u << FL_EVAL_SCORER_COUNT_) - 1;
    else if (strcmp(s, "dlib") == 0)
        *mask = 1u << FL_EVAL_DLIB;
    else if (strcmp(s, "mobilefacenet") == 0 || strcmp(s, "mfn") == 0)
        *mask = 1u << FL_EVAL_MFN;
    else if (strcmp(s, "fused") == 0)
        *mask = 1u << FL_EVAL_FUSED;
    else if (strcmp(s, "zfusion") == 0)
        *mask = 1u << FL_EVAL_ZFUSION;
    else
        return -1;
    return 0;
}

static int eval_lfw(int argc, char **argv)
{
    struct fl_eval_lfw_opts o;
    struct fl_eval_lfw_result r;
    struct fl_err e;
    struct bar b = {isatty(2) != 0, NULL};
    bool json = false;

    memset(&o, 0, sizeof(o));
    o.images_dir = "../shared/data/lfw/lfw-deepfunneled-250x250";
    o.pairs_path = "../shared/data/lfw/pairs.txt";
    o.models_dir = "models";
    o.progress.fn = bar_fn;
    o.progress.ctx = &b;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--images") == 0)
            o.images_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--pairs") == 0)
            o.pairs_path = opt_value(argc, argv, &i);
        else if (strcmp(a, "--models") == 0)
            o.models_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--cache") == 0)
            o.cache_path = opt_value(argc, argv, &i);
        else if (strcmp(a, "--threads") == 0)
            o.threads = opt_int(argc, argv, &i);
        else if (strcmp(a, "--subset") == 0)
            o.pairs_per_block = opt_int(argc, argv, &i);
        else if (strcmp(a, "--flip") == 0)
            o.flip = true;
        else if (strcmp(a, "--flip-only") == 0)
            o.flip = o.no_plain = true;
        else if (strcmp(a, "--centre-crop") == 0)
            o.centre_crop = true;
        else if (strcmp(a, "--dlib-align") == 0) {
            const char *v = opt_value(argc, argv, &i);
            if (strcmp(v, "dlib68") == 0)
                o.dlib_align = FL_EVAL_ALIGN_DLIB68;
            else if (strcmp(v, "faceapi") == 0)
                o.dlib_align = FL_EVAL_ALIGN_FACEAPI;
            else if (strcmp(v, "mtcnn5") == 0)
                o.dlib_align = FL_EVAL_ALIGN_MTCNN5;
            else {
                fprintf(stderr, "facelink eval lfw: unknown alignment '%s'\n", v);
                return 2;
            }
        }
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--model") == 0) {
            if (parse_model_mask(opt_value(argc, argv, &i), &o.scorers) != 0) {
                fprintf(stderr, "facelink eval lfw: unknown model '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            lfw_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "facelink eval lfw: unknown option '%s'\n", a);
            lfw_usage(stderr);
            return 2;
        }
    }
    if (fl_eval_lfw(&o, &r, &e) != FL_OK) {
        fprintf(stderr, "facelink eval lfw: %s\n", e.msg);
        return 1;
    }
    if (json) {
        printf("{\"folds\":%d,\"pairs\":%d,\"images\":%d,\"no_face\":%d,\"centre_crop\":%d,"
               "\"pairs_missing\":%d,\"embedded\":%d,\"seconds\":%.1f,\"rows\":[",
               r.n_folds, r.n_pairs, r.n_images, r.n_no_face, r.n_centre_crop, r.n_pairs_missing,
               r.n_embedded, r.seconds);
        for (int k = 0; k < r.n_rows; k++) {
            const struct fl_eval_lfw_row *w = &r.rows[k];
            printf("%s{\"model\":\"%s\",\"flip\":%s,\"accuracy\":%.5f,\"std\":%.5f,"
                   "\"accuracy_found\":%.5f,\"threshold\":%.5f,\"tar_at_far_1e-3\":%.5f}",
                   k ? "," : "", fl_eval_scorer_name(w->scorer), w->flip ? "true" : "false",
                   w->acc_mean, w->acc_std, w->acc_found_mean, w->threshold_mean,
                   w->tar_at_far_1e3);
        }
        printf("]}\n");
        return 0;
    }
    printf("LFW %d-fold protocol: %d pairs, %d images, %d without a detected face%s\n",
           r.n_folds, r.n_pairs, r.n_images, r.n_no_face,
           r.n_centre_crop ? " (embedded from a centre crop: --centre-crop)" : "");
    if (r.n_no_face && !r.n_centre_crop)
        printf("  %d pairs with a missing face are counted as errors\n", r.n_pairs_missing);
    printf("  %-14s %-5s %-18s %-14s %-10s %s\n", "model", "flip", "accuracy", "found pairs",
           "threshold", "TAR@FAR1e-3");
    for (int k = 0; k < r.n_rows; k++) {
        const struct fl_eval_lfw_row *w = &r.rows[k];
        printf("  %-14s %-5s %6.2f%% +- %5.2f%%   %6.2f%%        %-10.4f %6.2f%%\n",
               fl_eval_scorer_name(w->scorer), w->flip ? "yes" : "no", 100 * w->acc_mean,
               100 * w->acc_std, 100 * w->acc_found_mean, w->threshold_mean,
               100 * w->tar_at_far_1e3);
    }
    printf("  %d images embedded in this run, %.1f s\n", r.n_embedded, r.seconds);
    return 0;
}

static int eval_detect(int argc, char **argv)
{
    struct fl_eval_detect_opts o;
    struct fl_eval_detect_result r;
    struct fl_err e;
    struct bar b = {isatty(2) != 0, NULL};
    bool json = false;

    memset(&o, 0, sizeof(o));
    o.data_dir = "../shared/data/detect";
    o.lfw_dir = "../shared/data/lfw/lfw-deepfunneled-250x250";
    o.models_dir = "models";
    o.progress.fn = bar_fn;
    o.progress.ctx = &b;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--data") == 0)
            o.data_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--lfw") == 0)
            o.lfw_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--no-lfw") == 0)
            o.lfw_dir = NULL;
        else if (strcmp(a, "--models") == 0)
            o.models_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--threads") == 0)
            o.threads = opt_int(argc, argv, &i);
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: facelink eval detect [--data DIR] [--lfw DIR | --no-lfw] [--threads N]\n"
                   "                            [--models DIR] [--json]\n");
            return 0;
        } else {
            fprintf(stderr, "facelink eval detect: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (fl_eval_detect(&o, &r, &e) != FL_OK) {
        fprintf(stderr, "facelink eval detect: %s\n", e.msg);
        return 1;
    }
    if (json) {
        printf("{\"boxes\":%d,\"boxes_found\":%d,\"box_images\":%d,\"extra\":%d,\"lfw\":%d,"
               "\"lfw_centre\":%d,\"lfw_any\":%d,\"negative_images\":%d,"
               "\"negative_detections\":%d,\"negative_images_with_detection\":%d,"
               "\"seconds\":%.1f}\n",
               r.n_boxes, r.n_boxes_found, r.n_box_images, r.n_extra, r.n_lfw, r.n_lfw_found,
               r.n_lfw_any, r.n_negative, r.n_negative_fp, r.n_negative_images_fp, r.seconds);
        return 0;
    }
    printf("detection (fl_face_detect: MTCNN):\n");
    printf("  recall at IoU 0.5: %d/%d labelled boxes (%.2f%%) in %d images; %d unmatched "
           "detections\n",
           r.n_boxes_found, r.n_boxes, r.n_boxes ? 100.0 * r.n_boxes_found / r.n_boxes : 0,
           r.n_box_images, r.n_extra);
    if (r.n_lfw)
        printf("  LFW: %d/%d images (%.2f%%) with a face within 40 px of the centre, %d with "
               "any face\n",
               r.n_lfw_found, r.n_lfw, 100.0 * r.n_lfw_found / r.n_lfw, r.n_lfw_any);
    printf("  negatives: %d detections in %d of %d images without faces\n", r.n_negative_fp,
           r.n_negative_images_fp, r.n_negative);
    printf("  %.1f s\n", r.seconds);
    return 0;
}

static int eval_calibrate(int argc, char **argv)
{
    struct fl_eval_calibrate_opts o;
    struct fl_eval_calibrate_result r;
    struct fl_err e;
    struct bar b = {isatty(2) != 0, NULL};
    char command[2048];
    size_t len = 0;

    memset(&o, 0, sizeof(o));
    o.images_dir = "../shared/data/lfw/lfw-deepfunneled-250x250";
    o.models_dir = "models";
    o.progress.fn = bar_fn;
    o.progress.ctx = &b;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--images") == 0)
            o.images_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--models") == 0)
            o.models_dir = opt_value(argc, argv, &i);
        else if (strcmp(a, "--cache") == 0)
            o.cache_path = opt_value(argc, argv, &i);
        else if (strcmp(a, "--out") == 0)
            o.out_c_path = opt_value(argc, argv, &i);
        else if (strcmp(a, "--threads") == 0)
            o.threads = opt_int(argc, argv, &i);
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: facelink eval calibrate [--images DIR] [--cache FILE] [--out FILE.c]\n"
                   "                               [--threads N] [--models DIR]\n"
                   "  --out src/face/calibration_table.c   write the generated table\n");
            return 0;
        } else {
            fprintf(stderr, "facelink eval calibrate: unknown option '%s'\n", a);
            return 2;
        }
    }
    /* the command recorded in the generated file: this one, from the binary's name on */
    len = (size_t)snprintf(command, sizeof(command), "build/facelink eval");
    for (int i = 0; i < argc && len < sizeof(command); i++)
        len += (size_t)snprintf(command + len, sizeof(command) - len, " %s", argv[i]);
    o.command = command;
    if (fl_eval_calibrate(&o, &r, &e) != FL_OK) {
        fprintf(stderr, "facelink eval calibrate: %s\n", e.msg);
        return 1;
    }
    printf("calibration on %d LFW images (%d without a detected face, left out); %d embedded "
           "in this run\n",
           r.n_images, r.n_no_face, r.n_embedded);
    for (int m = 0; m < r.n_models; m++) {
        const struct fl_eval_cal_model *cm = &r.models[m];
        printf("%s: %lld cross-identity pairs, %lld same-identity pairs\n", cm->name,
               cm->n_impostor, cm->n_genuine);
        printf("  %-10s %-10s %-12s %s\n", "similarity", "distance", "FMR", "TMR");
        for (int k = 0; k < cm->n_points; k++)
            printf("  %-10.0f %-10.4f %-12.3g %.4f\n", cm->points[k].similarity,
                   cm->points[k].distance, cm->points[k].fmr, cm->points[k].tmr);
    }
    printf("%.1f s (all pairs: %.1f s)%s%s\n", r.seconds, r.seconds_pairs,
           o.out_c_path ? "; wrote " : "", o.out_c_path ? o.out_c_path : "");
    return 0;
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: facelink eval lfw|detect|calibrate [OPTIONS]  (--help after each)\n");
}

int fl_cli_eval(int argc, char **argv)
{
    if (argc < 2) {
        eval_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "lfw") == 0)
        return eval_lfw(argc - 1, argv + 1);
    if (strcmp(argv[1], "detect") == 0)
        return eval_detect(argc - 1, argv + 1);
    if (strcmp(argv[1], "calibrate") == 0)
        return eval_calibrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        eval_usage(stdout);
        return 0;
    }
    fprintf(stderr, "facelink eval: unknown sub-command '%s'\n", argv[1]);
    eval_usage(stderr);
    return 2;
}
