/*
 * geom.c: similarity fits, alignment transforms, head pose, IoU and NMS, and
 * the 68-point -> Rekognition landmark mapping.
 *
 * Alignment follows each embedder's training-time recipe, because an
 * embedder is only as good as the crop it is fed (MODELS.md §2: the dlib chip
 * separates identities much better than face-api's axis-aligned box):
 *   - dlib ResNet: dlib's get_face_chip_details. dlib fits a similarity from
 *     the CHIP positions of its mean face to the IMAGE landmarks and samples
 *     the chip through that map. A least-squares similarity fit is not
 *     symmetric, so we fit in dlib's direction and invert, rather than
 *     fitting image -> chip.
 *   - MobileFaceNet: insightface's ArcFace 112 template, fitted from the
 *     image's five points to the template (the direction the golden vectors
 *     use).
 * The mean face below is dlib's (average positions of iBUG points 17..67 in
 * a unit square), data from dlib's public-domain-licensed source.
 *
 * Pose: a scaled-orthographic (weak perspective) least-squares fit of six
 * points of a generic 3D head to the image points; the 2x3 projection is
 * orthonormalised into a rotation and decomposed as Rz(roll) Ry(yaw)
 * Rx(pitch). Cheap, needs no camera intrinsics, and accurate to a few
 * degrees for the moderate angles where pose matters to quality filtering.
 */
#include "face/geom.h"

#include <math.h>

/* dlib's mean face, points 17..67 (51 points), x and y in [0,1]. */
static const double dlib_mean_x[51] = {
    0.000213256, 0.0752622, 0.18113,  0.29077,  0.393397, 0.586856, 0.689483, 0.799124,
    0.904991,    0.98004,   0.490127, 0.490127, 0.490127, 0.490127, 0.36688,  0.426036,
    0.490127,    0.554217,  0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743,    0.645647,  0.714428, 0.793132, 0.858516, 0.79751,  0.719335, 0.254149,
    0.340985,    0.428858,  0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127,    0.423532,  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364,    0.490127,  0.42689};
static const double dlib_mean_y[51] = {
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482,
    0.038915, 0.106454, 0.203352,  0.307009,  0.409805,  0.515625,  0.587326,  0.609345,
    0.628106, 0.609345, 0.587326,  0.216423,  0.178758,  0.179852,  0.231733,  0.245099,
    0.244077, 0.231733, 0.179852,  0.178758,  0.216423,  0.244077,  0.245099,  0.780233,
    0.745405, 0.727388, 0.742578,  0.727388,  0.745405,  0.780233,  0.864805,  0.902192,
    0.909281, 0.902192, 0.864805,  0.784792,  0.778746,  0.785343,  0.778746,  0.784792,
    0.824182, 0.831803, 0.824182};

const double fl_face_arcface_112[10] = {38.2946, 51.6963, 73.5318, 51.5014, 56.0252,
                                        71.7366, 41.5493, 92.3655, 70.7299, 92.2041};

bool fl_face_similarity_fit(const double *src, const double *dst, int n, double m[6])
{
    double sx = 0, sy = 0, dx = 0, dy = 0, num_a = 0, num_b = 0, den = 0, a, b;
    FL_ASSERT(n >= 2);
    for (int i = 0; i < n; i++) {
        sx += src[2 * i];
        sy += src[2 * i + 1];
        dx += dst[2 * i];
        dy += dst[2 * i + 1];
    }
    sx /= n;
    sy /= n;
    dx /= n;
    dy /= n;
    for (int i = 0; i < n; i++) {
        double px = src[2 * i] - sx, py = src[2 * i + 1] - sy;
        double qx = dst[2 * i] - dx, qy = dst[2 * i + 1] - dy;
        num_a += qx * px + qy * py;
        num_b += qy * px - qx * py;
        den += px * px + py * py;
    }
    if (!(den > 1e-12))
        return false;
    a = num_a / den;
    b = num_b / den;
    m[0] = a;
    m[1] = -b;
    m[2] = dx - (a * sx - b * sy);
    m[3] = b;
    m[4] = a;
    m[5] = dy - (b * sx + a * sy);
    return true;
}

bool fl_face_affine_invert(const double m[6], double out[6])
{
    double det = m[0] * m[4] - m[1] * m[3];
    if (!(fabs(det) > 1e-15))
        return false;
    out[0] = m[4] / det;
    out[1] = -m[1] / det;
    out[3] = -m[3] / det;
    out[4] = m[0] / det;
    out[2] = -(out[0] * m[2] + out[1] * m[5]);
    out[5] = -(out[3] * m[2] + out[4] * m[5]);
    return true;
}

/* True for the iBUG points dlib's chip fit uses: 27..54 and 60..64. */
static bool dlib_chip_point(int i)
{
    return (i >= 27 && i <= 54) || (i >= 60 && i <= 64);
}

