/*
 * run_xnnpack.c: the XNNPACK backend (interim: not wired yet; the reference
 * backend is complete and FL_NN_BACKEND_XNNPACK reports FL_ERR_INTERNAL).
 */
#include "nn/nn_int.h"

enum fl_status fl__nn_xnn_plan(struct fl_nn_exec *e, struct fl_err *err)
{
    (void)e;
    return fl_err_set(err, FL_ERR_INTERNAL, "nn: XNNPACK backend not available yet");
}

enum fl_status fl__nn_xnn_run(struct fl_nn_exec *e, struct fl_err *err)
{
    (void)e;
    return fl_err_set(err, FL_ERR_INTERNAL, "nn: XNNPACK backend not available yet");
}

void fl__nn_xnn_free(struct fl_nn_exec *e)
{
    (void)e;
}
