/*
 * similarity.c: index distance -> Rekognition Similarity (0..100).
 *
 * UNCALIBRATED PLACEHOLDER. The real mapping is a per-model calibration
 * table measured on LFW genuine/impostor pairs (DESIGN.md §5); the accuracy
 * work replaces this file. Until then the mapping is a clamped straight line
 * chosen only so that each model's commonly used decision threshold lands
 * at Similarity 80 (Rekognition's default FaceMatchThreshold):
 *   - dlib ResNet (squared L2 from the index): Euclidean 0.6 -> 80,
 *     0 -> 100, 1.8 -> 40, >= 3.0 -> 0;
 *   - MobileFaceNet (cosine distance 1 - cos): cos 0.395 -> 80, cos 1 -> 100.
 * Both are non-increasing in distance, which search relies on.
 *
 * Threading: pure.
 */
#include "api/api.h"

#include <math.h>

static double clamp100(double v)
{
    if (!(v > 0.0))
        return 0.0;
    return v > 100.0 ? 100.0 : v;
}

double fl__api_similarity(const char *model_id, float distance)
{
    const struct fl__api_model *m = fl__api_model_find(model_id);
    double d = distance;
    if (!(d >= 0.0))
        d = 0.0; /* tiny negative rounding, or NaN from a broken vector */
    if (m && m->metric == FL_INDEX_COSINE)
        return clamp100(100.0 - d * (20.0 / 0.605));
    /* L2 (squared) and unknown models */
    return clamp100(100.0 - sqrt(d) * (20.0 / 0.6));
}
