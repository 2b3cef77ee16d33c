-- The audit log's outbox: an event is inserted in the transaction of the
-- state change it reports, so it exists exactly when the change committed.
-- Each node drains its own rows (server_id) into its own HMAC-chained file
-- and deletes them in the transaction that advances its chain below.
--
-- Lean on purpose: one B-tree, no AUTOINCREMENT counter and no secondary
-- index, so an event adds one row to the page its predecessors fill (every
-- index or counter row an insert touches is one more page written to the
-- WAL at each commit of the request path). The table only holds what the
-- writers have not drained yet (tens of milliseconds of events), so the
-- writer's scan by server_id costs nothing; rowids only grow while rows
-- remain, which is all the writer's ordering needs.
CREATE TABLE audit_outbox (
    id          INTEGER PRIMARY KEY,
    server_id   TEXT NOT NULL,
    ts          INTEGER NOT NULL,              -- unix ms
    event       TEXT NOT NULL,
    account_id  TEXT,
    source_ip   TEXT,
    user_agent  TEXT,
    decision    TEXT,
    reason      TEXT,
    details     TEXT                           -- JSON object
);

-- One chain per node (installation id in its workdir): the last line
-- written to its file, so a restart resumes seq and prev_mac, and lines
-- written to the file before a crash let the outbox be trimmed.
CREATE TABLE audit_chains (
    server_id      TEXT PRIMARY KEY,
    seq            INTEGER NOT NULL,           -- last seq written (0: none)
    mac            TEXT NOT NULL,              -- its mac (genesis MAC when seq = 0)
    segment        INTEGER NOT NULL,           -- active segment number
    registered_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Sliding-window limits counted from the database (failed validations per
-- account and name): one row per counted event, pruned once out of every
-- window.
CREATE TABLE limit_events (
    name  TEXT NOT NULL,                       -- the limit
    key   TEXT NOT NULL,                       -- e.g. account id + name
    at    INTEGER NOT NULL                     -- unix ms
);
CREATE INDEX limit_events_by_key ON limit_events(name, key, at);
