/*
 * faceapi.h: face-api (@vladmandic/face-api 1.7.15) nets as nn models
 * (library-internal, used by face/).
 *
 * Three parts:
 *   1. A reader for tfjs weight manifests (`*-weights_manifest.json` plus the
 *      `.bin` shards it names): every tensor by name with its shape, as
 *      float32 (uint8/uint16 quantised and float16 tensors are dequantised the
 *      way tfjs does it) or int32.
 *   2. Hand-written builders that turn those tensors into nn graphs for the
 *      seven face-api nets (see enum fl_nn_faceapi_net), folding what tfjs
 *      runs as separate ops (conv bias + "scale layer", batch norm) into the
 *      conv weights, converting the tfjs layouts to nn.h's and resolving TF
 *      SAME padding into explicit pads.
 *   3. Pre- and post-processing helpers: the per-net input normalisation
 *      (recorded as model metadata so a model loaded from a .flm file still
 *      knows it) and the SSD anchor decoding.
 *
 * Metadata every built model carries (fl_nn_model_meta()):
 *   "model_id"      e.g. "dlib-resnet128@face-api-1.7.15"
 *   "net"           the face-api file stem, e.g. "face_recognition_model"
 *   "input_size"    side of the square input ("150"), or "0" when the input
 *                   is dynamic (tiny_face_detector: any multiple of 32)
 *   "input_default" the side used when the caller has no preference
 *   "input_layout"  "NHWC RGB"
 *   "pre"           "sub_div": y = (x - pre_sub[c]) / pre_div, or
 *                   "div_sub": y = x / pre_div - pre_sub[c]
 *                   (float32 arithmetic in that order, as face-api does)
 *   "pre_sub"       three numbers "r,g,b"
 *   "pre_div"       one number
 *   "outputs"       a short description of the graph outputs
 *   "weights_sha256" sha256 of the weight bytes (all shards concatenated)
 *   SSD only: "ssd_anchors" the 5118 anchors (y1,x1,y2,x2) as base64 of
 *   little-endian float32, so that decoding works from a .flm file too.
 *
 * Threading: the weights object is immutable after loading and may be read
 * from any thread. Builders are re-entrant. The helpers are pure functions.
 */
#ifndef FL_NN_FACEAPI_H
#define FL_NN_FACEAPI_H

#include "nn/nn.h"

/* ============================ Weight manifests ============================ */

enum fl_nn_faceapi_dtype {
    FL_NN_FACEAPI_F32 = 0, /* float32 (also what quantised float tensors become) */
    FL_NN_FACEAPI_I32 = 1, /* int32 (SSD's helper constants) */
};

#define FL_NN_FACEAPI_MAX_RANK 6

/* One tensor of a manifest. Plain value type; the weights object owns it. */
struct fl_nn_faceapi_tensor {
    const char *name;                  /* owned by the weights object */
    int rank;                          /* 0..FL_NN_FACEAPI_MAX_RANK */
    int shape[FL_NN_FACEAPI_MAX_RANK]; /* dims, rank of them used */
    size_t n;                          /* element count (product of shape; 1 for rank 0) */
    enum fl_nn_faceapi_dtype dtype;
    const float *f32;   /* n values when dtype is F32, else NULL */
    const int32_t *i32; /* n values when dtype is I32, else NULL */
};

struct fl_nn_faceapi_weights;

/* Load a tfjs weight manifest and the shards it names (paths relative to
 * the manifest's folder; absolute paths and ".." are refused). Dequantises:
 * uint8/uint16 -> float32(q*scale + min) computed in double (tfjs), int32
 * tensors get round-half-up of the same, float16 is widened. Every size is
 * checked against the shard bytes: a manifest that does not add up gives
 * FL_ERR_CORRUPT, a missing file FL_ERR_NOT_FOUND. NULL on failure with err
 * set. Free with fl_nn_faceapi_weights_free(). */
struct fl_nn_faceapi_weights *fl_nn_faceapi_weights_load(const char *manifest_path,
                                                         struct fl_err *err);
/* The same from memory: json is the manifest text, shards[i] / shard_lens[i]
 * are the shard bytes in manifest order (all groups' paths, in order). The
 * buffers are borrowed for the call only. */
struct fl_nn_faceapi_weights *fl_nn_faceapi_weights_load_mem(const char *json, size_t json_len,
                                                             const void *const *shards,
                                                             const size_t *shard_lens,
                                                             size_t n_shards, struct fl_err *err);
/* NULL is a no-op. */
void fl_nn_faceapi_weights_free(struct fl_nn_faceapi_weights *w);
/* Tensor by name, or NULL. Borrowed for the weights' lifetime. */
const struct fl_nn_faceapi_tensor *fl_nn_faceapi_weights_get(const struct fl_nn_faceapi_weights *w,
                                                             const char *name);
size_t fl_nn_faceapi_weights_count(const struct fl_nn_faceapi_weights *w);
/* Tensor i in manifest order (i < count). */
const struct fl_nn_faceapi_tensor *fl_nn_faceapi_weights_at(const struct fl_nn_faceapi_weights *w,
                                                            size_t i);
/* Bytes of weight data the manifest describes, and the shard bytes present
 * (equal for a well-formed package; more shard bytes than described is
 * tolerated, as tfjs does). */
size_t fl_nn_faceapi_weights_bytes_used(const struct fl_nn_faceapi_weights *w);
size_t fl_nn_faceapi_weights_bytes_total(const struct fl_nn_faceapi_weights *w);
/* Lowercase hex sha256 of all shard bytes concatenated (65 chars with NUL). */
const char *fl_nn_faceapi_weights_sha256(const struct fl_nn_faceapi_weights *w);

/* ================================ Builders ================================ */

