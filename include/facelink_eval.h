/*
 * facelink_eval.h: accuracy measurement (public; used by `facelink eval`).
 *
 * Three measurements, each a plain options struct in and a plain result
 * struct out:
 *
 *   fl_eval_lfw()        LFW verification, the standard 10-fold protocol of
 *                        pairs.txt (threshold chosen on nine folds, tested on
 *                        the tenth), per face model and fused;
 *   fl_eval_detect()     detector recall at IoU 0.5 against dlib's labelled
 *                        boxes, the detection rate over LFW, false positives
 *                        on images without faces;
 *   fl_eval_calibrate()  distance distributions of every cross-identity and
 *                        same-identity LFW pair, and from them the
 *                        distance -> Similarity table (written as C source).
 *
 * Work is spread over opts.threads threads (0 = the online CPUs), each with
 * its own face worker on one shared engine. The progress callback, when set,
 * is called from the calling thread only, a few times a second.
 *
 * Conventions as in facelink.h: enum fl_status returns, struct fl_err *err
 * may be NULL, results written only on success.
 */
#ifndef FL_FACELINK_EVAL_H
#define FL_FACELINK_EVAL_H

#include "facelink.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Progress: `stage` is a short static label ("embedding", "pairs"); done of
 * total units. Called from the calling thread. */
struct fl_eval_progress {
    void (*fn)(void *ctx, const char *stage, long done, long total);
    void *ctx;
};

/* Which scores a result row is about. */
enum fl_eval_scorer {
    FL_EVAL_DLIB = 0,    /* dlib ResNet, Euclidean distance */
    FL_EVAL_MFN = 1,     /* MobileFaceNet, cosine distance */
    FL_EVAL_FUSED = 2,   /* the fused model (FaceModelVersion 103.0, the service default):
                            cosine of the fused vectors; flip-averaged by construction */
    FL_EVAL_ZFUSION = 3, /* score-level fusion (diagnostic): mean of dlib's and
                            MobileFaceNet's z-normalised scores (see fl_eval_lfw) */
    FL_EVAL_SCORER_COUNT_
};

/* What the dlib model is fed (a diagnostic; the API always uses the first). */
enum fl_eval_align {
    FL_EVAL_ALIGN_DLIB68 = 0,  /* dlib chip (150, padding 0.25) fitted on the 68 landmarks */
    FL_EVAL_ALIGN_FACEAPI = 1, /* face-api's own axis-aligned crop (golden/README.md §1) */
    FL_EVAL_ALIGN_MTCNN5 = 2,  /* dlib chip fitted on MTCNN's five points, not landmark68 */
    FL_EVAL_ALIGN_COUNT_
};

/* Short name of a scorer ("dlib", "mobilefacenet", "fused", "zfusion"). */
FL_API const char *fl_eval_scorer_name(enum fl_eval_scorer s);

/* ================================== LFW ================================== */

struct fl_eval_lfw_opts {
    const char *images_dir; /* lfw-deepfunneled-250x250 (one folder per person) */
    const char *pairs_path; /* pairs.txt */
    const char *models_dir; /* "models" */
    int threads;            /* 0: the online CPUs */
    unsigned scorers;       /* bit mask of 1u << enum fl_eval_scorer (0: the fused model,
                               the service default) */
    bool flip;              /* rows with test-time horizontal flip averaging too */
    bool no_plain;          /* with flip: only the flip rows */
    bool centre_crop;       /* when no face is found, embed a fixed centre crop instead
                               of counting an error (off by default; reported) */
    enum fl_eval_align dlib_align; /* diagnostic: what the dlib model is fed */
    int pairs_per_block;    /* 0: all; else the first n positive and first n negative
                               pairs of every fold (the `make test` subset) */
    const char *cache_path; /* NULL: none; else embeddings are read from / written to it */
    struct fl_eval_progress progress;
};

