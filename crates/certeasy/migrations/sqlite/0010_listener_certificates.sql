-- The certificate of a `pki`-mode listener bundle, kept in the database so
-- that every node on it serves the same one: the node holding the claim
-- obtains it, the others wait for the row and load it.
CREATE TABLE listener_certificates (
    bundle       TEXT PRIMARY KEY,
    -- sorted SAN names of the stored certificate, comma separated
    names        TEXT NOT NULL DEFAULT '',
    -- leaf and chain (PEM) and its PKCS#8 private key (PEM); NULL until
    -- the first certificate is stored
    chain_pem    TEXT,
    key_pem      TEXT,
    -- the leaf's notAfter and when it was stored (unix seconds)
    not_after    INTEGER,
    issued_at    INTEGER,
    -- the node (worker id) that stored it
    issued_by    TEXT,
    -- the node obtaining a certificate now, and until when its claim holds
    -- (a node that dies mid-issuance loses it when the time is past)
    claimed_by   TEXT,
    claim_until  INTEGER
);
