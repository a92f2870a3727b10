"""The Postgres schema, as versioned migrations, and the functions that run
each change of messages or presence in one statement (one round trip, one
transaction).

Each migration runs in its own transaction, under an advisory lock (two
processes starting together, or ``python -m chatzilla migrate`` beside a
running server, never apply one twice); ``schema_migrations`` records the
versions applied. A database of a newer Chatzilla is refused.

Per room, the row of ``rooms`` is locked by every change to that room (an
append, an arrival, a departure) until the change commits: ids are strictly
increasing per room whichever process appends, and they commit, and are
notified, in their order. A batch of appends locks its rooms in name order,
so two batches never wait for each other in a circle.
"""

from __future__ import annotations

#: Names the advisory lock held while migrating (any number unlikely to be
#: another application's).
MIGRATION_LOCK = 0x63686174

#: LISTEN/NOTIFY channels: "ROOM ID TOKEN" of each new message (the token
#: names the append in the process that made it); a JSON object for
#: each presence change (node, room, event, email, count, version).
MESSAGES_CHANNEL = "chatzilla_messages"
#: "ROOM REV" of each change to a stored message (an edit, a delete).
CHANGES_CHANNEL = "chatzilla_changes"
PRESENCE_CHANNEL = "chatzilla_presence"

MIGRATIONS: tuple[str, ...] = (
    # 1: messages numbered per room; each room's last id and presence
    # version; presence over processes (nodes, their connections, who is
    # present in each room in order of arrival, and until when someone with
    # no connection left stays present).
    """
    CREATE TABLE rooms (
        room text PRIMARY KEY,
        last_id bigint NOT NULL DEFAULT 0,
        presence_version bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        room text NOT NULL,
        id bigint NOT NULL,
        sender text NOT NULL,
        content text NOT NULL,
        ts double precision NOT NULL,
        ref text,
        PRIMARY KEY (room, id)
    );
    CREATE INDEX messages_by_ref ON messages (room, sender, ref) WHERE ref IS NOT NULL;
    CREATE TABLE nodes (
        node text PRIMARY KEY,
        seen double precision NOT NULL
    );
    CREATE TABLE connections (
        node text NOT NULL,
        room text NOT NULL,
        email text NOT NULL,
        n integer NOT NULL,
        PRIMARY KEY (node, room, email)
    );
    CREATE INDEX connections_by_person ON connections (room, email);
    CREATE TABLE present (
        room text NOT NULL,
        email text NOT NULL,
        arrival bigserial,
        away_until double precision,
        PRIMARY KEY (room, email)
    );
    CREATE INDEX present_away ON present (away_until) WHERE away_until IS NOT NULL;

    CREATE FUNCTION chatzilla_now() RETURNS double precision
    LANGUAGE sql AS $$ SELECT extract(epoch FROM clock_timestamp())::double precision $$;

    -- Appends a batch, in order: each is a retry (an earlier message of the
    -- sender with the same ref, within the window: returned, duplicate) or
    -- stored with the room's next id and notified with its token.
    CREATE FUNCTION chatzilla_append(
        p_rooms text[], p_senders text[], p_contents text[], p_refs text[], p_tokens text[],
        p_ts double precision, p_window double precision
    ) RETURNS TABLE (id bigint, content text, ts double precision, duplicate boolean)
    LANGUAGE plpgsql AS $$
    DECLARE
        i integer;
        new_id bigint;
    BEGIN
        INSERT INTO rooms (room) SELECT DISTINCT r FROM unnest(p_rooms) AS r ORDER BY r
            ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms WHERE room = ANY (p_rooms) ORDER BY room FOR UPDATE;
        FOR i IN 1 .. coalesce(array_length(p_rooms, 1), 0) LOOP
            IF p_refs[i] IS NOT NULL THEN
                SELECT m.id, m.content, m.ts INTO id, content, ts FROM messages AS m
                 WHERE m.room = p_rooms[i] AND m.sender = p_senders[i] AND m.ref = p_refs[i]
                   AND m.ts >= p_ts - p_window
                 ORDER BY m.id DESC LIMIT 1;
                IF FOUND THEN
                    duplicate := true;
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            UPDATE rooms AS r SET last_id = r.last_id + 1 WHERE r.room = p_rooms[i]
                RETURNING r.last_id INTO new_id;
            INSERT INTO messages (room, id, sender, content, ts, ref)
                VALUES (p_rooms[i], new_id, p_senders[i], p_contents[i], p_ts, p_refs[i]);
            PERFORM pg_notify('chatzilla_messages', p_rooms[i] || ' ' || new_id || ' ' || p_tokens[i]);
            id := new_id;
            content := p_contents[i];
            ts := p_ts;
            duplicate := false;
            RETURN NEXT;
        END LOOP;
    END $$;

    CREATE FUNCTION chatzilla_presence_changed(
        p_node text, p_room text, p_event text, p_email text
    ) RETURNS TABLE (count integer, version bigint)
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE rooms AS r SET presence_version = r.presence_version + 1 WHERE r.room = p_room
            RETURNING r.presence_version INTO version;
        SELECT count(*) INTO count FROM present AS p WHERE p.room = p_room;
        PERFORM pg_notify('chatzilla_presence', json_build_object(
            'node', p_node, 'room', p_room, 'event', p_event, 'email', p_email,
            'count', count, 'version', version)::text);
        RETURN NEXT;
    END $$;

    -- p_n more connections of p_email in p_room, on p_node. first: 1 if that
    -- made them present, 2 if they were back within their grace period,
    -- else 0. Also the room's presence version and last message id, and
    -- who is present, in order of arrival.
    CREATE FUNCTION chatzilla_enter(p_room text, p_email text, p_node text, p_n integer)
    RETURNS TABLE (first integer, version bigint, last_id bigint, participants text[])
    LANGUAGE plpgsql AS $$
    DECLARE
        away double precision;
    BEGIN
        INSERT INTO rooms (room) VALUES (p_room) ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms AS r WHERE r.room = p_room FOR UPDATE;
        INSERT INTO nodes AS n (node, seen) VALUES (p_node, chatzilla_now())
            ON CONFLICT (node) DO UPDATE SET seen = excluded.seen;
        INSERT INTO connections AS c (node, room, email, n) VALUES (p_node, p_room, p_email, p_n)
            ON CONFLICT (node, room, email) DO UPDATE SET n = c.n + excluded.n;
        SELECT p.away_until INTO away FROM present AS p WHERE p.room = p_room AND p.email = p_email;
        IF NOT FOUND THEN
            INSERT INTO present (room, email) VALUES (p_room, p_email);
            PERFORM chatzilla_presence_changed(p_node, p_room, 'join', p_email);
            first := 1;
        ELSIF away IS NOT NULL THEN
            UPDATE present AS p SET away_until = NULL WHERE p.room = p_room AND p.email = p_email;
            first := 2;
        ELSE
            first := 0;
        END IF;
        SELECT r.presence_version, r.last_id INTO version, last_id FROM rooms AS r WHERE r.room = p_room;
        participants := ARRAY(SELECT p.email FROM present AS p WHERE p.room = p_room ORDER BY p.arrival);
        RETURN NEXT;
    END $$;

    -- One connection of p_email in p_room on p_node fewer. When it was their
    -- last anywhere: they leave (left, with the count and version after), or,
    -- with a grace period (p_grace not null), stay present until its end (away).
    CREATE FUNCTION chatzilla_leave(p_room text, p_email text, p_node text, p_grace double precision)
    RETURNS TABLE (left_room boolean, count integer, version bigint, away boolean)
    LANGUAGE plpgsql AS $$
    DECLARE
        mine integer;
    BEGIN
        left_room := false;
        away := false;
        version := 0;
        PERFORM 1 FROM rooms AS r WHERE r.room = p_room FOR UPDATE;
        UPDATE connections AS c SET n = c.n - 1
         WHERE c.node = p_node AND c.room = p_room AND c.email = p_email RETURNING c.n INTO mine;
        IF mine IS NOT NULL AND mine <= 0 THEN
            DELETE FROM connections AS c WHERE c.node = p_node AND c.room = p_room AND c.email = p_email;
        END IF;
        IF mine IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM connections AS c WHERE c.room = p_room AND c.email = p_email AND c.n > 0
        ) THEN
            IF p_grace IS NOT NULL THEN
                UPDATE present AS p SET away_until = chatzilla_now() + p_grace
                 WHERE p.room = p_room AND p.email = p_email;
                away := true;
            ELSE
                DELETE FROM present AS p WHERE p.room = p_room AND p.email = p_email;
                SELECT c.count, c.version INTO count, version
                  FROM chatzilla_presence_changed(p_node, p_room, 'leave', p_email) AS c;
                left_room := true;
            END IF;
        END IF;
        IF count IS NULL THEN
            SELECT count(*) INTO count FROM present AS p WHERE p.room = p_room;
        END IF;
        RETURN NEXT;
    END $$;

    -- Everyone whose grace period is over and who has no connection leaves.
    -- The room is locked before its presence, as by every other change.
    CREATE FUNCTION chatzilla_expire(p_node text)
    RETURNS TABLE (room text, email text, count integer, version bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        gone record;
    BEGIN
        FOR gone IN
            SELECT p.room, p.email FROM present AS p
             WHERE p.away_until <= chatzilla_now()
             ORDER BY p.room
        LOOP
            PERFORM 1 FROM rooms AS r WHERE r.room = gone.room FOR UPDATE;
            DELETE FROM present AS p
             WHERE p.room = gone.room AND p.email = gone.email AND p.away_until <= chatzilla_now()
               AND NOT EXISTS (SELECT 1 FROM connections AS c WHERE c.room = p.room AND c.email = p.email);
            IF FOUND THEN
                room := gone.room;
                email := gone.email;
                SELECT c.count, c.version INTO count, version
                  FROM chatzilla_presence_changed(p_node, gone.room, 'leave', gone.email) AS c;
                RETURN NEXT;
            END IF;
        END LOOP;
    END $$;

    -- Forgets the connections of every node not seen for p_ttl seconds (or
    -- of p_node itself, stopping): their people with no connection left stay
    -- present for the grace period, then leave. Returns how many nodes.
    CREATE FUNCTION chatzilla_reap(p_ttl double precision, p_grace double precision, p_node text)
    RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        dead text[];
    BEGIN
        dead := ARRAY(
            SELECT n.node FROM nodes AS n
             WHERE n.seen < chatzilla_now() - p_ttl OR n.node = p_node
             FOR UPDATE SKIP LOCKED
        );
        IF coalesce(array_length(dead, 1), 0) = 0 THEN
            RETURN 0;
        END IF;
        WITH gone AS (
            DELETE FROM connections AS c WHERE c.node = ANY (dead) RETURNING c.room, c.email
        )
        UPDATE present AS p SET away_until = chatzilla_now() + p_grace
          FROM (SELECT DISTINCT g.room, g.email FROM gone AS g) AS g
         WHERE p.room = g.room AND p.email = g.email AND p.away_until IS NULL
           AND NOT EXISTS (
               SELECT 1 FROM connections AS c
                WHERE c.room = g.room AND c.email = g.email AND NOT c.node = ANY (dead)
           );
        DELETE FROM nodes AS n WHERE n.node = ANY (dead);
        RETURN coalesce(array_length(dead, 1), 0);
    END $$;
    """,
    # 2: the lowest id each room keeps: retention removed every one below.
    """
    ALTER TABLE rooms ADD COLUMN first_id bigint NOT NULL DEFAULT 1;
    """,
    # 3: sign-in (chatzilla.accounts): people, with their public id and
    # display name; sign-in links, sessions and bot tokens, by the SHA-256
    # digest of their secret, never the secret itself.
    """
    CREATE TABLE people (
        id text PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text NOT NULL
    );
    CREATE TABLE signin_links (
        digest text PRIMARY KEY,
        email text NOT NULL,
        room text NOT NULL,
        expires double precision NOT NULL
    );
    CREATE TABLE sessions (
        digest text PRIMARY KEY,
        person text NOT NULL,
        expires double precision NOT NULL
    );
    CREATE TABLE bot_tokens (
        digest text PRIMARY KEY,
        person text NOT NULL,
        label text NOT NULL,
        created double precision NOT NULL
    );
    """,
    # 4: edits and deletes: a changed message holds the id of its latest
    # change (rev, counted per room in rooms.last_rev), found by it for a
    # catch-up; a deleted one keeps its row, with no content.
    # chatzilla_change applies one change under the room's lock (so change
    # ids commit in order, as message ids do) and notifies "ROOM REV".
    # status 0: no such message; 1: changed; 2: nothing to change (deleted
    # already, or an edit to the text it has).
    """
    ALTER TABLE rooms ADD COLUMN last_rev bigint NOT NULL DEFAULT 0;
    ALTER TABLE messages
        ADD COLUMN rev bigint NOT NULL DEFAULT 0,
        ADD COLUMN edited double precision,
        ADD COLUMN deleted boolean NOT NULL DEFAULT false;
    CREATE INDEX messages_by_rev ON messages (room, rev) WHERE rev > 0;

    CREATE FUNCTION chatzilla_change(
        p_room text, p_id bigint, p_kind text, p_content text, p_ts double precision
    ) RETURNS TABLE (
        status integer, id bigint, sender text, content text, ts double precision, ref text,
        rev bigint, edited double precision, deleted boolean
    )
    LANGUAGE plpgsql AS $$
    DECLARE
        m messages%ROWTYPE;
    BEGIN
        PERFORM 1 FROM rooms AS r WHERE r.room = p_room FOR UPDATE;
        SELECT * INTO m FROM messages AS x WHERE x.room = p_room AND x.id = p_id;
        IF NOT FOUND THEN
            status := 0;
            RETURN NEXT;
            RETURN;
        END IF;
        status := 2;
        IF NOT m.deleted AND NOT (p_kind = 'edit' AND m.content = p_content) THEN
            UPDATE rooms AS r SET last_rev = r.last_rev + 1 WHERE r.room = p_room
                RETURNING r.last_rev INTO m.rev;
            IF p_kind = 'delete' THEN
                m.content := '';
                m.deleted := true;
            ELSE
                m.content := p_content;
                m.edited := p_ts;
            END IF;
            UPDATE messages AS x SET content = m.content, deleted = m.deleted, edited = m.edited, rev = m.rev
             WHERE x.room = p_room AND x.id = p_id;
            PERFORM pg_notify('chatzilla_changes', p_room || ' ' || m.rev);
            status := 1;
        END IF;
        id := m.id;
        sender := m.sender;
        content := m.content;
        ts := m.ts;
        ref := m.ref;
        rev := m.rev;
        edited := m.edited;
        deleted := m.deleted;
        RETURN NEXT;
    END $$;
    """,
    # 5: moderation (chatzilla.moderation_store): each room's owner and
    # moderators (one owner at most), mutes and bans in force or expired,
    # and the audit log of every change (each a JSON action).
    """
    CREATE TABLE room_roles (
        room text NOT NULL,
        person text NOT NULL,
        role text NOT NULL,
        PRIMARY KEY (room, person)
    );
    CREATE UNIQUE INDEX room_owner ON room_roles (room) WHERE role = 'owner';
    CREATE TABLE sanctions (
        room text NOT NULL,
        person text NOT NULL,
        kind text NOT NULL,
        until double precision,
        reason text NOT NULL,
        actor text NOT NULL,
        ts double precision NOT NULL,
        PRIMARY KEY (room, person, kind)
    );
    CREATE TABLE audit_log (
        seq bigserial PRIMARY KEY,
        room text NOT NULL,
        action text NOT NULL
    );
    CREATE INDEX audit_log_by_room ON audit_log (room, seq);
    """,
    # 6: reactions (JSON [[emoji, [who...]], ...], NULL: none). A change is
    # computed by the backend (chat.changed, the rule of every backend) and
    # set by chatzilla_set_message only if the message is still at the
    # change id it was computed from: status 0, no such message; 1, set as
    # the room's next change id (rev; notified "ROOM REV"); 2, it changed
    # meanwhile (read it again). It replaces chatzilla_change.
    """
    ALTER TABLE messages ADD COLUMN reactions text;
    DROP FUNCTION chatzilla_change(text, bigint, text, text, double precision);

    CREATE FUNCTION chatzilla_set_message(
        p_room text, p_id bigint, p_expected bigint, p_content text, p_edited double precision,
        p_deleted boolean, p_reactions text
    ) RETURNS TABLE (status integer, rev bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        found_rev bigint;
        new_rev bigint;
    BEGIN
        PERFORM 1 FROM rooms AS r WHERE r.room = p_room FOR UPDATE;
        SELECT m.rev INTO found_rev FROM messages AS m WHERE m.room = p_room AND m.id = p_id;
        IF NOT FOUND THEN
            status := 0;
            rev := 0;
        ELSIF found_rev <> p_expected THEN
            status := 2;
            rev := found_rev;
        ELSE
            UPDATE rooms AS r SET last_rev = r.last_rev + 1 WHERE r.room = p_room
                RETURNING r.last_rev INTO new_rev;
            UPDATE messages AS m
               SET content = p_content, edited = p_edited, deleted = p_deleted,
                   reactions = p_reactions, rev = new_rev
             WHERE m.room = p_room AND m.id = p_id;
            PERFORM pg_notify('chatzilla_changes', p_room || ' ' || new_rev);
            status := 1;
            rev := new_rev;
        END IF;
        RETURN NEXT;
    END $$;
    """,
    # 7: rooms with rules (chatzilla.moderation_store): a topic, private
    # (invited people only) and read-only (moderators only speak); who is
    # invited to a private room.
    """
    CREATE TABLE room_rules (
        room text PRIMARY KEY,
        topic text NOT NULL,
        private boolean NOT NULL,
        read_only boolean NOT NULL
    );
    CREATE TABLE invitations (
        room text NOT NULL,
        person text NOT NULL,
        PRIMARY KEY (room, person)
    );
    """,
    # 8: full-text search: each message's words (the 'simple' configuration:
    # lower-cased, no stemming, no stop words, every language alike) kept
    # beside it, indexed by GIN; a deleted message's text is empty.
    """
    ALTER TABLE messages
        ADD COLUMN words tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED;
    CREATE INDEX messages_words ON messages USING gin (words);
    """,
    # 9: reports of messages (chatzilla.moderation_store), each the JSON
    # action that made it, open until a moderator resolves it.
    """
    CREATE TABLE reports (
        seq bigserial PRIMARY KEY,
        room text NOT NULL,
        action text NOT NULL,
        resolved boolean NOT NULL DEFAULT false
    );
    CREATE INDEX reports_open ON reports (room, seq) WHERE NOT resolved;
    """,
    # 10: replies: the id of the message of the room a message replies to
    # (0: none); what the reply shows of it is read with it, never stored
    # (a deleted message's text stays gone). chatzilla_append takes each
    # message's reply_to; the version without it stays, for a process of the
    # previous Chatzilla still running beside this one (a rolling restart).
    """
    ALTER TABLE messages ADD COLUMN reply_to bigint NOT NULL DEFAULT 0;

    CREATE FUNCTION chatzilla_append(
        p_rooms text[], p_senders text[], p_contents text[], p_refs text[], p_tokens text[],
        p_ts double precision, p_window double precision, p_reply_tos bigint[]
    ) RETURNS TABLE (id bigint, content text, ts double precision, duplicate boolean)
    LANGUAGE plpgsql AS $$
    DECLARE
        i integer;
        new_id bigint;
    BEGIN
        INSERT INTO rooms (room) SELECT DISTINCT r FROM unnest(p_rooms) AS r ORDER BY r
            ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms WHERE room = ANY (p_rooms) ORDER BY room FOR UPDATE;
        FOR i IN 1 .. coalesce(array_length(p_rooms, 1), 0) LOOP
            IF p_refs[i] IS NOT NULL THEN
                SELECT m.id, m.content, m.ts INTO id, content, ts FROM messages AS m
                 WHERE m.room = p_rooms[i] AND m.sender = p_senders[i] AND m.ref = p_refs[i]
                   AND m.ts >= p_ts - p_window
                 ORDER BY m.id DESC LIMIT 1;
                IF FOUND THEN
                    duplicate := true;
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            UPDATE rooms AS r SET last_id = r.last_id + 1 WHERE r.room = p_rooms[i]
                RETURNING r.last_id INTO new_id;
            INSERT INTO messages (room, id, sender, content, ts, ref, reply_to)
                VALUES (p_rooms[i], new_id, p_senders[i], p_contents[i], p_ts, p_refs[i],
                        coalesce(p_reply_tos[i], 0));
            PERFORM pg_notify('chatzilla_messages', p_rooms[i] || ' ' || new_id || ' ' || p_tokens[i]);
            id := new_id;
            content := p_contents[i];
            ts := p_ts;
            duplicate := false;
            RETURN NEXT;
        END LOOP;
    END $$;
    """,
    # 11: invitation links to private rooms (chatzilla.moderation_store):
    # each the JSON action that made it, under the hash of its secret (id),
    # until it expires (removed as the room's next link is made) or is revoked.
    """
    CREATE TABLE invite_links (
        room text NOT NULL,
        id text NOT NULL,
        actor text NOT NULL,
        until double precision NOT NULL,
        action text NOT NULL,
        PRIMARY KEY (room, id)
    );
    """,
    # 12: each room's last activity, the time its newest message was stored,
    # indexed: the active rooms of a `rooms` frame are the first few rows of
    # the index. Set by a trigger as chatzilla_append takes the room's next
    # id (no second write of the row).
    """
    ALTER TABLE rooms ADD COLUMN last_ts double precision;
    UPDATE rooms AS r SET last_ts = m.ts FROM messages AS m WHERE m.room = r.room AND m.id = r.last_id;
    CREATE INDEX rooms_by_activity ON rooms (last_ts);
    CREATE FUNCTION chatzilla_active() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.last_id > OLD.last_id THEN
            NEW.last_ts := chatzilla_now();
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER rooms_active BEFORE UPDATE OF last_id ON rooms
        FOR EACH ROW EXECUTE FUNCTION chatzilla_active();
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
