-- The session and account lifecycle: password changes end older sessions,
-- addresses are verified, accounts are erased (personal data gone, a
-- tombstone kept for the audit trail), sessions are revoked with a reason,
-- and one-time codes prove control of an address.

-- +goose Up

ALTER TABLE users
    ADD COLUMN password_changed_at timestamptz NULL,
    ADD COLUMN email_verified_at   timestamptz NULL,
    ADD COLUMN erased_at           timestamptz NULL;
UPDATE users SET password_changed_at = created_at;
ALTER TABLE users
    ALTER COLUMN password_changed_at SET NOT NULL,
    DROP CONSTRAINT users_status_check,
    ADD CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled', 'erased'));

-- Why a session ended: logout, reuse of a rotated refresh token, a password
-- change, ... (domain.RevokedBy*). When the session last proved the password:
-- a session that has not done so since the password changed cannot refresh.
ALTER TABLE sessions
    ADD COLUMN revoke_reason    text        NULL,
    ADD COLUMN authenticated_at timestamptz NULL;
UPDATE sessions SET authenticated_at = created_at;
ALTER TABLE sessions ALTER COLUMN authenticated_at SET NOT NULL;

-- The fast revocation list is rebuilt from the sessions revoked within an
-- access token's lifetime.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- One code per user and purpose; only its SHA-256 is stored.
CREATE TABLE one_time_codes (
    user_id    uuid        NOT NULL,
    purpose    text        NOT NULL,
    code_hash  bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer     NOT NULL DEFAULT 0,
    CONSTRAINT one_time_codes_pkey PRIMARY KEY (user_id, purpose),
    CONSTRAINT one_time_codes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT one_time_codes_purpose_check CHECK (purpose IN ('password_reset', 'email_verification')),
    CONSTRAINT one_time_codes_code_hash_check CHECK (length(code_hash) = 32)
);

-- +goose Down

DROP TABLE one_time_codes;
DROP INDEX sessions_revoked_at_idx;
ALTER TABLE sessions DROP COLUMN revoke_reason, DROP COLUMN authenticated_at;
ALTER TABLE users
    DROP CONSTRAINT users_status_check,
    ADD CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled')),
    DROP COLUMN erased_at,
    DROP COLUMN email_verified_at,
    DROP COLUMN password_changed_at;
