-- Schema version 1, frozen as first released. Used only by the upgrade test,
-- which starts from it and checks the upgrade steps reach schema.sql.

CREATE TABLE camera (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE segment (
  id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  zone TEXT NOT NULL,
  root TEXT NOT NULL,
  path TEXT NOT NULL,
  state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
  start_us INTEGER NOT NULL,
  end_us INTEGER,
  bytes INTEGER,
  frames INTEGER,
  key_frames INTEGER,
  video_codec TEXT,
  audio_codec TEXT,
  sha256 BLOB,
  time_source TEXT NOT NULL CHECK (time_source IN ('local', 'rtcp')),
  clock_offset_us INTEGER,
  UNIQUE (root, path)
) STRICT;

CREATE INDEX segment_camera_start ON segment (camera_id, start_us);
