/*
 * similarity.c: index distance -> Rekognition Similarity (0..100).
 *
 * The map is face/'s calibration (face/calibration.h): per model, monotone,
 * piecewise linear in the model's distance, measured on all cross- and
 * same-identity LFW pairs so that Similarity 80 is a false-match rate of
 * about 1e-3 and 99 about 1e-5 (README, "Accuracy"; regenerate with
 * `facelink eval calibrate`). This file only converts the index's distance
 * to the model's: the index keeps squared L2 for dlib (take the root) and
 * 1 - cos for MobileFaceNet (already the model's distance). Unknown models
 * fall back to dlib's table on the root of the distance. Non-increasing in
 * distance, which search relies on.
 *
 * Threading: pure.
 */
#include "api/api.h"
#include "face/calibration.h"

#include <math.h>

double fl__api_similarity(const char *model_id, float distance)
{
    const struct fl__api_model *m = fl__api_model_find(model_id);
    double d = distance;
    if (!(d >= 0.0))
        d = 0.0; /* tiny negative rounding, or NaN from a broken vector */
    if (m && m->metric == FL_INDEX_COSINE)
        return fl_face_similarity(m->face_model, (float)d);
    return fl_face_similarity(m ? m->face_model : FL_FACE_MODEL_DLIB, (float)sqrt(d));
}

float fl__api_distance_bound(const struct fl__api_model *m, double thr)
{
    float d;
    if (!(thr > 0))
        return INFINITY;
    d = fl_face_similarity_distance(m->face_model, (float)thr);
    if (!(d >= 0))
        return 0; /* above 100: only exact duplicates could match; the caller filters */
    if (isinf(d))
        return INFINITY;
    /* a margin for rounding: the caller compares Similarity itself afterwards */
    d = d * 1.0001f + 1e-6f;
    return m->metric == FL_INDEX_COSINE ? d : d * d;
}
