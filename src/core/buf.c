/*
 * buf.c: a capped growable byte buffer (curl's dynbuf).
 *
 * Every instance has a toobig limit so that input-driven growth (a request
 * body, a JSON response) is bounded. A failed append frees the buffer: the
 * caller never continues with a half-built value.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

void fl_buf_init(struct fl_buf *b, size_t toobig)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->toobig = toobig;
}

void fl_buf_fini(struct fl_buf *b)
{
    fl_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void fl_buf_reset(struct fl_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

enum fl_status fl_buf_append(struct fl_buf *b, const void *p, size_t n, struct fl_err *err)
{
    size_t need;
    if (!fl_size_add(b->len, n, &need) || !fl_size_add(need, 1, &need) || need > b->toobig) {
        fl_buf_fini(b);
        return fl_err_set(err, FL_ERR_LIMIT, "buffer limit of %zu bytes exceeded", b->toobig);
    }
    if (need > b->alloc) {
        size_t na = b->alloc ? b->alloc : 256;
        char *q;
        while (na < need)
            na = na > b->toobig / 2 ? b->toobig : na * 2;
        q = fl_realloc(b->data, na);
        if (!q) {
            fl_buf_fini(b);
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", na);
        }
        b->data = q;
        b->alloc = na;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return FL_OK;
}

enum fl_status fl_buf_printf(struct fl_buf *b, struct fl_err *err, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;
    enum fl_status rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return fl_err_set(err, FL_ERR_INTERNAL, "format error");
    if ((size_t)n < sizeof(small))
        return fl_buf_append(b, small, (size_t)n, err);
    {
        char *big = fl_malloc((size_t)n + 1);
        if (!big) {
            fl_buf_fini(b);
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory formatting");
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = fl_buf_append(b, big, (size_t)n, err);
        fl_free(big);
    }
    return rc;
}

char *fl_buf_take(struct fl_buf *b, size_t *out_len)
{
    char *p = b->data;
    if (out_len)
        *out_len = b->len;
    if (!p)
        p = fl_strdup("");
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
