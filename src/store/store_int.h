/*
 * store_int.h: shared by the .c files of src/store only (SQLite's btreeInt.h idea).
 *
 * Backend constructors and the embedded schema migrations.
 */
#ifndef FL_STORE_INT_H
#define FL_STORE_INT_H

#include "store/store.h"

/* Open the SQLite backend on a file path (no "sqlite:" prefix). Contract as
 * fl_store_open(). */
enum fl_status fl__store_sqlite_open(const char *path, const struct fl_store_opts *opts,
                                     struct fl_store **out, struct fl_err *err);

/* One schema migration: after it runs, PRAGMA user_version == version. */
struct fl__store_migration {
    int version;      /* 1, 2, ... in order, no gaps */
    const char *name; /* file name under src/store/sql/sqlite/ */
    const char *sql;  /* the file's exact text */
};
/* The SQLite migrations in order (sql_sqlite.c); *out_n of them. */
const struct fl__store_migration *fl__store_sqlite_migrations(size_t *out_n);

#endif /* FL_STORE_INT_H */
