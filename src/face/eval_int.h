/*
 * eval_int.h: internals shared by the evaluation files of face/
 * (eval_set.c, eval_lfw.c, eval_detect.c, calibrate.c). Not for other modules.
 */
#ifndef FL_FACE_EVAL_INT_H
#define FL_FACE_EVAL_INT_H

#include "facelink_eval.h"
#include "face/face.h"

#include <stdint.h>

/* The embedding variants kept per image. */
enum fl__eval_var {
    FL__VAR_DLIB = 0,      /* dlib, plain */
    FL__VAR_DLIB_FLIP = 1, /* dlib, mean of the chip and its mirror image */
    FL__VAR_MFN = 2,       /* MobileFaceNet, plain (L2-normalised) */
    FL__VAR_MFN_FLIP = 3,  /* MobileFaceNet, normalised sum of chip and mirror */
    FL__VAR_CACHED_ = 4,   /* the variants above are embedded and cached */
    FL__VAR_FUSED = 4,     /* the fused model, made from the two flip variants (embed.c) */
    FL__VAR_COUNT_
};

/* fl__lfw_set.have[] bits: one per cached variant, then the detection
 * outcome. Whether image i has a variant: fl__lfw_set_has(). */
enum {
    FL__HAVE_DONE = 1u << 4,    /* this image was processed */
    FL__HAVE_NOFACE = 1u << 5,  /* no face was detected */
    FL__HAVE_CENTRE = 1u << 6,  /* embedded from the centre crop (no face detected) */
};

/* Every image of an LFW folder (people sorted by name, images by number)
 * and, per image, the embeddings computed so far. */
struct fl__lfw_set {
    int n_people, n_images;
    char **people;    /* person names, sorted (owned) */
    int *first;       /* per person: index of its first image */
    int *count;       /* per person: number of images */
    int *person;      /* per image: person index */
    uint8_t *have;    /* per image: FL__HAVE_* and 1u << variant bits */
    float *emb[FL__VAR_COUNT_]; /* per variant: n_images x dim (dim of its model) */
    char *dir;        /* the images folder (owned) */
    bool centre_crop; /* embeddings made with the centre-crop fallback */
    int dlib_align;   /* enum fl_eval_align: what the dlib embeddings were fed */
};

/* Does image i have variant v (FL__VAR_FUSED: both flip variants)? */
bool fl__lfw_set_has(const struct fl__lfw_set *s, int i, enum fl__eval_var v);

/* Dimension and face model of a variant. */
int fl__eval_var_dim(enum fl__eval_var v);
enum fl_face_model fl__eval_var_model(enum fl__eval_var v);

/* List dir (one folder per person, files Name_NNNN.jpg). Returns FL_OK and
 * fills *s (fl__lfw_set_free()), or an error naming the folder. */
enum fl_status fl__lfw_set_open(const char *dir, bool centre_crop, int dlib_align,
                                struct fl__lfw_set *s, struct fl_err *err);
void fl__lfw_set_free(struct fl__lfw_set *s);
/* Image index of (name, number 1..), or -1. */
int fl__lfw_set_find(const struct fl__lfw_set *s, const char *name, int number);

/* Load what a cache file holds for this set (same images, same centre-crop
 * and crop settings); a missing or mismatching file is not an error (nothing loaded).
 * Save writes the whole set atomically. */
enum fl_status fl__lfw_set_load(struct fl__lfw_set *s, const char *path, struct fl_err *err);
enum fl_status fl__lfw_set_save(const struct fl__lfw_set *s, const char *path,
                                struct fl_err *err);

/* Make sure every image with need_img[i] (NULL: all images) has the variant
 * bits in var_mask, embedding the ones missing with `threads` threads.
 * *n_embedded gets how many images were processed. */
enum fl_status fl__lfw_set_embed(struct fl__lfw_set *s, const uint8_t *need_img,
                                 unsigned var_mask, const char *models_dir, int threads,
                                 const struct fl_eval_progress *progress, int *n_embedded,
                                 struct fl_err *err);

/* A parallel loop: fn(worker, i, ctx, err) for i in [0, n) over `threads`
 * threads (0: online CPUs), each with its own face worker on engine e. Stops
 * at the first error and returns it. Progress is reported from the calling
 * thread under `stage`. */
enum fl_status fl__eval_parallel(struct fl_face_engine *e, int n, int threads,
                                 enum fl_status (*fn)(struct fl_face_worker *w, int i, void *ctx,
                                                      struct fl_err *err),
                                 void *ctx, const struct fl_eval_progress *progress,
                                 const char *stage, struct fl_err *err);

/* Online CPUs (>= 1). */
int fl__eval_cpus(void);

/* Read and decode one image file (no minimum size; EXIF applied). */
enum fl_status fl__eval_load_image(const char *path, struct fl_image *out, struct fl_err *err);

#endif /* FL_FACE_EVAL_INT_H */
