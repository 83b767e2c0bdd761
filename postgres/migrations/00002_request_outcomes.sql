-- Request outcomes: the stored reply to each request, so that a redelivered
-- or retried request is answered with it instead of being acted on twice.
-- A request's effects and its outcome are written in one transaction.

-- +goose Up

CREATE TABLE request_outcomes (
    -- The calling service and the request id it chose: two clients may use
    -- the same request id. Both are checked in the adapter too, so that a
    -- bad key is CodeInvalid rather than a constraint violation.
    client_id  text        NOT NULL,
    request_id text        NOT NULL,
    code       text        NOT NULL DEFAULT '', -- the reply's error code, '' for success
    -- Sealed (encrypted) by the worker before it gets here: replies carry
    -- tokens.
    reply      bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT request_outcomes_pkey PRIMARY KEY (client_id, request_id),
    CONSTRAINT request_outcomes_client_id_check CHECK (char_length(client_id) BETWEEN 1 AND 255),
    CONSTRAINT request_outcomes_request_id_check CHECK (char_length(request_id) BETWEEN 1 AND 255)
);

-- The purge deletes by expiry, a batch at a time.
CREATE INDEX request_outcomes_expires_at_idx ON request_outcomes (expires_at);

-- +goose Down

DROP TABLE request_outcomes;
