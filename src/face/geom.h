/*
 * geom.h: face geometry shared by the face pipeline (library-internal).
 *
 * Pure functions over points and boxes: similarity fits and the alignment
 * transforms of each embedder (dlib's 150 px chip, the ArcFace 112 template),
 * head pose from landmarks, box overlap and non-maximum suppression, and the
 * mapping of the 68-point iBUG scheme onto Rekognition's landmark types.
 * No allocation except where stated; safe from any thread.
 *
 * Conventions: points are (x, y) pairs in image pixels with pixel centres at
 * integer coordinates (OpenCV's and dlib's convention). A 2x3 affine matrix
 * M = {a, b, c, d, e, f} maps (x, y) to (a*x + b*y + c, d*x + e*y + f).
 */
#ifndef FL_FACE_GEOM_H
#define FL_FACE_GEOM_H

#include "core/core.h"

/* A box in pixels. */
struct fl_face_box {
    float x, y, w, h;
};

/* Least-squares similarity (rotation, uniform scale, translation; no
 * reflection) mapping src[i] onto dst[i], n >= 2 points (x, y interleaved).
 * Closed form on demeaned points: a = sum(qx*px + qy*py)/sum|p|^2,
 * b = sum(qy*px - qx*py)/sum|p|^2, M = {a, -b, tx, b, a, ty}. Returns false
 * when the source points coincide. */
bool fl_face_similarity_fit(const double *src, const double *dst, int n, double m[6]);
/* Inverse of an affine map; false if singular. */
bool fl_face_affine_invert(const double m[6], double out[6]);

/* dlib's face chip (get_face_chip_details): a similarity fit from chip
 * positions of dlib's 68-point mean face (points 27..54 and 60..64; brows and
 * lower lip ignored) to the detected points, for a size x size chip with the
 * given padding (dlib face recognition: 150, 0.25). lm68 holds 68 (x, y)
 * image points. Writes M mapping IMAGE -> CHIP (the inverse of dlib's
 * chip -> image fit, so it can feed an OpenCV-style warp). */
bool fl_face_dlib_chip_transform(const float lm68[136], int size, double padding, double m[6]);
/* The five points the chip transform implies for eyes, nose and mouth
 * corners with only five landmarks (MODELS.md: 150 px, padding 0.25). */
void fl_face_dlib_chip_5pt(int size, double padding, double out[10]);

/* The ArcFace 112x112 template (insightface): eye centres, nose tip, mouth
 * corners, image-left first. */
extern const double fl_face_arcface_112[10];
/* The five alignment points from 68 landmarks, in template order: eye centres
 * (mean of 36..41, 42..47), nose tip (30), mouth corners (48, 54). */
void fl_face_5pt_from_68(const float lm68[136], double out[10]);
/* M mapping IMAGE -> 112 ArcFace chip, fitted on the five points. */
bool fl_face_arcface_transform(const double pts5[10], double m[6]);

/* Head pose in degrees from 68 landmarks: a scaled-orthographic fit of a
 * generic 3D face (nose tip, chin, eye outer corners, mouth corners) to the
 * image points. Yaw > 0 when the face turns to the image's left (the
 * subject's right), pitch > 0 when it looks up, roll > 0 when it tilts
 * clockwise in the image. Each within [-180, 180]. */
void fl_face_pose(const float lm68[136], float *yaw, float *pitch, float *roll);

/* Intersection over union of two boxes (0 when either is empty). */
float fl_face_iou(const struct fl_face_box *a, const struct fl_face_box *b);
/* Greedy non-maximum suppression: order[] (indices into boxes, n of them)
 * must be sorted by score, best first; a box is kept when its IoU with every
 * kept box is <= iou_max. Writes kept indices to keep[] (room for n) and
 * returns their count. */
int fl_face_nms(const struct fl_face_box *boxes, const int *order, int n, float iou_max, int *keep);

/* Rekognition's landmark types that the 68-point scheme supports, in the
 * spec's enum order. Each is the mean of up to 6 iBUG indices. "Left" means
 * the image's left, as Rekognition's eyeLeft is the eye with the smaller X. */
struct fl_face_landmark_def {
    const char *type; /* Rekognition LandmarkType */
    int n;            /* indices used */
    int idx[6];       /* iBUG 0-based point indices */
};
extern const struct fl_face_landmark_def fl_face_landmark_defs[];
extern const int fl_face_n_landmark_defs;
/* Point for definition i from 68 landmarks. */
void fl_face_landmark_point(const float lm68[136], int i, float *x, float *y);

#endif /* FL_FACE_GEOM_H */
