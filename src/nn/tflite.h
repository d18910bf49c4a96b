/*
 * tflite.h: TFLite flatbuffer reader and importer into the nn IR.
 *
 * Two layers:
 *   - The reader (nn/tflite_reader.c) turns the bytes of a .tflite file into
 *     plain C structs for subgraph 0: tensors, operators with the option
 *     fields we use, graph inputs and outputs. Every offset, vtable and
 *     vector length is checked against the buffer; anything that does not
 *     add up is FL_ERR_CORRUPT. Constant data stays in the caller's buffer
 *     (pointers into it), so the bytes must outlive the parsed model.
 *   - The importer (nn/import_tflite.c) maps the operators to the IR of
 *     nn.h, folding PReLU and softmax patterns, and returns a model.
 *
 * face/ calls only the importer: fl_nn_tflite_import_file() with one of the
 * known nets below (which also sets the metadata: model id, preprocessing,
 * MTCNN's transpose note).
 *
 * Threading: all functions are reentrant; no shared state.
 */
#ifndef FL_NN_TFLITE_H
#define FL_NN_TFLITE_H

#include "nn/nn.h"

/* ================================ Importer ================================= */

/* What the importer knows about the file. GENERIC takes the file as it is
 * (fixed input size, no metadata beyond provenance); the others add the
 * net's metadata and quirks:
 *   MOBILEFACENET: input 112x112x3, output 0 = raw 192-d embedding (not
 *     normalised). The file's batch is 2 and its last RESHAPE says [2,192];
 *     the importer runs batch 1 (every batch dim is treated as -1).
 *   PNET: input h and w are dynamic (fully convolutional), given at
 *     fl_nn_exec_new(). RNET: 24x24. ONET: 48x48.
 *   MTCNN inputs are TRANSPOSED: the tensor is [W][H][3] with
 *     tensor[x][y] = pixel(x, y), and outputs keep that layout (PNet's map
 *     is {outW, outH, c}). The metadata key "layout" says "transposed_wh".
 * Preprocessing for all four: RGB, (x - 127.5) / 128 (metadata "mean",
 * "std"). Output i is the i-th output of the file; metadata "output.<i>"
 * holds its tensor name (e.g. "pnet/prob1"). */
enum fl_nn_tflite_net {
    FL_NN_TFLITE_GENERIC = 0,
    FL_NN_TFLITE_MOBILEFACENET = 1,
    FL_NN_TFLITE_PNET = 2,
    FL_NN_TFLITE_RNET = 3,
    FL_NN_TFLITE_ONET = 4,
};

/* Import a .tflite held in memory. Returns a new model (refcount 1; drop with
 * fl_nn_model_unref()) or NULL with err set: FL_ERR_CORRUPT for bytes that do
 * not form a valid flatbuffer, FL_ERR_INVALID_ARG for a valid file using an
 * op or pattern the IR cannot express (the message names the op),
 * FL_ERR_NOMEM. The bytes are only read during the call. */
struct fl_nn_model *fl_nn_tflite_import(const void *p, size_t n, enum fl_nn_tflite_net net,
                                        struct fl_err *err);
/* The same from a file (read whole, capped at 64 MiB; FL_ERR_IO if unreadable). */
struct fl_nn_model *fl_nn_tflite_import_file(const char *path, enum fl_nn_tflite_net net,
                                             struct fl_err *err);

/* ================================= Reader ================================== */

#define FL_TFL_MAX_RANK 6

/* TFLite enum values used here (schema.fbs). */
enum {
    FL_TFL_TYPE_FLOAT32 = 0,
    FL_TFL_TYPE_FLOAT16 = 1,
    FL_TFL_TYPE_INT32 = 2,
    FL_TFL_TYPE_INT64 = 4,
};

/* clang-format off */
enum fl_tfl_op_code {
    FL_TFL_ADD = 0, FL_TFL_AVERAGE_POOL_2D = 1, FL_TFL_CONCATENATION = 2, FL_TFL_CONV_2D = 3,
    FL_TFL_DEPTHWISE_CONV_2D = 4, FL_TFL_DEQUANTIZE = 6, FL_TFL_FULLY_CONNECTED = 9,
    FL_TFL_LOGISTIC = 14, FL_TFL_MAX_POOL_2D = 17, FL_TFL_MUL = 18, FL_TFL_RELU = 19,
    FL_TFL_RELU6 = 21, FL_TFL_RESHAPE = 22, FL_TFL_SOFTMAX = 25, FL_TFL_TANH = 28,
    FL_TFL_PAD = 34, FL_TFL_TRANSPOSE = 39, FL_TFL_MEAN = 40, FL_TFL_SUB = 41, FL_TFL_DIV = 42,
    FL_TFL_EXP = 47, FL_TFL_PRELU = 54, FL_TFL_NEG = 59, FL_TFL_SUM = 74,
    FL_TFL_REDUCE_MAX = 82, FL_TFL_ABS = 101,
};
/* clang-format on */

/* Operator options: the union of the fields of the option tables we read,
 * with the schema's defaults when absent. */
struct fl_tfl_opts {
    int type;          /* BuiltinOptions union type; 0 = none */
    int padding;       /* 0 SAME, 1 VALID */
    int stride_w, stride_h;
    int dilation_w, dilation_h;
    int depth_multiplier;
    int filter_w, filter_h;
    int act;           /* ActivationFunctionType: 0 none, 1 relu, 3 relu6, 4 tanh */
    int axis;          /* Concatenation */
    int keep_dims;     /* Reducer */
    int keep_num_dims; /* FullyConnected */
    int weights_format;
    float beta;        /* Softmax */
    int n_new_shape;   /* Reshape; -1 = absent */
    int32_t new_shape[FL_TFL_MAX_RANK];
};

struct fl_tfl_tensor {
    int rank;
    int32_t shape[FL_TFL_MAX_RANK]; /* >= 0 */
    int type;                       /* FL_TFL_TYPE_* (raw schema value) */
    const uint8_t *data;            /* constant bytes in the file, or NULL */
    size_t n_data;                  /* bytes */
    const char *name;               /* NUL-terminated, in the file; "" if none */
};

struct fl_tfl_op {
    int code;    /* builtin code: max(deprecated_builtin_code, builtin_code) */
    int n_in, n_out;
    int32_t *in; /* tensor indices; -1 = optional input absent */
    int32_t *out;
    struct fl_tfl_opts opts;
};

struct fl_tfl_model {
    uint32_t version;
    int n_subgraphs;
    int n_tensors;
    struct fl_tfl_tensor *tensors; /* owned */
    int n_ops;
    struct fl_tfl_op *ops; /* owned; in/out point into idx_pool */
    int n_inputs, n_outputs;
    int32_t *inputs, *outputs; /* point into idx_pool */
    int32_t *idx_pool;         /* owned */
    const char *description;   /* in the file; "" if none */
};

/* Parse the flatbuffer p[0..n) (subgraph 0). On success fills *out (caller
 * releases it with fl__nn_tfl_model_fini(); pointers into p stay valid while p
 * does) and returns FL_OK; else FL_ERR_CORRUPT / FL_ERR_INVALID_ARG /
 * FL_ERR_NOMEM with *out zeroed. */
enum fl_status fl__nn_tfl_parse(const void *p, size_t n, struct fl_tfl_model *out,
                                struct fl_err *err);
void fl__nn_tfl_model_fini(struct fl_tfl_model *m);

/* Builtin op name ("CONV_2D"); "?" for codes outside the table. Static. */
const char *fl__nn_tfl_op_name(int code);

#endif /* FL_NN_TFLITE_H */
