/*
 * detect.h: face detectors (library-internal to face/).
 *
 * Each detector turns an RGB image into candidate faces: a pixel box, a
 * score in [0,1] and, when the detector has them, five landmarks (eye
 * centres, nose tip, mouth corners; image-left first). The pipeline
 * (pipeline.c) chooses a detector, then refines landmarks and aligns.
 *
 * Threading: a detector's models are immutable and shared; its *_exec
 * object holds one thread's executors and scratch.
 */
#ifndef FL_FACE_DETECT_H
#define FL_FACE_DETECT_H

#include "face/geom.h"
#include "nn/nn.h"

struct fl_image;

/* One detected face. */
struct fl__det {
    struct fl_face_box box; /* pixels */
    float score;            /* [0, 1] */
    float pts5[10];         /* eyes, nose, mouth corners (x, y), when has_pts5 */
    bool has_pts5;
};

/* ============================== MTCNN ============================== */

struct fl__mtcnn;
struct fl__mtcnn_exec;

struct fl__mtcnn_params {
    float min_face_px; /* smallest face searched for, >= 12 */
    float factor;      /* pyramid step, facenet's 0.709 */
    float thresh[3];   /* PNet, RNet, ONet score thresholds */
};

/* Where one executor's detections spent their time (thread CPU ns per
 * stage, resampling and NMS included) and how much work each stage had. */
struct fl__mtcnn_stats {
    uint64_t ns[3]; /* PNet pyramid, RNet, ONet */
    long n_in[3];   /* [0] unused; [1] RNet and [2] ONet candidates */
    long n_levels;  /* pyramid levels run */
    long n_detect;  /* fl__mtcnn_detect() calls */
};

/* Load pnet/rnet/onet from the models folder (converted .flm files when
 * current, else expo's .tflite). NULL with err set on failure. */
struct fl__mtcnn *fl__mtcnn_load(const char *models_dir, struct fl_err *err);
void fl__mtcnn_free(struct fl__mtcnn *m);
/* One thread's executors for m (borrowed; must outlive it). */
struct fl__mtcnn_exec *fl__mtcnn_exec_new(struct fl__mtcnn *m, enum fl_nn_backend backend,
                                          struct fl_err *err);
void fl__mtcnn_exec_free(struct fl__mtcnn_exec *x);
/* Copy x's statistics since creation or the last reset into *out (if not
 * NULL); zero them when reset. */
void fl__mtcnn_exec_stats(struct fl__mtcnn_exec *x, struct fl__mtcnn_stats *out, bool reset);
/* Defaults for an image: min face scaled from Rekognition's 40 px at 1920. */
void fl__mtcnn_params_default(const struct fl_image *img, struct fl__mtcnn_params *p);
/* Detect faces. *out (fl_free) gets *n_out detections, best score first. */
enum fl_status fl__mtcnn_detect(struct fl__mtcnn_exec *x, const struct fl_image *img,
                                const struct fl__mtcnn_params *p, struct fl__det **out, int *n_out,
                                struct fl_err *err);

/* ====================== face-api SSD and Tiny YOLO ====================== */

struct fl__faceapi_det;
struct fl__faceapi_det_exec;

/* Load ssd_mobilenetv1 and tiny_face_detector from face-api's model dir. */
struct fl__faceapi_det *fl__faceapi_det_load(const char *model_dir, struct fl_err *err);
void fl__faceapi_det_free(struct fl__faceapi_det *d);
struct fl__faceapi_det_exec *
fl__faceapi_det_exec_new(struct fl__faceapi_det *d, enum fl_nn_backend backend, struct fl_err *err);
void fl__faceapi_det_exec_free(struct fl__faceapi_det_exec *x);
/* face-api's SSD at 512 (its default min_score: 0.5). Best score first. */
enum fl_status fl__faceapi_ssd_detect(struct fl__faceapi_det_exec *x, const struct fl_image *img,
                                      float min_score, struct fl__det **out, int *n_out,
                                      struct fl_err *err);
/* face-api's Tiny YOLOv2 at size (a multiple of 32; face-api's default 416,
 * min_score 0.5). Best score first. */
enum fl_status fl__faceapi_tiny_detect(struct fl__faceapi_det_exec *x, const struct fl_image *img,
                                       int size, float min_score, struct fl__det **out, int *n_out,
                                       struct fl_err *err);

#endif /* FL_FACE_DETECT_H */
