/*
 * facelink.h: the public C API of FaceLink.
 *
 * FaceLink is a self-hosted face recognition service that speaks Amazon
 * Rekognition's face API. This header is the only one the command-line tool
 * (src/cli) and the HTTP server's callers may include; everything else is
 * library-internal (src/<module>/<module>.h).
 *
 * Conventions (see STYLE.md):
 *   - Every fallible call returns enum fl_status and takes a caller-owned
 *     struct fl_err *err, which may be NULL. There is no global error state.
 *   - Output parameters are named out_* and are written only on success.
 *   - Objects made with fl_x_new() are freed with fl_x_free(); free(NULL) is a
 *     no-op.
 */
#ifndef FL_FACELINK_H
#define FL_FACELINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_API __attribute__((visibility("default")))

#define FL_VERSION_MAJOR 0
#define FL_VERSION_MINOR 1
#define FL_VERSION_PATCH 0
#define FL_VERSION_STRING "0.1.0"

/* Status codes. Each maps to exactly one Rekognition (or AWS protocol)
 * exception name and HTTP status through fl_status_exception() and
 * fl_status_http(); the table lives in src/core/err.c. Not persisted, so the
 * order may change, but FL_OK stays 0. */
enum fl_status {
    FL_OK = 0,
    FL_ERR_NOMEM,              /* allocation failed or arena cap hit -> InternalServerError */
    FL_ERR_INVALID_ARG,        /* bad caller input -> InvalidParameterException */
    FL_ERR_IMAGE_FORMAT,       /* undecodable or unknown image -> InvalidImageFormatException */
    FL_ERR_IMAGE_TOO_LARGE,    /* bytes or pixels over the cap -> ImageTooLargeException */
    FL_ERR_NOT_FOUND,          /* collection/face/user missing -> ResourceNotFoundException */
    FL_ERR_EXISTS,             /* -> ResourceAlreadyExistsException */
    FL_ERR_CONFLICT,           /* -> ConflictException */
    FL_ERR_IDEMPOTENT_MISMATCH,/* -> IdempotentParameterMismatchException */
    FL_ERR_PAGINATION,         /* -> InvalidPaginationTokenException */
    FL_ERR_S3,                 /* S3Object input -> InvalidS3ObjectException */
    FL_ERR_LIMIT,              /* -> LimitExceededException */
    FL_ERR_QUOTA,              /* -> ServiceQuotaExceededException */
    FL_ERR_ACCESS_DENIED,      /* -> AccessDeniedException */
    FL_ERR_BUSY,               /* overloaded -> ThrottlingException */
    FL_ERR_THROUGHPUT,         /* -> ProvisionedThroughputExceededException */
    FL_ERR_UNKNOWN_OPERATION,  /* bad X-Amz-Target -> UnknownOperationException */
    FL_ERR_SERIALIZATION,      /* malformed JSON body -> SerializationException */
    FL_ERR_AUTH_MISSING,       /* -> MissingAuthenticationTokenException */
    FL_ERR_AUTH_INCOMPLETE,    /* -> IncompleteSignatureException */
    FL_ERR_AUTH_SIGNATURE,     /* -> InvalidSignatureException */
    FL_ERR_AUTH_UNKNOWN_KEY,   /* -> UnrecognizedClientException */
    FL_ERR_CORRUPT,            /* model/index/db bytes fail validation -> InternalServerError */
    FL_ERR_IO,                 /* read/write/fsync failed; sys_errno set -> InternalServerError */
    FL_ERR_STORE,              /* storage backend error; backend code in sys_errno */
    FL_ERR_INTERNAL,           /* bug or impossible state -> InternalServerError */
    FL_STATUS_COUNT_           /* never use; sizes tables */
};

#define FL_ERR_MSG_MAX 256

/* Per-call error detail. Caller-owned (stack or inside the request). */
struct fl_err {
    enum fl_status code;
    int sys_errno;            /* errno, sqlite extended code, ... (0 if none) */
    char msg[FL_ERR_MSG_MAX]; /* human text; never parsed by code */
};

/* Short human name of a status ("out of memory"). Static string. */
FL_API const char *fl_status_name(enum fl_status s);
/* Rekognition/AWS exception name for a status ("InvalidParameterException"). */
FL_API const char *fl_status_exception(enum fl_status s);
/* HTTP status code an error maps to (200 for FL_OK). */
FL_API int fl_status_http(enum fl_status s);

