-- Evidence clips (issue 13): MP4s assembled from an agent's chunk messages (or uploaded whole
-- over HTTP), kept per camera within a byte budget. An incident names its clip and the SHA-256
-- its event promised; the IOC serves a clip only when the file it assembled hashes to that.
ALTER TABLE incidents ADD COLUMN clip_id TEXT;
ALTER TABLE incidents ADD COLUMN clip_sha256 TEXT;
ALTER TABLE incidents ADD COLUMN clip_duration_ms BIGINT;

CREATE TABLE clips (
    clip_id      TEXT PRIMARY KEY,
    site_id      TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    path         TEXT NOT NULL,
    received_ms  BIGINT NOT NULL
);
CREATE INDEX clips_by_camera ON clips (site_id, camera_id, received_ms);
