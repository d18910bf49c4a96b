/*
 * err.c: status codes, their names, and the one table that maps each to a
 * Rekognition (or generic AWS JSON protocol) exception and HTTP status.
 *
 * The HTTP statuses follow ../shared/spec/rekognition_face_ops.json (errors.*
 * .http_status): every client error is 400 except ThrottlingException and
 * InternalServerError (500); the SigV4 failures follow what AWS JSON 1.x
 * services answer: 400 for all four (observed: Rekognition answers
 * InvalidSignatureException "Signature expired" with 400 Bad Request,
 * aws/aws-sdk-php#1780; DynamoDB, Cognito and ECS answer
 * UnrecognizedClientException with 400; 403 is the REST/Query protocols'
 * status, e.g. Lambda). tests/unit/test_core.c checks every exception name that
 * the spec knows against the spec file.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

struct status_row {
    const char *name;      /* short human text */
    const char *exception; /* AWS __type */
    int http;              /* HTTP status */
};

/* clang-format off */
static const struct status_row status_table[] = {
    [FL_OK]                      = {"ok", "", 200},
    [FL_ERR_NOMEM]               = {"out of memory", "InternalServerError", 500},
    [FL_ERR_INVALID_ARG]         = {"invalid parameter", "InvalidParameterException", 400},
    [FL_ERR_IMAGE_FORMAT]        = {"invalid image format", "InvalidImageFormatException", 400},
    [FL_ERR_IMAGE_TOO_LARGE]     = {"image too large", "ImageTooLargeException", 400},
    [FL_ERR_NOT_FOUND]           = {"not found", "ResourceNotFoundException", 400},
    [FL_ERR_EXISTS]              = {"already exists", "ResourceAlreadyExistsException", 400},
    [FL_ERR_CONFLICT]            = {"conflict", "ConflictException", 400},
    [FL_ERR_IDEMPOTENT_MISMATCH] = {"idempotency token reused", "IdempotentParameterMismatchException", 400},
    [FL_ERR_PAGINATION]          = {"invalid pagination token", "InvalidPaginationTokenException", 400},
    [FL_ERR_S3]                  = {"S3 object unavailable", "InvalidS3ObjectException", 400},
    [FL_ERR_LIMIT]               = {"limit exceeded", "LimitExceededException", 400},
    [FL_ERR_QUOTA]               = {"quota exceeded", "ServiceQuotaExceededException", 400},
    [FL_ERR_ACCESS_DENIED]       = {"access denied", "AccessDeniedException", 400},
    [FL_ERR_BUSY]                = {"busy", "ThrottlingException", 500},
    [FL_ERR_THROUGHPUT]          = {"throughput exceeded", "ProvisionedThroughputExceededException", 400},
    [FL_ERR_UNKNOWN_OPERATION]   = {"unknown operation", "UnknownOperationException", 400},
    [FL_ERR_SERIALIZATION]       = {"malformed request", "SerializationException", 400},
    [FL_ERR_AUTH_MISSING]        = {"missing authentication", "MissingAuthenticationTokenException", 400},
    [FL_ERR_AUTH_INCOMPLETE]     = {"incomplete signature", "IncompleteSignatureException", 400},
    [FL_ERR_AUTH_SIGNATURE]      = {"invalid signature", "InvalidSignatureException", 400},
    [FL_ERR_AUTH_UNKNOWN_KEY]    = {"unknown access key", "UnrecognizedClientException", 400},
    [FL_ERR_CORRUPT]             = {"corrupt data", "InternalServerError", 500},
    [FL_ERR_IO]                  = {"i/o error", "InternalServerError", 500},
    [FL_ERR_STORE]               = {"storage error", "InternalServerError", 500},
    [FL_ERR_INTERNAL]            = {"internal error", "InternalServerError", 500},
};
/* clang-format on */
_Static_assert(FL_ARRAY_LEN(status_table) == FL_STATUS_COUNT_,
               "status_table out of sync with enum fl_status");

static const struct status_row *row(enum fl_status s)
{
    if ((unsigned)s >= FL_STATUS_COUNT_ || !status_table[s].name)
        return &status_table[FL_ERR_INTERNAL];
    return &status_table[s];
}

const char *fl_status_name(enum fl_status s)
{
    return row(s)->name;
}

const char *fl_status_exception(enum fl_status s)
{
    return row(s)->exception;
}

int fl_status_http(enum fl_status s)
{
    return row(s)->http;
}

enum fl_status fl_err_set(struct fl_err *err, enum fl_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->sys_errno = 0;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

void fl_err_clear(struct fl_err *err)
{
    if (err) {
        err->code = FL_OK;
        err->sys_errno = 0;
        err->msg[0] = '\0';
    }
}

const char *fl_version(void)
{
    return FL_VERSION_STRING;
}

void fl__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "facelink: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
