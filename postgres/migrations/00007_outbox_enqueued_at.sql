-- When each outbox row was written, by the server's clock as the statement
-- ran: moments before its transaction commits, since the application
-- enqueues last. The relay measures the lag from there to the broker's
-- acknowledgement.

-- +goose Up

ALTER TABLE outbox ADD COLUMN enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp();

-- +goose Down

ALTER TABLE outbox DROP COLUMN enqueued_at;
