/* test_face_lfw_subset.c: a regression guard on LFW verification accuracy.
 *
 * The subset: the first 15 same-person and the first 15 different-person
 * pairs of each of pairs.txt's 10 folds (300 pairs, 463 images), run through
 * the full protocol of `facelink eval lfw --subset 15` (threshold chosen on
 * nine folds, tested on the tenth; missing faces count as errors) with the
 * default model (fused: dlib and MobileFaceNet, flip-averaged). Measured
 * 100.00% on this subset (README, "Accuracy"; dlib alone also 100.00%);
 * the floor is 99.0%, i.e. three wrong pairs fail the test. The full-set
 * figure is `make eval`'s job. Skips when ../shared or the models are absent. */
#include "t.h"
#include "core/core.h"
#include "facelink_eval.h"

T_MAIN_STATE;

#define FLOOR 0.990

static void test_lfw_subset_default(void)
{
    char images[1024], pairs[1024], models[1024];
    struct fl_eval_lfw_opts o;
    struct fl_eval_lfw_result r;
    struct fl_err e;
    if (!t_shared("data/lfw/lfw-deepfunneled-250x250", images, sizeof(images)) ||
        !t_shared("data/lfw/pairs.txt", pairs, sizeof(pairs)))
        T_SKIP("../shared/data/lfw absent");
    if (!t_model("face-api/model", models, sizeof(models)))
        T_SKIP("models absent (run scripts/setup)");
    snprintf(models, sizeof(models), "%s", getenv("FL_MODELS") && *getenv("FL_MODELS")
                                                ? getenv("FL_MODELS")
                                                : "models");
    memset(&o, 0, sizeof(o));
    o.images_dir = images;
    o.pairs_path = pairs;
    o.models_dir = models;
    o.scorers = 0; /* the default model */
    o.pairs_per_block = 15;
    T_REQUIRE(fl_eval_lfw(&o, &r, &e) == FL_OK);
    T_CHECK_EQ_INT(r.n_folds, 10);
    T_CHECK_EQ_INT(r.n_pairs, 300);
    T_CHECK_EQ_INT(r.n_images, 463);
    T_CHECK_EQ_INT(r.n_rows, 1);
    T_CHECK_EQ_INT(r.rows[0].scorer, FL_EVAL_FUSED);
    T_CHECK_EQ_INT(r.n_centre_crop, 0);
    printf("# subset: %.2f%% +- %.2f%%, %d images without a face, %.1f s\n",
           100 * r.rows[0].acc_mean, 100 * r.rows[0].acc_std, r.n_no_face, r.seconds);
    T_CHECK(r.rows[0].acc_mean >= FLOOR);
    /* the missing-face rule: accuracy on found pairs is never below the overall one */
    T_CHECK(r.rows[0].acc_found_mean >= r.rows[0].acc_mean);
}

int main(int argc, char **argv)
{
    fl_core_init();
    t_init(argc, argv);
    T_RUN(test_lfw_subset_default);
    return t_done();
}
