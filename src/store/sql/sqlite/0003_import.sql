-- 0003_import.sql: the staging area of a staged ImportFaces.
-- An import of any size arrives in many requests: the first opens an import
-- (a row of imports), each page of faces and users is staged here (invisible
-- to ListFaces and searches: nothing reads these tables but the import), and
-- one final transaction moves every staged face and user into the collection
-- (creating it if needed) or, if any staged FaceId is already there with
-- other content, changes nothing. An import that is never committed is
-- dropped with its staged rows (abort, or expiry after inactivity).
-- collection is not a foreign key: the commit may be what creates it.
-- expected_faces: the number of faces the commit must find staged (-1: any).
-- state: 0 open, 1 committed (the counts then hold the commit's result, so
-- that a repeated commit answers the same).
CREATE TABLE imports (
    id                 TEXT PRIMARY KEY NOT NULL,
    collection         TEXT NOT NULL,
    model_id           TEXT NOT NULL,
    face_model_version TEXT NOT NULL,
    dim                INTEGER NOT NULL CHECK (dim > 0),
    collection_created REAL NOT NULL,
    expected_faces     INTEGER NOT NULL DEFAULT -1,
    state              INTEGER NOT NULL DEFAULT 0,
    faces_imported     INTEGER NOT NULL DEFAULT 0,
    faces_present      INTEGER NOT NULL DEFAULT 0,
    users_created      INTEGER NOT NULL DEFAULT 0,
    created_collection INTEGER NOT NULL DEFAULT 0,
    created            REAL NOT NULL,
    updated            REAL NOT NULL
) WITHOUT ROWID;

-- Staged faces: the columns of faces, plus the crop.
CREATE TABLE import_faces (
    import_id         TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
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
    crop              BLOB,
    created           REAL NOT NULL,
    PRIMARY KEY (import_id, face_id)
);

-- Staged users (users.jsonl; the UserIds of staged faces need no row here).
CREATE TABLE import_users (
    import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (import_id, user_id)
) WITHOUT ROWID;
