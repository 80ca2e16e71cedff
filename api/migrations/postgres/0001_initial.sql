CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
    site_id      TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    occurred_ms  BIGINT NOT NULL,
    received_ms  BIGINT NOT NULL,
    class        TEXT,
    line_id      TEXT,
    zone_id      TEXT,
    direction    TEXT,
    incident_id  TEXT,
    payload      TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (occurred_ms, event_id);
CREATE INDEX events_by_camera ON events (site_id, camera_id, occurred_ms);
CREATE INDEX events_by_type ON events (type, occurred_ms);

CREATE TABLE cameras (
    site_id       TEXT NOT NULL,
    camera_id     TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    name          TEXT,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    road          TEXT,
    state         TEXT NOT NULL,
    reason        TEXT,
    fps           DOUBLE PRECISION,
    last_seen_ms  BIGINT NOT NULL,
    max_seq       BIGINT NOT NULL,
    received      BIGINT NOT NULL,
    PRIMARY KEY (site_id, camera_id)
);

CREATE TABLE seq_gaps (
    site_id      TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    from_seq     BIGINT NOT NULL,
    to_seq       BIGINT NOT NULL,
    detected_ms  BIGINT NOT NULL,
    PRIMARY KEY (site_id, camera_id, from_seq)
);

CREATE TABLE incidents (
    incident_id    TEXT PRIMARY KEY,
    site_id        TEXT NOT NULL,
    camera_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    severity       TEXT NOT NULL,
    state          TEXT NOT NULL,
    zone_id        TEXT,
    started_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL,
    ended_ms       BIGINT,
    object         TEXT,
    measures       TEXT NOT NULL,
    snapshot_id    TEXT,
    acknowledged_by   TEXT,
    acknowledged_ms   BIGINT,
    acknowledge_note  TEXT,
    resolved_by    TEXT,
    resolved_ms    BIGINT,
    resolve_note   TEXT
);
CREATE INDEX incidents_by_time ON incidents (started_ms);

CREATE TABLE snapshots (
    snapshot_id   TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL,
    camera_id     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    path          TEXT NOT NULL,
    received_ms   BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT
);

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT
);