enum fl_nn_faceapi_net {
    FL_NN_FACEAPI_RECOGNITION = 0,     /* dlib ResNet-29: 150x150x3 -> {1,1,128} */
    FL_NN_FACEAPI_LANDMARK68 = 1,      /* 112x112x3 -> {1,1,136} (x0,y0,...) in [0,1] */
    FL_NN_FACEAPI_LANDMARK68_TINY = 2, /* 112x112x3 -> {1,1,136} */
    FL_NN_FACEAPI_AGE_GENDER = 3,      /* 112x112x3 -> 0: {1,1,1} age, 1: {1,1,2} gender logits */
    FL_NN_FACEAPI_EXPRESSION = 4,      /* 112x112x3 -> {1,1,7} logits */
    FL_NN_FACEAPI_SSD = 5,             /* 512x512x3 -> 0..5 box encodings, 6..11 class logits */
    FL_NN_FACEAPI_TINY_DETECTOR = 6,   /* SxSx3 (face-api: S % 32 == 0) -> {S/32,S/32,25} */
    FL_NN_FACEAPI_NET_COUNT_
};

/* The face-api file stem of a net ("face_recognition_model"); the manifest
 * is "<stem>-weights_manifest.json". NULL for an out-of-range value. */
const char *fl_nn_faceapi_net_stem(enum fl_nn_faceapi_net net);

/* Build the graph of `net` from loaded weights and make it a model (see the
 * metadata list at the top). Checks every tensor it uses for presence, dtype
 * and shape: a mismatch gives FL_ERR_CORRUPT naming the tensor. NULL on
 * failure with err set. The caller owns the returned reference
 * (fl_nn_model_unref()). The weights may be freed afterwards. */
struct fl_nn_model *fl_nn_faceapi_build(enum fl_nn_faceapi_net net,
                                        const struct fl_nn_faceapi_weights *w, struct fl_err *err);
/* Convenience: load "<model_dir>/<stem>-weights_manifest.json" and build. */
struct fl_nn_model *fl_nn_faceapi_load(enum fl_nn_faceapi_net net, const char *model_dir,
                                       struct fl_err *err);

/* ============================ Pre-processing ============================ */

/* The input normalisation of a model, read from its metadata. */
struct fl_nn_faceapi_prep {
    bool div_first; /* true: x / div - sub[c]; false: (x - sub[c]) / div */
    float sub[3];   /* per channel, RGB */
    float div;
};

/* Read "pre", "pre_sub" and "pre_div" from m. FL_ERR_CORRUPT when absent or
 * malformed (not a face-api model). */
enum fl_status fl_nn_faceapi_prep_get(const struct fl_nn_model *m,
                                      struct fl_nn_faceapi_prep *out_prep, struct fl_err *err);
/* Normalise n_pixels packed RGB pixels (3 values each) into out (3 floats
 * each), in float32 with face-api's operation order. out may not alias in. */
void fl_nn_faceapi_prep_u8(const struct fl_nn_faceapi_prep *p, const uint8_t *rgb, size_t n_pixels,
                           float *out);
/* The same for float RGB in 0..255 (face-api's unrounded crops). out may
 * equal rgb (in place). */
void fl_nn_faceapi_prep_f32(const struct fl_nn_faceapi_prep *p, const float *rgb, size_t n_pixels,
                            float *out);

/* ============================ SSD post-processing ============================ */

#define FL_NN_FACEAPI_SSD_ANCHORS 5118

/* The SSD anchors (y1,x1,y2,x2 relative to the padded square) from a model's
 * "ssd_anchors" metadata into out_anchors[FL_NN_FACEAPI_SSD_ANCHORS * 4].
 * FL_ERR_CORRUPT when absent or of the wrong size. */
enum fl_status fl_nn_faceapi_ssd_anchors(const struct fl_nn_model *m, float *out_anchors,
                                         struct fl_err *err);
/* Decode the 12 outputs of an SSD executor after a run: the box encodings of
 * every anchor (in face-api's order: predictor 0..5, then row, column,
 * anchor) become corner boxes (y1,x1,y2,x2) into out_boxes[n*4], and
 * sigmoid(class logit 1) into out_scores[n], n = FL_NN_FACEAPI_SSD_ANCHORS.
 * Float32 arithmetic in face-api's order. FL_ERR_INVALID_ARG when the
 * executor's outputs do not have the SSD shapes. */
enum fl_status fl_nn_faceapi_ssd_decode(struct fl_nn_exec *e, const float *anchors,
                                        float *out_boxes, float *out_scores, struct fl_err *err);

/* ========================= Tiny detector post-processing ========================= */

/* One decoded cell/anchor of the tiny face detector (TinyYolov2Base
 * extractBoxes, computed in double as face-api's JavaScript does). The box
 * is relative to the square net input ([0,1] = S pixels). face-api maps it
 * to image pixels with the pad-to-square correction factor cf = S /
 * round(side * S / max(W, H)) per axis: x_px = x * cf_x * W (likewise y,
 * w, h); non-maximum suppression is the caller's. */
struct fl_nn_faceapi_tiny_box {
    double x, y, w, h; /* top-left and size, relative to the input square */
    double score;      /* sigmoid(conf) */
    int row, col, anchor;
};

/* Decode the tiny detector's output grid {g, g, 25} (channel = anchor*5 +
 * (tx, ty, tw, th, conf)): every cell and anchor whose score is > min_score
 * (face-api's test) goes to out, in row, column, anchor order, up to cap
 * entries. Returns the number of candidates, which may exceed cap (then
 * only the first cap were written). */
size_t fl_nn_faceapi_tiny_decode(const float *grid, int g, double min_score,
                                 struct fl_nn_faceapi_tiny_box *out, size_t cap);

#endif /* FL_NN_FACEAPI_H */
