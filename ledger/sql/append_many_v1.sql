-- fairshare_ledger_append_many, version 1: several entries appended in one call, in the
-- order given, each by fairshare_ledger_append (the newest version, with its locks, checks
-- and result), for a caller that appends a batch inside its own transaction (a revenue
-- pool's statements): one round trip instead of one per entry. The head lock, taken by the
-- first append, is held until the caller's COMMIT either way. Loaded by
-- ledger/migrations/0005_append_many.py.
--
-- p_entries is a JSON array of objects with the arguments of fairshare_ledger_append by
-- name: kind, consortium (uuid text), reference_type, reference_id, actor, idempotency_key
-- (or null), head, middle, after_seq, tail (hex of the entry's bytes around the values the
-- head knows), accounts, currencies, amounts (minor units) and participants (arrays).
--
-- Released, so immutable: a change is a new file (append_many_v<N+1>.sql) plus a new
-- migration; the SHA-256 of every released file is pinned in tests/ledger/test_append.py.

CREATE OR REPLACE FUNCTION fairshare_ledger_append_many(p_entries jsonb)
RETURNS TABLE (r_seq bigint, r_time text, r_prev bytea, r_leaf bytea, r_existing boolean)
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
BEGIN
    FOR e IN SELECT t.value FROM jsonb_array_elements(p_entries) WITH ORDINALITY AS t(value, n) ORDER BY t.n LOOP
        RETURN QUERY SELECT * FROM fairshare_ledger_append(
            e->>'kind', (e->>'consortium')::uuid, e->>'reference_type', e->>'reference_id', e->>'actor',
            e->>'idempotency_key', decode(e->>'head', 'hex'), decode(e->>'middle', 'hex'),
            decode(e->>'after_seq', 'hex'), decode(e->>'tail', 'hex'),
            ARRAY(SELECT x FROM jsonb_array_elements_text(e->'accounts') WITH ORDINALITY AS a(x, n) ORDER BY a.n),
            ARRAY(SELECT x FROM jsonb_array_elements_text(e->'currencies') WITH ORDINALITY AS a(x, n) ORDER BY a.n),
            ARRAY(SELECT x::bigint FROM jsonb_array_elements_text(e->'amounts') WITH ORDINALITY AS a(x, n) ORDER BY a.n),
            ARRAY(SELECT x FROM jsonb_array_elements_text(e->'participants') WITH ORDINALITY AS a(x, n) ORDER BY a.n));
    END LOOP;
END;
$$;
