-- SaveOutcome sends its INSERT with the transaction's COMMIT, to save a
-- round trip. An outcome already stored for the request must then fail the
-- statement on the server, so that the COMMIT after it does not run: an
-- INSERT ... ON CONFLICT that changes no row succeeds. This function turns
-- "no row" into the unique violation a plain INSERT would have raised.

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION request_outcome_saved(saved bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF saved = 0 THEN
        RAISE EXCEPTION 'an outcome is stored for this request already'
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'request_outcomes_pkey';
    END IF;
    RETURN saved;
END
$$;
-- +goose StatementEnd

-- +goose Down

DROP FUNCTION request_outcome_saved(bigint);
