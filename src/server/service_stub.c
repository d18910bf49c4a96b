/*
 * service_stub.c: TEMPORARY stand-in for the service API until the api
 * module (branch `api`) lands. It lets `facelink serve` link and start, and
 * answers every operation with UnknownOperationException. The integrator
 * deletes this file when merging api, which defines the same four symbols.
 */
#include "core/core.h"

struct fl_service {
    int unused;
};

struct fl_service *fl_service_open(const struct fl_service_config *cfg, struct fl_err *err)
{
    struct fl_service *s;
    (void)cfg;
    s = fl_calloc(1, sizeof(*s));
    if (!s)
        fl_err_set(err, FL_ERR_NOMEM, "service: out of memory");
    return s;
}

void fl_service_close(struct fl_service *svc)
{
    fl_free(svc);
}

enum fl_status fl_service_call(struct fl_service *svc, const char *target, const char *body,
                               size_t body_len, char **out_json, size_t *out_len,
                               struct fl_err *err)
{
    (void)svc;
    (void)body;
    (void)body_len;
    (void)out_json;
    (void)out_len;
    return fl_err_set(err, FL_ERR_UNKNOWN_OPERATION, "%s: operations arrive with the api module",
                      target ? target : "");
}

void fl_free_string(char *s)
{
    fl_free(s);
}
