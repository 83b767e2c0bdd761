-- Each stored outcome names the request it answers by a keyed digest
-- (operation, its fields and the reply topic), so that a request that reuses
-- a client id and request id but asks something else is refused instead of
-- being handed another request's reply.

-- +goose Up

-- Rows stored before have no digest: empty bytes, which match no request,
-- so a retry of such a request is refused rather than trusted. They expire
-- with their outcome TTL.
ALTER TABLE request_outcomes ADD COLUMN request_digest bytea NOT NULL DEFAULT '\x';

-- +goose Down

ALTER TABLE request_outcomes DROP COLUMN request_digest;
