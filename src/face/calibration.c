/*
 * calibration.c: Similarity from distance through the generated anchor
 * tables (calibration_table.c; made by `facelink eval calibrate`).
 *
 * Between anchors the map is linear in distance; anchors are strictly
 * increasing in distance and decreasing in Similarity (calibrate.c enforces
 * it and test_face_calibration checks it), so the map is monotone and its
 * inverse is well defined. Pure functions over const data: thread-safe.
 */
#include "face/calibration.h"

#include <math.h>

float fl_face_similarity(enum fl_face_model m, float distance)
{
    const struct fl__face_cal_table *t;
    FL_ASSERT((unsigned)m < FL_FACE_MODEL_COUNT_);
    t = &fl__face_cal_tables[m];
    if (isnan(distance))
        return 0;
    if (distance <= t->pts[0].distance)
        return t->pts[0].similarity;
    for (int k = 1; k < t->n; k++) {
        const struct fl__face_cal_point *a = &t->pts[k - 1], *b = &t->pts[k];
        if (distance <= b->distance) {
            float u = (distance - a->distance) / (b->distance - a->distance);
            return a->similarity + u * (b->similarity - a->similarity);
        }
    }
    return t->pts[t->n - 1].similarity;
}

float fl_face_similarity_distance(enum fl_face_model m, float similarity)
{
    const struct fl__face_cal_table *t;
    FL_ASSERT((unsigned)m < FL_FACE_MODEL_COUNT_);
    t = &fl__face_cal_tables[m];
    if (similarity > t->pts[0].similarity)
        return -1;
    if (similarity <= t->pts[t->n - 1].similarity)
        return INFINITY;
    for (int k = 1; k < t->n; k++) {
        const struct fl__face_cal_point *a = &t->pts[k - 1], *b = &t->pts[k];
        if (similarity >= b->similarity) {
            float u = (a->similarity - similarity) / (a->similarity - b->similarity);
            return a->distance + u * (b->distance - a->distance);
        }
    }
    return INFINITY;
}
