/*
 * face_int.h: face/ internals that tests reach (not for other modules).
 */
#ifndef FL_FACE_INT_H
#define FL_FACE_INT_H

#include "face/face.h"

/* The landmark stage alone: 68 points from a given detector box. */
enum fl_status fl__face_landmarks_from_box(struct fl_face_worker *w, const struct fl_image *img,
                                           struct fl_face_box box, float lm68[136],
                                           struct fl_err *err);

#endif /* FL_FACE_INT_H */
