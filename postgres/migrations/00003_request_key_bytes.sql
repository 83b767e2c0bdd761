-- Request ids and client ids are limited in bytes, not characters: the wire
-- contract counts bytes, as Kafka headers, clients in every language and the
-- primary-key index do. NOT VALID: rows stored under the old rule (255
-- characters, up to 1020 bytes) are left alone and expire with their outcome
-- TTL; every new row is checked.

-- +goose Up

ALTER TABLE request_outcomes
    DROP CONSTRAINT request_outcomes_client_id_check,
    DROP CONSTRAINT request_outcomes_request_id_check,
    ADD CONSTRAINT request_outcomes_client_id_check CHECK (octet_length(client_id) BETWEEN 1 AND 255) NOT VALID,
    ADD CONSTRAINT request_outcomes_request_id_check CHECK (octet_length(request_id) BETWEEN 1 AND 255) NOT VALID;

-- +goose Down

ALTER TABLE request_outcomes
    DROP CONSTRAINT request_outcomes_client_id_check,
    DROP CONSTRAINT request_outcomes_request_id_check,
    ADD CONSTRAINT request_outcomes_client_id_check CHECK (char_length(client_id) BETWEEN 1 AND 255),
    ADD CONSTRAINT request_outcomes_request_id_check CHECK (char_length(request_id) BETWEEN 1 AND 255);