/* Record an error where it is detected and return its code. err may be NULL.
 *     return fl_err_set(err, FL_ERR_IMAGE_FORMAT, "png: bad IHDR crc");   */
FL_API enum fl_status fl_err_set(struct fl_err *err, enum fl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reset err to FL_OK with an empty message. err may be NULL. */
FL_API void fl_err_clear(struct fl_err *err);

/* One-time process set-up (jansson's allocator, CPU detection). Call it
 * before any other call, and before using jansson yourself: JSON values made
 * after it are freed by the library's allocator (strings from json_dumps()
 * then go to fl_free_string()). Safe to call more than once. */
FL_API void fl_init(void);

/* Library version string, e.g. "0.1.0". */
FL_API const char *fl_version(void);

/* ================================ Service ================================ */

/* A FaceLink service: the store, the vector indexes and the face engine
 * behind every operation. One per process; any number of threads may call
 * fl_service_call() at once (each call borrows per-thread resources). */
struct fl_service;

struct fl_service_config {
    const char *data_dir;      /* where the SQLite database and retained crops live */
    const char *store_dsn;     /* NULL: SQLite in data_dir; "postgresql://..." later */
    const char *models_dir;    /* fetched model packages (default "models") */
    const char *default_model; /* face model for new collections (NULL: the default) */
    const char *crop_retention;/* "none" | "crops" | "images" (NULL: "crops") */
    const char *region;        /* for ARNs (NULL: "us-east-1") */
    const char *account_id;    /* for ARNs (NULL: "000000000000") */
    int n_workers;             /* threads that will call fl_service_call (sizes pools) */
    int no_store;              /* 1: no data dir and no database; only the operations on
                                  images alone (DetectFaces, CompareFaces, EmbedFaces) */
};

/* Open the service (creates data_dir if needed). NULL with err set on failure. */
FL_API struct fl_service *fl_service_open(const struct fl_service_config *cfg,
                                          struct fl_err *err);
/* Close and free; NULL is a no-op. No call may be in flight. */
FL_API void fl_service_close(struct fl_service *svc);

/* Run one operation. target is the X-Amz-Target value, e.g.
 * "RekognitionService.CreateCollection" or "FaceLinkService.GetFaceEmbeddings";
 * body is the JSON request (body_len bytes, need not be NUL-terminated).
 * On FL_OK, *out_json is the JSON response body (caller frees with
 * fl_free_string()). On error, returns the status (its exception name and HTTP
 * status come from fl_status_exception()/fl_status_http()) and err->msg holds
 * the message for the client. Thread-safe. */
FL_API enum fl_status fl_service_call(struct fl_service *svc, const char *target,
                                      const char *body, size_t body_len, char **out_json,
                                      size_t *out_len, struct fl_err *err);
/* Free a string returned by the library. NULL is a no-op. */
FL_API void fl_free_string(char *s);

/* ================================ Models ================================ */

/* Convert every net the face engine uses, once, from the npm packages under
 * models_dir (NULL: "models") into .flm files in models_dir/flm/, which the
 * engine then loads instead of importing the packages at each start. The
 * conversion is tied to the installed packages' integrity: after a package
 * changes, the engine ignores the old files until this runs again.
 * Nothing is written when the conversion is already current.
 * *out_n (may be NULL) gets the number of nets written. */
FL_API enum fl_status fl_models_convert(const char *models_dir, int *out_n, struct fl_err *err);

/* ============================== Small helpers ============================== */

/* Read the file at path (at most max_bytes) into a fresh buffer: *out_bytes
 * (free with fl_free_string()) and *out_len. FL_ERR_NOT_FOUND, FL_ERR_IO,
 * or FL_ERR_LIMIT when larger. */
FL_API enum fl_status fl_read_file(const char *path, size_t max_bytes, char **out_bytes,
                                   size_t *out_len, struct fl_err *err);
/* Standard padded base64 of n bytes, as AWS JSON carries blobs (Image.Bytes).
 * A fresh NUL-terminated string (fl_free_string()), or NULL when out of memory. */
FL_API char *fl_base64(const void *p, size_t n);
/* The inverse: decode standard padded base64 s (n chars, a multiple of 4)
 * into out (room for 3 * n / 4 bytes); *out_len gets the byte count.
 * FL_ERR_INVALID_ARG when s is not base64. */
FL_API enum fl_status fl_unbase64(const char *s, size_t n, void *out, size_t *out_len,
                                  struct fl_err *err);

#ifdef __cplusplus
}
#endif
#endif /* FL_FACELINK_H */
