-- 0001_init.sql: the first FaceLink schema (SQLite).
-- Applied by store_sqlite.c inside one transaction that also sets
-- PRAGMA user_version = 1. The text is embedded in src/store/sql_sqlite.c;
-- test_store checks that both stay identical.

-- One row per collection. face_count and user_count are kept up to date by
-- the writes that change them (COUNT(*) over millions of faces is too slow
-- for DescribeCollection).
CREATE TABLE collections (
    id                 TEXT PRIMARY KEY NOT NULL,
    model_id           TEXT NOT NULL,
    face_model_version TEXT NOT NULL,
    dim                INTEGER NOT NULL CHECK (dim > 0),
    created            REAL NOT NULL,
    face_count         INTEGER NOT NULL DEFAULT 0 CHECK (face_count >= 0),
    user_count         INTEGER NOT NULL DEFAULT 0 CHECK (user_count >= 0)
) WITHOUT ROWID;

-- Users of a collection (Rekognition's face aggregation).
-- status: enum fl_store_user_status (0 ACTIVE, 1 UPDATING, 2 CREATING, 3 CREATED).
CREATE TABLE users (
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    created    REAL NOT NULL,
    PRIMARY KEY (collection, user_id)
) WITHOUT ROWID;

-- Faces. key is the store's integer id (AUTOINCREMENT: never reused, so the
-- vector index can use it as its opaque id). FaceId is unique per collection
-- (an imported collection may carry FaceIds that exist elsewhere).
-- embedding: dim little-endian float32 values.
CREATE TABLE faces (
    key               INTEGER PRIMARY KEY AUTOINCREMENT,
    collection        TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    face_id           TEXT NOT NULL,
    image_id          TEXT NOT NULL,
    external_image_id TEXT,
    user_id           TEXT,
    bbox_left         REAL NOT NULL,
    bbox_top          REAL NOT NULL,
    bbox_width        REAL NOT NULL,
    bbox_height       REAL NOT NULL,
    confidence        REAL NOT NULL,
    model_version     TEXT NOT NULL,
    dim               INTEGER NOT NULL CHECK (dim > 0),
    embedding         BLOB NOT NULL CHECK (length(embedding) = 4 * dim),
    created           REAL NOT NULL,
    UNIQUE (collection, face_id),
    FOREIGN KEY (collection, user_id) REFERENCES users(collection, user_id)
);
CREATE INDEX faces_by_user ON faces(collection, user_id, face_id);
CREATE INDEX faces_by_image ON faces(collection, image_id);

-- Aligned face crops kept for re-indexing, apart from faces so that scans of
-- the embeddings never read through them.
CREATE TABLE face_crops (
    face_key INTEGER PRIMARY KEY REFERENCES faces(key) ON DELETE CASCADE,
    crop     BLOB NOT NULL
);

-- Tags of a collection (TagResource on the collection's ARN).
CREATE TABLE tags (
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;

-- ClientRequestTokens of successful calls: digest is the SHA-256 (hex) of the
-- call's operation and parameters.
CREATE TABLE request_tokens (
    token      TEXT PRIMARY KEY NOT NULL,
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    digest     TEXT NOT NULL,
    created    REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX request_tokens_by_collection ON request_tokens(collection);

-- Long-running jobs. collection is not a foreign key: a job's record
-- outlives its collection. state: enum fl_store_job_state.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY NOT NULL,
    type       TEXT NOT NULL,
    collection TEXT,
    state      INTEGER NOT NULL,
    progress   REAL NOT NULL,
    params     TEXT,
    message    TEXT,
    created    REAL NOT NULL,
    updated    REAL NOT NULL
) WITHOUT ROWID;

-- The change sequence: one row per changed entity, appended in the writing
-- transaction. AUTOINCREMENT keeps seq strictly increasing even after the
-- newest rows are pruned. op: enum fl_store_change_op.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    op         INTEGER NOT NULL,
    collection TEXT NOT NULL,
    face_key   INTEGER NOT NULL DEFAULT 0,
    id         TEXT
);
