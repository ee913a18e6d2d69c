//! Every optional key's default and every number's accepted range, in one
//! place: a value outside its range is a configuration error naming the
//! key, the value and the range (issue 13), never wrapped or clamped.

use std::time::Duration;

use super::{AudioPolicy, Destruction, RtspClient, Transport};

/// Where the configuration is installed; `custosd` reads it unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/custos/custos.toml";
/// `daemon.state_dir`: holds `index.db` and the node key.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/custos";
/// `daemon.socket`: the admin API's Unix socket.
pub const DEFAULT_SOCKET: &str = "/run/custos/admin.sock";
/// `daemon.socket_group`: the group that may connect to the admin socket.
/// Its own group, not the daemon's: members reach the API, never the data.
pub const DEFAULT_SOCKET_GROUP: &str = "custos-users";
/// `daemon.stall_timeout`: a camera that sends no data this long counts as failed.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// `daemon.retry_max`: the reconnect backoff never waits longer than this.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);
/// `daemon.shutdown_timeout`: how long shutdown waits for segments to close.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// `daemon.max_retention_days`: one month, the longest period in the rules
/// Custos serves (003 §24.2).
pub const DEFAULT_MAX_RETENTION_DAYS: u32 = 31;
/// Range allowed for `daemon.max_retention_days` (and so for every zone's
/// `retention_days`): up to a year, far beyond any period in the rules yet
/// small enough that no time arithmetic on it can overflow.
pub const MAX_RETENTION_DAYS_RANGE: (u32, u32) = (1, 366);
/// Range allowed for `daemon.stall_timeout`, `retry_max` and `shutdown_timeout`.
pub const DAEMON_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));
/// `storage[].create` and `evidence.create`: a missing directory is an error.
pub const DEFAULT_CREATE: bool = false;
/// `storage[].destruction`.
pub const DEFAULT_DESTRUCTION: Destruction = Destruction::Unlink;
/// `retention.interval`: how often the reaper runs when nothing wakes it
/// earlier. Short enough that footage outlives its ceiling by minutes at most.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Range allowed for `retention.interval`.
pub const RETENTION_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));
/// `api.max_body_bytes`: the largest request body the admin API reads.
/// Requests are small JSON documents; this only stops abuse.
pub const DEFAULT_API_MAX_BODY_BYTES: u64 = 64 * 1024;
/// Range allowed for `api.max_body_bytes`.
pub const API_MAX_BODY_BYTES_RANGE: (u64, u64) = (1024, 16 * 1024 * 1024);
/// `audit.retention_years`: how long audit entries are kept. The rules name
/// no period for access logs; set the one your controller's order gives.
pub const DEFAULT_AUDIT_RETENTION_YEARS: u32 = 3;
/// Range allowed for `audit.retention_years`.
pub const AUDIT_RETENTION_YEARS_RANGE: (u32, u32) = (1, 100);
/// `evidence.review_days_default`: an evidence copy is reviewed after this many days.
pub const DEFAULT_REVIEW_DAYS: u32 = 30;
/// `evidence.review_days_max`: the longest review period one may set on a copy.
pub const DEFAULT_REVIEW_DAYS_MAX: u32 = 365;
/// Range allowed for `evidence.review_days_max` (ten years: a case is
/// reviewed at least that often); `review_days_default` runs from 1 to it.
pub const REVIEW_DAYS_MAX_RANGE: (u32, u32) = (1, 3650);
/// Default `requests.max_window`: two hours (000 §29).
pub const DEFAULT_REQUEST_MAX_WINDOW: Duration = Duration::from_secs(2 * 3600);
/// Accepted `requests.max_window`: ten minutes to one day.
pub const REQUEST_MAX_WINDOW_RANGE: (Duration, Duration) =
    (Duration::from_secs(600), Duration::from_secs(86_400));
/// Default `requests.personal_data_days`: one year after closing.
pub const DEFAULT_REQUEST_PERSONAL_DATA_DAYS: u32 = 365;
/// Accepted `requests.personal_data_days`.
pub const REQUEST_PERSONAL_DATA_DAYS_RANGE: (u32, u32) = (30, 3650);
/// Largest `storage[].min_free` or `budget`, in bytes (1 EiB): keeps sums of
/// sizes far from overflowing and catches a unit typed three times.
pub const MAX_SIZE: u64 = 1 << 60;
/// `zone[].audio`: sound is not recorded unless a zone allows it (001 §19).
pub const DEFAULT_AUDIO_POLICY: AudioPolicy = AudioPolicy::Forbidden;
/// `camera[].transport`.
pub const DEFAULT_TRANSPORT: Transport = Transport::Tcp;
/// `camera[].rtsp_client` when it is not set: retina wherever it can read
/// the camera (`rtsp://` over TCP), GStreamer for UDP and `rtsps://`.
pub fn default_rtsp_client(transport: Transport, tls: bool) -> RtspClient {
    if transport == Transport::Udp || tls {
        RtspClient::Gstreamer
    } else {
        RtspClient::Retina
    }
}
/// `camera[].audio`.
pub const DEFAULT_CAMERA_AUDIO: bool = false;
/// `camera[].enabled`.
pub const DEFAULT_CAMERA_ENABLED: bool = true;
/// `camera[].segment`: the length of one recorded file.
pub const DEFAULT_SEGMENT: Duration = Duration::from_secs(60);
/// Shortest allowed `camera[].segment`.
pub const MIN_SEGMENT: Duration = Duration::from_secs(2);
/// Longest allowed `camera[].segment`.
pub const MAX_SEGMENT: Duration = Duration::from_secs(15 * 60);
/// Longest camera, zone or storage id, in bytes (they become directory names).
pub const MAX_ID_LEN: usize = 64;
/// `device[].timezone`: the zone a device's clock writes its times in.
pub const DEFAULT_DEVICE_TIMEZONE: &str = "UTC";
/// `inbox[].settle`: a file is taken once unchanged (size and modification
/// time) for this long; longer than any pause of a copy that is still running.
pub const DEFAULT_INBOX_SETTLE: Duration = Duration::from_secs(10);
/// Range allowed for `inbox[].settle`.
pub const INBOX_SETTLE_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));
/// `inbox[].poll`: how often the inbox is scanned in full. Scans are the
/// only way to see a file on a network or removable file system.
pub const DEFAULT_INBOX_POLL: Duration = Duration::from_secs(5);
/// Range allowed for `inbox[].poll`.
pub const INBOX_POLL_RANGE: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_secs(3600));
