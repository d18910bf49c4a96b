/*
 * face.h: the face pipeline (library-internal; used by api/).
 *
 * image -> faces: detection (MTCNN), 68 landmarks (face-api landmark68 on the
 * detector box), pose and quality from the landmarks and pixels, optional
 * attributes (face-api age/gender and expression), and on request an
 * embedding per face model, each fed the crop that model was trained on
 * (dlib's 150 px chip for the dlib ResNet, the ArcFace 112 template for
 * MobileFaceNet).
 *
 * Objects:
 *   struct fl_face_engine  every model, loaded once, immutable, shared by all
 *                          threads;
 *   struct fl_face_worker  one thread's executors and scratch (not shared).
 *
 * Coordinates are pixels of the image passed in (already EXIF-oriented);
 * api/ turns them into Rekognition's ratios.
 */
#ifndef FL_FACE_H
#define FL_FACE_H

#include "face/geom.h"
#include "nn/nn.h"

struct fl_image;

/* =============================== Face models =============================== */

enum fl_face_model {
    FL_FACE_MODEL_DLIB = 0, /* dlib ResNet-29, 128-d, Euclidean (the default) */
    FL_FACE_MODEL_MFN = 1,  /* MobileFaceNet, 192-d, L2-normalised, cosine */
    FL_FACE_MODEL_COUNT_
};

#define FL_FACE_MAX_DIM 192

struct fl_face_model_info {
    const char *name;               /* short name for --model: "dlib", "mobilefacenet" */
    const char *id;                 /* provenance id: "dlib-resnet128@face-api-1.7.15" */
    const char *face_model_version; /* Rekognition FaceModelVersion string: "101.0" */
    int dim;                        /* embedding dimension */
    bool normalised;                /* vectors are L2-normalised (compare by cosine) */
    const char *metric;             /* "euclidean" or "cosine" */
    const char *alignment;          /* human description of the crop */
};

const struct fl_face_model_info *fl_face_model_info(enum fl_face_model m);
/* By name, id or FaceModelVersion; false if unknown. */
bool fl_face_model_parse(const char *s, enum fl_face_model *out);
/* Distance between two embeddings of model m: Euclidean for dlib, 1 - cosine
 * for normalised models. Lower is more similar. */
float fl_face_distance(enum fl_face_model m, const float *a, const float *b);

/* ================================ Engine ================================ */

struct fl_face_engine_config {
    const char *models_dir;     /* where scripts/setup unpacked the npm packages ("models") */
    enum fl_nn_backend backend; /* XNNPACK (default) or the reference */
};

struct fl_face_engine;
struct fl_face_worker;

/* Load every model. NULL with err set (FL_ERR_NOT_FOUND names the missing
 * file and says to run scripts/setup). */
struct fl_face_engine *fl_face_engine_new(const struct fl_face_engine_config *cfg,
                                          struct fl_err *err);
void fl_face_engine_free(struct fl_face_engine *e);

/* A worker for one thread at a time; e must outlive it. */
struct fl_face_worker *fl_face_worker_new(struct fl_face_engine *e, struct fl_err *err);
void fl_face_worker_free(struct fl_face_worker *w);

/* ================================= Faces ================================= */

enum fl_face_attr_flags {
    FL_FACE_ATTR_AGE_GENDER = 1u << 0, /* age range and gender */
    FL_FACE_ATTR_EXPRESSION = 1u << 1, /* emotions and smile */
};

/* face-api's seven expressions, in its output order. */
enum { FL_FACE_N_EXPRESSIONS = 7 };
extern const char *const fl_face_expression_names[FL_FACE_N_EXPRESSIONS];

struct fl_face {
    struct fl_face_box box; /* detector box, pixels */
    float confidence;       /* detector score, 0..100 */
    float lm68[136];        /* iBUG 68 points, pixels */
    float yaw, pitch, roll; /* degrees */
    float brightness;       /* 0..100: mean luma of the face box */
    float sharpness;        /* 0..100: from the Laplacian variance of the aligned chip */
    float eyes_open;        /* eye aspect ratio (landmarks) */
    float mouth_open;       /* inner-lip gap over mouth width (landmarks) */
    unsigned attrs;         /* which of the fields below are set (fl_face_attr_flags) */
    float age;              /* years */
    float male;             /* probability the face is male, 0..1 */
    float expression[FL_FACE_N_EXPRESSIONS]; /* softmax, face-api order */
};

/* Detect every face in img, largest box first, at most max_faces (0 = no
 * limit), with landmarks, pose and quality, and the attributes in attrs.
 * *out (fl_free) receives *n_out faces; zero faces is not an error. */
enum fl_status fl_face_detect(struct fl_face_worker *w, const struct fl_image *img, unsigned attrs,
                              int max_faces, struct fl_face **out, int *n_out,
                              struct fl_err *err);

/* Warp the size x size image that M (image -> output, 2x3) defines from img,
 * bilinear with a pyramid prefilter when shrinking; only M's footprint in img
 * is cropped (zeros outside img) and warped, so a large photo is never
 * filtered whole. out is allocated (fl_image_free()). */
enum fl_status fl_face_warp(const struct fl_image *img, const double m[6], int size,
                            struct fl_image *out, struct fl_err *err);

/* The aligned chip model m is fed for face f (150x150 for dlib, 112x112 for
 * MobileFaceNet), as an RGB image (caller fl_image_free()s). */
enum fl_status fl_face_chip(struct fl_face_worker *w, const struct fl_image *img,
                            const struct fl_face *f, enum fl_face_model m,
                            struct fl_image *out_chip, struct fl_err *err);

/* Embedding of face f with model m into out (fl_face_model_info(m)->dim
 * floats; L2-normalised for normalised models). */
enum fl_status fl_face_embed(struct fl_face_worker *w, const struct fl_image *img,
                             const struct fl_face *f, enum fl_face_model m, float *out,
                             struct fl_err *err);
/* Embedding from a chip made by fl_face_chip() (re-indexing from retained crops). */
enum fl_status fl_face_embed_chip(struct fl_face_worker *w, const struct fl_image *chip,
                                  enum fl_face_model m, float *out, struct fl_err *err);
/* Embeddings of n chips of model m (n >= 1) into out[n * dim], row i from
 * chips[i]; the same values fl_face_embed_chip() gives one at a time. */
enum fl_status fl_face_embed_chips(struct fl_face_worker *w, const struct fl_image *chips, int n,
                                   enum fl_face_model m, float *out, struct fl_err *err);

#endif /* FL_FACE_H */