bool fl_face_dlib_chip_transform(const float lm68[136], int size, double padding, double m[6])
{
    double chip[2 * 68], img[2 * 68], chip_to_img[6];
    int n = 0;
    for (int i = 17; i < 68; i++) {
        if (!dlib_chip_point(i))
            continue;
        chip[2 * n] = (padding + dlib_mean_x[i - 17]) / (2 * padding + 1) * size;
        chip[2 * n + 1] = (padding + dlib_mean_y[i - 17]) / (2 * padding + 1) * size;
        img[2 * n] = lm68[2 * i];
        img[2 * n + 1] = lm68[2 * i + 1];
        n++;
    }
    if (!fl_face_similarity_fit(chip, img, n, chip_to_img))
        return false;
    return fl_face_affine_invert(chip_to_img, m);
}

/* Mean of mean-face points [from, to] (iBUG indices), in chip pixels. */
static void dlib_mean_point(int from, int to, int size, double padding, double *x, double *y)
{
    double sx = 0, sy = 0;
    for (int i = from; i <= to; i++) {
        sx += dlib_mean_x[i - 17];
        sy += dlib_mean_y[i - 17];
    }
    *x = (padding + sx / (to - from + 1)) / (2 * padding + 1) * size;
    *y = (padding + sy / (to - from + 1)) / (2 * padding + 1) * size;
}

void fl_face_dlib_chip_5pt(int size, double padding, double out[10])
{
    dlib_mean_point(36, 41, size, padding, &out[0], &out[1]);
    dlib_mean_point(42, 47, size, padding, &out[2], &out[3]);
    dlib_mean_point(30, 30, size, padding, &out[4], &out[5]);
    dlib_mean_point(48, 48, size, padding, &out[6], &out[7]);
    dlib_mean_point(54, 54, size, padding, &out[8], &out[9]);
}

/* Mean of lm68 points [from, to]. */
static void lm_mean(const float lm68[136], int from, int to, double *x, double *y)
{
    double sx = 0, sy = 0;
    for (int i = from; i <= to; i++) {
        sx += lm68[2 * i];
        sy += lm68[2 * i + 1];
    }
    *x = sx / (to - from + 1);
    *y = sy / (to - from + 1);
}

void fl_face_5pt_from_68(const float lm68[136], double out[10])
{
    lm_mean(lm68, 36, 41, &out[0], &out[1]);
    lm_mean(lm68, 42, 47, &out[2], &out[3]);
    lm_mean(lm68, 30, 30, &out[4], &out[5]);
    lm_mean(lm68, 48, 48, &out[6], &out[7]);
    lm_mean(lm68, 54, 54, &out[8], &out[9]);
}

bool fl_face_arcface_transform(const double pts5[10], double m[6])
{
    return fl_face_similarity_fit(pts5, fl_face_arcface_112, 5, m);
}

/* ============================== Head pose ============================== */

/* Generic 3D head (x right, y up, z towards the camera), and the iBUG
 * points it corresponds to: nose tip, chin, outer eye corners, mouth corners. */
static const double head3d[6][3] = {
    {0, 0, 0}, {0, -330, -65}, {-225, 170, -135}, {225, 170, -135}, {-150, -150, -125}, {150, -150, -125},
};
static const int head3d_idx[6] = {30, 8, 36, 45, 48, 54};

/* Solve the 3x3 system a x = b by Cramer's rule; false if singular. */
static bool solve3(const double a[3][3], const double b[3], double x[3])
{
    double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                 a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                 a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    if (fabs(det) < 1e-12)
        return false;
    for (int k = 0; k < 3; k++) {
        double t[3][3];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                t[r][c] = c == k ? b[r] : a[r][c];
        x[k] = (t[0][0] * (t[1][1] * t[2][2] - t[1][2] * t[2][1]) -
                t[0][1] * (t[1][0] * t[2][2] - t[1][2] * t[2][0]) +
                t[0][2] * (t[1][0] * t[2][1] - t[1][1] * t[2][0])) /
               det;
    }
    return true;
}

static double deg(double r)
{
    return r * 180.0 / M_PI;
}

