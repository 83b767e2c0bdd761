-- A random 16 bytes per row that the sealed value is bound to, in place of
-- the row's id: the id is now drawn by the INSERT itself, after the row's
-- key is locked, so that Enqueue takes one round trip. Rows written before
-- have none and stay bound to their id.

-- +goose Up

ALTER TABLE outbox ADD COLUMN seal_nonce bytea NULL
    CONSTRAINT outbox_seal_nonce_check CHECK (seal_nonce IS NULL OR octet_length(seal_nonce) = 16);

-- +goose Down

ALTER TABLE outbox DROP COLUMN seal_nonce;
