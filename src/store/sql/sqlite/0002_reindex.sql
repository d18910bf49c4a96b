-- 0002_reindex.sql: the staging area of ReindexCollection.
-- A reindex job re-embeds the kept crops of a collection with a new model and
-- stages each new embedding here (in many small transactions, while the
-- collection keeps serving with its old model); one final transaction swaps
-- every staged embedding in and switches the collection's model. A face
-- deleted meanwhile takes its staged row with it.
CREATE TABLE reindex_staging (
    face_key   INTEGER PRIMARY KEY REFERENCES faces(key) ON DELETE CASCADE,
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    dim        INTEGER NOT NULL CHECK (dim > 0),
    embedding  BLOB NOT NULL CHECK (length(embedding) = 4 * dim)
);
CREATE INDEX reindex_staging_by_collection ON reindex_staging(collection);