void fl_face_pose(const float lm68[136], float *yaw, float *pitch, float *roll)
{
    double mx[3] = {0, 0, 0}, mu = 0, mv = 0, xx[3][3] = {{0}}, xu[3] = {0}, xv[3] = {0};
    double r1[3], r2[3], r3[3], n1, n2, d;
    const int n = 6;

    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++)
            mx[k] += head3d[i][k] / n;
        mu += lm68[2 * head3d_idx[i]] / n;
        mv += -lm68[2 * head3d_idx[i] + 1] / n; /* y up, like the model */
    }
    for (int i = 0; i < n; i++) {
        double x[3], u = lm68[2 * head3d_idx[i]] - mu, v = -lm68[2 * head3d_idx[i] + 1] - mv;
        for (int k = 0; k < 3; k++)
            x[k] = head3d[i][k] - mx[k];
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++)
                xx[r][c] += x[r] * x[c];
            xu[r] += x[r] * u;
            xv[r] += x[r] * v;
        }
    }
    /* rows of the 2x3 projection: least squares, (X X^T) r = X u */
    if (!solve3(xx, xu, r1) || !solve3(xx, xv, r2)) {
        *yaw = *pitch = *roll = 0;
        return;
    }
    n1 = sqrt(r1[0] * r1[0] + r1[1] * r1[1] + r1[2] * r1[2]);
    for (int k = 0; k < 3; k++)
        r1[k] /= n1;
    d = r1[0] * r2[0] + r1[1] * r2[1] + r1[2] * r2[2];
    for (int k = 0; k < 3; k++)
        r2[k] -= d * r1[k];
    n2 = sqrt(r2[0] * r2[0] + r2[1] * r2[1] + r2[2] * r2[2]);
    if (!(n1 > 0) || !(n2 > 0)) {
        *yaw = *pitch = *roll = 0;
        return;
    }
    for (int k = 0; k < 3; k++)
        r2[k] /= n2;
    r3[0] = r1[1] * r2[2] - r1[2] * r2[1];
    r3[1] = r1[2] * r2[0] - r1[0] * r2[2];
    r3[2] = r1[0] * r2[1] - r1[1] * r2[0];
    /* R = Rz(roll) Ry(yaw) Rx(pitch): R20 = -sin(yaw), R21 = cos(yaw) sin(pitch),
     * R22 = cos(yaw) cos(pitch), R10 = sin(roll) cos(yaw), R00 = cos(roll) cos(yaw). */
    *yaw = (float)deg(asin(FL_MAX(-1.0, FL_MIN(1.0, -r3[0]))));
    *pitch = (float)deg(atan2(r3[1], r3[2]));
    *roll = (float)-deg(atan2(r2[0], r1[0])); /* image y points down: clockwise is positive */
}

/* ============================== Boxes ============================== */

float fl_face_iou(const struct fl_face_box *a, const struct fl_face_box *b)
{
    float x0 = FL_MAX(a->x, b->x), y0 = FL_MAX(a->y, b->y);
    float x1 = FL_MIN(a->x + a->w, b->x + b->w), y1 = FL_MIN(a->y + a->h, b->y + b->h);
    float inter, uni;
    if (a->w <= 0 || a->h <= 0 || b->w <= 0 || b->h <= 0 || x1 <= x0 || y1 <= y0)
        return 0;
    inter = (x1 - x0) * (y1 - y0);
    uni = a->w * a->h + b->w * b->h - inter;
    return uni > 0 ? inter / uni : 0;
}

int fl_face_nms(const struct fl_face_box *boxes, const int *order, int n, float iou_max, int *keep)
{
    int n_keep = 0;
    for (int i = 0; i < n; i++) {
        const struct fl_face_box *c = &boxes[order[i]];
        bool ok = true;
        for (int k = 0; k < n_keep && ok; k++)
            ok = fl_face_iou(c, &boxes[keep[k]]) <= iou_max;
        if (ok)
            keep[n_keep++] = order[i];
    }
    return n_keep;
}

/* ============================== Landmarks ============================== */

/* clang-format off */
const struct fl_face_landmark_def fl_face_landmark_defs[] = {
    {"eyeLeft", 6, {36, 37, 38, 39, 40, 41}},
    {"eyeRight", 6, {42, 43, 44, 45, 46, 47}},
    {"nose", 1, {30}},
    {"mouthLeft", 1, {48}},
    {"mouthRight", 1, {54}},
    {"leftEyeBrowLeft", 1, {17}},
    {"leftEyeBrowRight", 1, {21}},
    {"leftEyeBrowUp", 1, {19}},
    {"rightEyeBrowLeft", 1, {22}},
    {"rightEyeBrowRight", 1, {26}},
    {"rightEyeBrowUp", 1, {24}},
    {"leftEyeLeft", 1, {36}},
    {"leftEyeRight", 1, {39}},
    {"leftEyeUp", 2, {37, 38}},
    {"leftEyeDown", 2, {40, 41}},
    {"rightEyeLeft", 1, {42}},
    {"rightEyeRight", 1, {45}},
    {"rightEyeUp", 2, {43, 44}},
    {"rightEyeDown", 2, {46, 47}},
    {"noseLeft", 1, {31}},
    {"noseRight", 1, {35}},
    {"mouthUp", 1, {51}},
    {"mouthDown", 1, {57}},
    {"leftPupil", 6, {36, 37, 38, 39, 40, 41}},  /* no iris model: the eye centre */
    {"rightPupil", 6, {42, 43, 44, 45, 46, 47}},
    {"upperJawlineLeft", 1, {0}},
    {"midJawlineLeft", 1, {4}},
    {"chinBottom", 1, {8}},
    {"midJawlineRight", 1, {12}},
    {"upperJawlineRight", 1, {16}},
};
/* clang-format on */
const int fl_face_n_landmark_defs = (int)FL_ARRAY_LEN(fl_face_landmark_defs);

void fl_face_landmark_point(const float lm68[136], int i, float *x, float *y)
{
    const struct fl_face_landmark_def *d = &fl_face_landmark_defs[i];
    double sx = 0, sy = 0;
    FL_ASSERT(i >= 0 && i < fl_face_n_landmark_defs);
    for (int k = 0; k < d->n; k++) {
        sx += lm68[2 * d->idx[k]];
        sy += lm68[2 * d->idx[k] + 1];
    }
    *x = (float)(sx / d->n);
    *y = (float)(sy / d->n);
}
