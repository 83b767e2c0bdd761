-- The initial schema: users, their sessions, the refresh tokens that extend a
-- session, and the keys that sign access tokens.
--
-- Conventions: ids are uuid; every timestamp is timestamptz (microsecond
-- precision, written in UTC by the adapter); constraints are named so that the
-- adapter can translate violations by name.

-- +goose Up

CREATE TABLE users (
    id            uuid        NOT NULL,
    -- Normalised (lower-cased) by domain.ParseEmail before it gets here, so a
    -- plain unique constraint makes two spellings of one address collide.
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    status        text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled'))
);

-- A session is the family of one login's refresh tokens: revoking it (logout,
-- logout-all, reuse of a rotated token) revokes every token in the family.
-- Rows are revoked, not deleted, so that revocation is durable and auditable.
CREATE TABLE sessions (
    id         uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    client_id  text        NOT NULL,
    -- The end user's address as the requesting service reported it. Text, not
    -- inet: it is informational, and an address we cannot parse must never
    -- fail a login.
    ip         text        NULL,
    user_agent text        NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- Logout-all and "revoke other sessions" select by user.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Only the SHA-256 of a refresh token is stored. Rotation marks the presented
-- token used and records its successor in the same transaction; presenting a
-- used token again is reuse, and revokes the session (the whole family).
CREATE TABLE refresh_tokens (
    token_hash  bytea       NOT NULL,
    session_id  uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NULL,
    -- The successor's hash. Not a foreign key, so that rotation may write the
    -- successor and claim the predecessor in either order.
    replaced_by bytea       NULL,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_token_hash_check CHECK (length(token_hash) = 32),
    CONSTRAINT refresh_tokens_replaced_by_check CHECK (
        replaced_by IS NULL OR (length(replaced_by) = 32 AND used_at IS NOT NULL)
    )
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Shared by every worker; the private half is sealed with the key-encryption
-- key before it reaches the database.
CREATE TABLE signing_keys (
    kid                text        NOT NULL,
    algorithm          text        NOT NULL,
    public_key         bytea       NOT NULL,
    sealed_private_key bytea       NOT NULL,
    created_at         timestamptz NOT NULL,
    sign_from          timestamptz NOT NULL,
    sign_until         timestamptz NULL, -- NULL: not yet decided
    publish_until      timestamptz NULL, -- NULL: not yet decided
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);

-- +goose Down

DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
