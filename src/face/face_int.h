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

/* The nets the engine loads (models.c). */
enum fl__face_net {
    FL__FACE_NET_PNET,
    FL__FACE_NET_RNET,
    FL__FACE_NET_ONET,
    FL__FACE_NET_MFN,
    FL__FACE_NET_LM68,
    FL__FACE_NET_DLIB,
    FL__FACE_NET_AGE_GENDER,
    FL__FACE_NET_EXPRESSION,
    FL__FACE_NET_COUNT
};
/* Load a net: from <models>/flm/ when the conversion there belongs to the
 * installed packages, else imported from the package files. */
struct fl_nn_model *fl__face_load_net(const char *models_dir, enum fl__face_net n,
                                      struct fl_err *err);

#endif /* FL_FACE_INT_H */
