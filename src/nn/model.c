/*
 * model.c: the immutable, shared model.
 *
 * fl_nn_model_new() moves a finished graph's IR into a reference-counted
 * model. Every op was validated when it was added (graph.c), so what is left
 * to check here is the graph as a whole: one input, at least one output, no
 * sticky builder error.
 *
 * Threading: a model is immutable after fl_nn_model_new(); any number of
 * threads may read it and make executors from it. The reference count is a
 * C11 atomic (h2o's shared chunks); the last unref frees.
 */
#include "nn/nn_int.h"

#include <string.h>

struct fl_nn_model *fl_nn_model_new(struct fl_nn_graph *g, struct fl_err *err)
{
    struct fl_nn_model *m = NULL;
    if (!g) {
        fl_err_set(err, FL_ERR_NOMEM, "nn: no graph (out of memory creating it)");
        return NULL;
    }
    if (g->err.code != FL_OK) {
        fl_err_set(err, g->err.code, "%s", g->err.msg);
        goto out;
    }
    if (g->ir.input < 0) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "nn: graph '%s' has no input", g->ir.name);
        goto out;
    }
    if (g->ir.n_outputs < 1) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "nn: graph '%s' has no output", g->ir.name);
        goto out;
    }
    m = fl_calloc(1, sizeof(*m));
    if (!m) {
        fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory (model)");
        goto out;
    }
    m->ir = g->ir;
    memset(&g->ir, 0, sizeof(g->ir));
    g->ir.input = -1;
    atomic_init(&m->refs, 1);
out:
    fl_nn_graph_free(g);
    return m;
}

void fl_nn_model_ref(struct fl_nn_model *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void fl_nn_model_unref(struct fl_nn_model *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl__nn_ir_fini(&m->ir);
    fl_free(m);
}

const char *fl_nn_model_name(const struct fl_nn_model *m)
{
    return m->ir.name;
}

const char *fl_nn_model_meta(const struct fl_nn_model *m, const char *key)
{
    for (int i = 0; i < m->ir.n_meta; i++) {
        if (strcmp(m->ir.meta[i].key, key) == 0)
            return m->ir.meta[i].value;
    }
    return NULL;
}

int fl_nn_model_n_outputs(const struct fl_nn_model *m)
{
    return m->ir.n_outputs;
}

uint64_t fl_nn_model_macs(const struct fl_nn_model *m, int h, int w)
{
    const struct fl__nn_ir *ir = &m->ir;
    int(*shp)[3] = NULL;
    uint64_t macs = 0;
    shp = fl_malloc((size_t)ir->n_ops * sizeof(*shp));
    if (!shp)
        return 0;
    if (fl__nn_infer_shapes(ir, h, w, shp, NULL) != FL_OK)
        goto out;
    for (int v = 0; v < ir->n_ops; v++) {
        const struct fl__nn_op *op = &ir->ops[v];
        uint64_t out_px = (uint64_t)shp[v][0] * (uint64_t)shp[v][1];
        uint64_t kk = (uint64_t)op->kh * (uint64_t)op->kw;
        switch (op->type) {
        case FL__NN_OP_CONV:
            macs += out_px * (uint64_t)shp[v][2] * kk * (uint64_t)shp[op->a][2];
            break;
        case FL__NN_OP_DWCONV:
            macs += out_px * (uint64_t)shp[v][2] * kk;
            break;
        case FL__NN_OP_FC:
            macs += (uint64_t)op->n * (uint64_t)op->n2;
            break;
        default:
            break;
        }
    }
out:
    fl_free(shp);
    return macs;
}
