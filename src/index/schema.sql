-- The Custos index: the current schema, applied to a fresh database in one
-- transaction. Older databases reach this shape through the steps in
-- upgrade.rs; a test checks that both roads end in the same schema.
--
-- Times are UTC microseconds since the Unix epoch (INTEGER). Segment and
-- outage rows never overlap in time for one camera.

-- A camera as the index knows it: a stable id from the config. Rows stay
-- when a camera leaves the config, for as long as footage of it remains.
CREATE TABLE camera (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE          -- the config's camera id
) STRICT;

-- One recording file. A row is inserted (state 0, recording) before its file
-- is created, so every file under a storage root has a row; it is completed
-- (state 1) only after the file and its directory are fsynced. State 2 marks
-- a row whose file is being destroyed.
CREATE TABLE segment (
  id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  zone TEXT NOT NULL,                -- zone the footage was recorded under
  root TEXT NOT NULL,                -- storage root id
  path TEXT NOT NULL,                -- relative to the storage root
  state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
  start_us INTEGER NOT NULL,         -- wall-clock time of the first frame
  end_us INTEGER,                    -- end of the last frame; NULL while recording
  bytes INTEGER,
  frames INTEGER,                    -- video frames
  key_frames INTEGER,
  video_codec TEXT,
  audio_codec TEXT,                  -- NULL when the segment has no audio
  sha256 BLOB,                       -- of the whole file, set when completed
  time_source TEXT NOT NULL CHECK (time_source IN ('local', 'rtcp')),
  clock_offset_us INTEGER,           -- camera clock (RTCP NTP) minus local clock, when measured
  recovered INTEGER NOT NULL DEFAULT 0, -- 1 if completed by the start-up recovery pass
  UNIQUE (root, path)
) STRICT;

-- Queries by camera and time range: a segment lasts at most MAX_SEGMENT_US,
-- so an overlap query is a bounded range scan on start_us.
CREATE INDEX segment_camera_start ON segment (camera_id, start_us);
-- The few rows that need attention at start-up (recording or doomed).
CREATE INDEX segment_unfinished ON segment (state) WHERE state <> 1;

-- A gap in a camera's recording, with why. to_us is NULL while it lasts.
CREATE TABLE outage (
  id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  from_us INTEGER NOT NULL,
  to_us INTEGER,
  reason TEXT NOT NULL
) STRICT;

CREATE INDEX outage_camera_from ON outage (camera_id, from_us);
