/* test_face_calibration.c: the distance -> Similarity map (calibration.c over
 * the generated calibration_table.c).
 *
 * Checks, per model: the table was measured with the model now loaded (its id
 * matches fl_face_model_info), anchors are strictly monotone, the anchors'
 * measured false-match rates follow the documented rule (80 -> 1e-3,
 * 99 -> 1e-5, log-linear between; within the histogram's resolution), the
 * map is monotone and continuous on a dense grid, hits 100 at distance 0 and
 * 0 far away, and fl_face_similarity_distance() inverts it. */
#include "t.h"
#include "face/calibration.h"

#include <math.h>

T_MAIN_STATE;

static void test_tables_match_models(void)
{
    for (int m = 0; m < FL_FACE_MODEL_COUNT_; m++) {
        const struct fl__face_cal_table *t = &fl__face_cal_tables[m];
        T_CHECK_EQ_STR(t->model_id, fl_face_model_info((enum fl_face_model)m)->id);
        T_CHECK(t->n >= 3 && t->n <= FL_FACE_CAL_MAX_POINTS);
        /* ~8.7e7 cross-identity pairs of 13,233 images minus the few without a face */
        T_CHECK(t->n_impostor > 80000000LL);
        T_CHECK(t->n_genuine > 200000LL);
    }
}

static void test_anchors_monotone_and_on_rule(void)
{
    for (int m = 0; m < FL_FACE_MODEL_COUNT_; m++) {
        const struct fl__face_cal_table *t = &fl__face_cal_tables[m];
        T_CHECK_NEAR(t->pts[0].distance, 0.0, 0.0);
        T_CHECK_NEAR(t->pts[0].similarity, 100.0, 0.0);
        T_CHECK_NEAR(t->pts[t->n - 1].similarity, 0.0, 0.0);
        for (int k = 1; k < t->n; k++) {
            const struct fl__face_cal_point *p = &t->pts[k];
            T_CHECK(p->distance > t->pts[k - 1].distance);
            T_CHECK(p->similarity < t->pts[k - 1].similarity);
            T_CHECK(p->fmr >= t->pts[k - 1].fmr);
            T_CHECK(p->tmr >= t->pts[k - 1].tmr);
            if (p->similarity >= 70 && p->similarity <= 99) {
                double want = pow(10.0, -3.0 - 2.0 * (p->similarity - 80.0) / 19.0);
                /* measured FMR within 10% of the target (a few hundred pairs at 1e-5) */
                T_CHECK(fabs(p->fmr - want) <= 0.1 * want);
            }
        }
    }
}

static void test_map_monotone_and_inverse(void)
{
    for (int m = 0; m < FL_FACE_MODEL_COUNT_; m++) {
        enum fl_face_model mm = (enum fl_face_model)m;
        const struct fl__face_cal_table *t = &fl__face_cal_tables[m];
        float prev = 101, dmax = t->pts[t->n - 1].distance;
        int bad = 0, bad_inv = 0;
        T_CHECK_NEAR(fl_face_similarity(mm, 0), 100.0, 0.0);
        T_CHECK_NEAR(fl_face_similarity(mm, -1), 100.0, 0.0);
        T_CHECK_NEAR(fl_face_similarity(mm, dmax * 2), 0.0, 0.0);
        T_CHECK_NEAR(fl_face_similarity(mm, NAN), 0.0, 0.0);
        for (int i = 0; i <= 10000; i++) {
            float d = dmax * (float)i / 10000, s = fl_face_similarity(mm, d);
            bad += !(s <= prev) || s < 0 || s > 100 || (i > 0 && prev - s > 5);
            prev = s;
            if (s > 0.5f && s < 99.5f) {
                float back = fl_face_similarity_distance(mm, s);
                bad_inv += fabsf(back - d) > 1e-3f * dmax;
            }
        }
        T_CHECK_EQ_INT(bad, 0);
        T_CHECK_EQ_INT(bad_inv, 0);
        for (int k = 0; k < t->n; k++)
            T_CHECK_NEAR(fl_face_similarity(mm, t->pts[k].distance), t->pts[k].similarity, 1e-3);
        T_CHECK(fl_face_similarity_distance(mm, 101) < 0);
        T_CHECK(isinf(fl_face_similarity_distance(mm, 0)));
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    T_RUN(test_tables_match_models);
    T_RUN(test_anchors_monotone_and_on_rule);
    T_RUN(test_map_monotone_and_inverse);
    return t_done();
}
