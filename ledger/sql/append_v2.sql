-- fairshare_ledger_append, version 2: as version 1, and it takes KEY SHARE locks on the
-- consortium and participant rows before the head lock (the ledger tables lost their foreign
-- keys), refuses an unknown consortium (FSL03), and leaves its result in the session setting
-- fairshare.ledger_appended for the one-round-trip append. Loaded by
-- ledger/migrations/0004_append_without_foreign_keys.py.
--
-- Released, so immutable: databases were built by running exactly this text, and migrations
-- replay it. A change is a new file (append_v<N+1>.sql) plus a new migration that loads it and
-- whose reverse loads the version before; never an edit of this file. The SHA-256 of every
-- released file is pinned in tests/ledger/test_append.py.
--
-- The INSERT column lists are ledger/columns.py's tuples (the Python path of
-- ledger/services/append.py writes the same ones; tests/ledger/test_append.py checks the
-- newest file against them).

CREATE OR REPLACE FUNCTION fairshare_ledger_append(
    p_kind text, p_consortium uuid, p_reference_type text, p_reference_id text, p_actor text,
    p_idempotency_key text, p_head bytea, p_middle bytea, p_after_seq bytea, p_tail bytea,
    p_accounts text[], p_currencies text[], p_amounts bigint[], p_participants text[]
) RETURNS TABLE (r_seq bigint, r_time text, r_prev bytea, r_leaf bytea, r_existing boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint; v_last bytea; v_frontier bytea; v_time text; v_data bytea; v_leaf bytea;
    v_hash bytea; v_level int := 0; v_index bigint; v_existing bigint; v_inserted int; v_ids uuid[];
BEGIN
    -- Before the head lock: the rows this entry names, locked FOR KEY SHARE until COMMIT (what
    -- a foreign key would lock at COMMIT, inside the head lock), so they cannot be deleted
    -- under it. An unknown consortium or participant is the caller's mistake.
    PERFORM 1 FROM consortium_consortium WHERE id = p_consortium FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No consortium %.', p_consortium USING ERRCODE = 'FSL03';
    END IF;
    IF cardinality(p_participants) > 0 THEN
        v_ids := ARRAY(SELECT id FROM consortium_participant
                       WHERE consortium_id = p_consortium AND slug = ANY(p_participants) ORDER BY slug FOR KEY SHARE);
        IF cardinality(v_ids) <> cardinality(p_participants) THEN
            RAISE EXCEPTION 'Not participants of {consortium}: %.', array_to_string(ARRAY(
                SELECT s FROM unnest(p_participants) AS s WHERE s NOT IN (
                    SELECT slug FROM consortium_participant WHERE consortium_id = p_consortium)
                ORDER BY s), ', ') USING ERRCODE = 'FSL02';
        END IF;
    END IF;
    -- Commit without waiting for the WAL flush, so the head lock is released before the fsync
    -- and concurrent appenders do not queue behind each other's disk writes. The caller
    -- (ledger.services.append) makes the entry durable right after COMMIT, outside the lock.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT size, last_hash, frontier INTO v_size, v_last, v_frontier FROM ledger_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- The first append ever (or after a test flush); concurrent first appenders queue
        -- on the inserted row, and only the one whose insert took effect checks for entries.
        INSERT INTO ledger_head (id, size, last_hash, frontier) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, ''::bytea)
            ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted = 1 AND EXISTS (SELECT 1 FROM ledger_entry) THEN
            RAISE EXCEPTION 'the ledger head is missing but entries exist; refusing to start a second chain'
                USING ERRCODE = 'FSL01';
        END IF;
        SELECT size, last_hash, frontier INTO v_size, v_last, v_frontier FROM ledger_head WHERE id = 1 FOR UPDATE;
    END IF;
    IF length(v_frontier) <> 32 * length(replace(v_size::bit(64)::text, '0', '')) OR length(v_last) <> 32 THEN
        RAISE EXCEPTION 'the ledger head at size % is malformed', v_size USING ERRCODE = 'FSL01';
    END IF;
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent retry may have committed while this call waited for the lock.
        SELECT seq INTO v_existing FROM ledger_entry WHERE idempotency_key = p_idempotency_key;
        IF FOUND THEN
            PERFORM set_config('fairshare.ledger_appended', v_existing || ' t', false);
            RETURN QUERY SELECT v_existing, NULL::text, NULL::bytea, NULL::bytea, true;
            RETURN;
        END IF;
    END IF;

    v_time := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_data := p_head || convert_to(encode(v_last, 'hex'), 'UTF8') || p_middle || convert_to(v_size::text, 'UTF8')
              || p_after_seq || convert_to(v_time, 'UTF8') || p_tail;
    v_leaf := sha256('\x00'::bytea || v_data);

    INSERT INTO ledger_entry (seq, kind, consortium_id, reference_type, reference_id, actor, created_at,
                              idempotency_key, prev_hash, leaf_hash, canonical)
    VALUES (v_size, p_kind, p_consortium, p_reference_type, p_reference_id, p_actor, v_time::timestamptz,
            p_idempotency_key, v_last, v_leaf, v_data);
    IF cardinality(p_accounts) > 0 THEN
        INSERT INTO ledger_posting (entry_id, line, account, currency, amount_minor)
        SELECT v_size, t.line - 1, t.account, t.currency, t.amount
        FROM unnest(p_accounts, p_currencies, p_amounts) WITH ORDINALITY AS t(account, currency, amount, line);
    END IF;
    IF cardinality(v_ids) > 0 THEN
        INSERT INTO ledger_entry_participant (entry_id, participant_id) SELECT v_size, t.id FROM unnest(v_ids) AS t(id);
    END IF;

    -- The leaf completes perfect subtree (0, size) and, while it is a right child, its parents;
    -- each left sibling is the last hash of the frontier.
    v_hash := v_leaf;
    v_index := v_size;
    INSERT INTO ledger_node (level, idx, hash) VALUES (0, v_size, v_leaf);
    WHILE v_index % 2 = 1 LOOP
        v_hash := sha256('\x01'::bytea || substring(v_frontier FROM length(v_frontier) - 31) || v_hash);
        v_frontier := substring(v_frontier FROM 1 FOR length(v_frontier) - 32);
        v_level := v_level + 1;
        v_index := v_index / 2;
        INSERT INTO ledger_node (level, idx, hash) VALUES (v_level, v_index, v_hash);
    END LOOP;
    UPDATE ledger_head SET size = v_size + 1, last_hash = v_leaf, frontier = v_frontier || v_hash WHERE id = 1;
    -- Session-scoped (kept after COMMIT) for the statement that follows in the same round trip.
    PERFORM set_config('fairshare.ledger_appended',
                       v_size || ' f ' || v_time || ' ' || encode(v_last, 'hex') || ' ' || encode(v_leaf, 'hex'), false);
    RETURN QUERY SELECT v_size, v_time, v_last, v_leaf, false;
END;
$$;