struct fl_eval_lfw_row {
    enum fl_eval_scorer scorer;
    bool flip;
    double acc_mean, acc_std; /* over the 10 test folds; pairs with a missing face are errors */
    double acc_found_mean;    /* the same protocol on the pairs whose two faces were found */
    double threshold_mean;    /* mean chosen threshold (a distance; zfusion: a z-score) */
    double tar_at_far_1e3;    /* all pairs pooled: TAR at the strictest threshold accepting
                                 at most 0.1% of the negative pairs (coarse: 3,000 negatives) */
};

enum { FL_EVAL_LFW_MAX_ROWS = 8 };

struct fl_eval_lfw_result {
    int n_folds, n_pairs;        /* pairs evaluated */
    int n_images;                /* distinct images in those pairs */
    int n_no_face;               /* images without a detected face */
    int n_centre_crop;           /* of those, embedded from the centre crop (opts.centre_crop) */
    int n_pairs_missing;         /* pairs with an image without a face (errors) */
    int n_embedded;              /* images embedded in this run (the rest from the cache) */
    double seconds;              /* wall time */
    int n_rows;
    struct fl_eval_lfw_row rows[FL_EVAL_LFW_MAX_ROWS];
};

FL_API enum fl_status fl_eval_lfw(const struct fl_eval_lfw_opts *opts,
                                  struct fl_eval_lfw_result *out, struct fl_err *err);

/* =============================== Detection =============================== */

struct fl_eval_detect_opts {
    const char *data_dir;   /* data/detect: boxes/{training,testing}.xml, negative/ */
    const char *lfw_dir;    /* lfw-deepfunneled-250x250, or NULL to skip the LFW rate */
    const char *models_dir; /* "models" */
    int threads;            /* 0: the online CPUs */
    struct fl_eval_progress progress;
};

struct fl_eval_detect_result {
    int n_boxes, n_boxes_found; /* labelled boxes; those matched at IoU >= 0.5 (one-to-one) */
    int n_box_images, n_extra;  /* images with boxes; unmatched detections in them */
    int n_lfw, n_lfw_found;     /* LFW images; those with a face within 40 px of the centre */
    int n_lfw_any;              /* LFW images with any face */
    int n_negative, n_negative_fp; /* negative images; detections in them */
    int n_negative_images_fp;      /* negative images with at least one detection */
    double seconds;
};

FL_API enum fl_status fl_eval_detect(const struct fl_eval_detect_opts *opts,
                                     struct fl_eval_detect_result *out, struct fl_err *err);

/* ============================== Calibration ============================== */

enum { FL_EVAL_CAL_POINTS = 8 };

struct fl_eval_cal_point {
    double similarity; /* 0..100 */
    double distance;   /* the distance mapped to it */
    double fmr;        /* measured: cross-identity pairs at distance <= this */
    double tmr;        /* measured: same-identity pairs at distance <= this */
};

struct fl_eval_cal_model {
    const char *name; /* "dlib", "mobilefacenet" */
    long long n_impostor, n_genuine; /* pairs measured */
    int n_points;
    struct fl_eval_cal_point points[FL_EVAL_CAL_POINTS]; /* similarity descending */
};

struct fl_eval_calibrate_opts {
    const char *images_dir; /* lfw-deepfunneled-250x250 */
    const char *models_dir;
    int threads;
    const char *cache_path; /* embeddings cache (see fl_eval_lfw) */
    const char *out_c_path; /* NULL: do not write; else the generated calibration_table.c */
    const char *command;    /* the command line to record in the generated file's header */
    struct fl_eval_progress progress;
};

struct fl_eval_calibrate_result {
    int n_images, n_no_face, n_embedded;
    double seconds, seconds_pairs;
    int n_models;
    struct fl_eval_cal_model models[3]; /* dlib, mobilefacenet, fused (face model order) */
};

FL_API enum fl_status fl_eval_calibrate(const struct fl_eval_calibrate_opts *opts,
                                        struct fl_eval_calibrate_result *out, struct fl_err *err);

#ifdef __cplusplus
}
#endif

#endif /* FL_FACELINK_EVAL_H */
