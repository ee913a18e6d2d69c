//! The configuration file: every validation error names the file, the line
//! and the key, and says what would be right. Most cases go through
//! `Config::parse_str`; the ones that need the disk (secrets file, storage
//! directories, permissions) run the real `custosd check-config` binary.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use custos::config::{
    AudioPolicy, Config, ConfigError, ConfigErrors, Credentials, DEFAULT_MAX_RETENTION_DAYS,
    Destruction, Principal, Role, RtspClient, Transport, redact_url,
};

const FILE: &str = "/etc/custos/custos.toml";

/// A small valid configuration: two zones of the Santarvė school, one camera each.
const BASE: &str = r#"timezone = "Europe/Vilnius"

[controller]
name = "Klaipėdos „Santarvės“ mokykla"
registration_code = "190000000"
address = "Santarvės g. 1, LT-91000 Klaipėda"
email = "rastine@santarve.example"
dpo = { email = "dap@santarve.example" }

[[storage]]
id = "main"
path = "/srv/custos/recordings"

[evidence]
path = "/srv/custos/evidence"

[[zone]]
id = "school-indoor"
name = "Mokyklos patalpos"
retention_days = 10
purposes = ["Mokinių ir darbuotojų saugumas"]
legal_basis = "BDAR 6 str. 1 d. e p."
processor = "Klaipėdos „Santarvės“ mokykla"

[[zone]]
id = "school-territory"
name = "Mokyklos teritorija"
retention_days = 14
purposes = ["Turto apsauga"]
legal_basis = "BDAR 6 str. 1 d. e p."
processor = "UAB „Saugos partneriai“"

[[camera]]
id = "1A-foje-pietine"
name = "1A-Fojė-Pietinė"
zone = "school-indoor"
url = "rtsp://127.0.0.1:8554/cam1"
area = "Pirmo aukšto fojė prie pietinio įėjimo"

[[camera]]
id = "L1-vartai"
name = "L1-Vartai"
zone = "school-territory"
url = "rtsp://127.0.0.1:8554/cam2"
area = "Pagrindiniai vartai"
"#;

/// 1-based line of the `nth` (from 1) occurrence of `needle`.
fn line_of_nth(text: &str, needle: &str, nth: usize) -> usize {
    let (offset, _) = text
        .match_indices(needle)
        .nth(nth - 1)
        .unwrap_or_else(|| panic!("{needle:?} occurs fewer than {nth} times in:\n{text}"));
    text[..offset].matches('\n').count() + 1
}

fn line_of(text: &str, needle: &str) -> usize {
    line_of_nth(text, needle, 1)
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the text");
    text.replacen(from, to, 1)
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse_str(text, Path::new(FILE))
}

fn errors(text: &str) -> ConfigErrors {
    match parse(text) {
        Ok(_) => panic!("expected errors, the config parsed:\n{text}"),
        Err(e) => e,
    }
}

/// The single error for `key`, checked to be in FILE at `line`.
fn error_at(text: &str, key: &str, line: usize) -> ConfigError {
    let errs = errors(text);
    let matching: Vec<&ConfigError> = errs.iter().filter(|e| e.key == key).collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one error for {key}, got:\n{errs}"
    );
    let e = matching[0].clone();
    assert_eq!(e.file, Path::new(FILE), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    e
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "{n:?} not in {haystack:?}");
    }
}

#[test]
fn base_config_parses_with_documented_defaults() {
    let c = parse(BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.timezone_name, "Europe/Vilnius");
    assert_eq!(c.zones.len(), 2);
    assert_eq!(
        c.zone("school-indoor").unwrap().storage,
        "main",
        "one root: zones default to it"
    );
    assert_eq!(
        c.zone("school-indoor").unwrap().audio,
        AudioPolicy::Forbidden
    );
    assert_eq!(c.daemon.max_retention_days, DEFAULT_MAX_RETENTION_DAYS);
    assert_eq!(c.daemon.stall_timeout, Duration::from_secs(5));
    let cam = c.camera("1A-foje-pietine").unwrap();
    assert_eq!(cam.name, "1A-Fojė-Pietinė");
    assert_eq!(cam.segment, Duration::from_secs(60));
    assert_eq!(cam.transport, Transport::Tcp);
    assert_eq!(cam.rtsp_client, RtspClient::Retina);
    assert!(cam.enabled && !cam.audio && cam.credentials.is_none());
    assert_eq!(c.camera_root(cam).path, Path::new("/srv/custos/recordings"));
    assert!(!c.storage[0].create);
    assert_eq!(c.storage[0].destruction, Destruction::Unlink);
    assert_eq!(
        c.summary(),
        "2 zones, 2 cameras (2 enabled), 1 storage roots"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn error_display_is_file_line_key_message() {
    let e = ConfigError::new(
        "/etc/custos/custos.toml",
        Some(42),
        "camera[3].zone",
        "unknown zone \"yard\"",
    );
    assert_eq!(
        e.to_string(),
        "/etc/custos/custos.toml:42: camera[3].zone: unknown zone \"yard\""
    );
    let e = ConfigError::new("/etc/custos/custos.toml", None, "", "cannot read");
    assert_eq!(e.to_string(), "/etc/custos/custos.toml: cannot read");
}

#[test]
fn duplicate_camera_id_names_both_lines() {
    let text = format!(
        "{BASE}\n[[camera]]\nid = \"1A-foje-pietine\"\nname = \"Kopija\"\nzone = \"school-indoor\"\n\
         url = \"rtsp://127.0.0.1:8554/cam3\"\narea = \"Fojė\"\n"
    );
    let dup = line_of_nth(&text, "id = \"1A-foje-pietine\"", 2);
    let first = line_of(&text, "id = \"1A-foje-pietine\"");
    let e = error_at(&text, "camera[2].id", dup);
    assert_contains(
        &e.message,
        &[
            "duplicate camera id \"1A-foje-pietine\"",
            &format!("first defined at line {first} (camera[0])"),
            "unique",
        ],
    );
}

#[test]
fn camera_ids_differing_only_in_case_are_duplicates() {
    let text = format!(
        "{BASE}\n[[camera]]\nid = \"1a-FOJE-pietine\"\nname = \"Kopija\"\nzone = \"school-indoor\"\n\
         url = \"rtsp://127.0.0.1:8554/cam3\"\narea = \"Fojė\"\n"
    );
    let e = error_at(
        &text,
        "camera[2].id",
        line_of(&text, "id = \"1a-FOJE-pietine\""),
    );
    assert_contains(&e.message, &["differs only in letter case"]);
}

#[test]
fn duplicate_zone_id_names_both_lines() {
    let text = replace(BASE, "id = \"school-territory\"", "id = \"school-indoor\"");
    let e = error_at(
        &text,
        "zone[1].id",
        line_of_nth(&text, "id = \"school-indoor\"", 2),
    );
    let first = line_of(&text, "id = \"school-indoor\"");
    assert_contains(
        &e.message,
        &[
            "duplicate zone id \"school-indoor\"",
            &format!("first defined at line {first}"),
        ],
    );
}

#[test]
fn camera_in_unknown_zone_lists_defined_zones() {
    let text = replace(BASE, "zone = \"school-territory\"", "zone = \"yard\"");
    let e = error_at(&text, "camera[1].zone", line_of(&text, "zone = \"yard\""));
    assert_eq!(
        e.message,
        "unknown zone \"yard\"; defined zones are: school-indoor, school-territory"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:{}: camera[1].zone: unknown zone \"yard\"; defined zones are: school-indoor, school-territory",
            e.line.unwrap()
        )
    );
}

#[test]
fn zone_with_unknown_storage_root() {
    let text = replace(
        BASE,
        "retention_days = 14",
        "storage = \"disk2\"\nretention_days = 14",
    );
    let e = error_at(
        &text,
        "zone[1].storage",
        line_of(&text, "storage = \"disk2\""),
    );
    assert_eq!(
        e.message,
        "unknown storage root \"disk2\"; defined storage roots are: main"
    );
}

#[test]
fn zone_storage_is_required_with_two_roots() {
    let text = replace(
        BASE,
        "[evidence]",
        "[[storage]]\nid = \"disk2\"\npath = \"/srv/disk2\"\n\n[evidence]",
    );
    let errs = errors(&text);
    let e = errs.find("zone[0].storage").unwrap();
    // The key is missing: the error points at the zone's [[zone]] header.
    assert_eq!(e.line, Some(line_of(&text, "[[zone]]")));
    assert_contains(&e.message, &["one of: main, disk2"]);
}

#[test]
fn retention_of_zero_days() {
    let text = replace(BASE, "retention_days = 10", "retention_days = 0");
    let e = error_at(
        &text,
        "zone[0].retention_days",
        line_of(&text, "retention_days = 0"),
    );
    assert_contains(&e.message, &["must be at least 1", "004 §9"]);
}

#[test]
fn every_number_is_bounded_and_an_out_of_range_one_names_its_range() {
    // (section text, key, value line, expected message)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "[daemon]\nmax_retention_days = 0",
            "daemon.max_retention_days",
            "max_retention_days = 0",
            "0 is out of range; give 1 to 366 (days",
        ),
        (
            "[daemon]\nmax_retention_days = 367",
            "daemon.max_retention_days",
            "max_retention_days = 367",
            "367 is out of range; give 1 to 366 (days",
        ),
        (
            "[daemon]\nmax_retention_days = 4294967295",
            "daemon.max_retention_days",
            "max_retention_days = 4294967295",
            "4294967295 is out of range; give 1 to 366 (days",
        ),
        (
            "[daemon]\nstall_timeout = \"100000000h\"",
            "daemon.stall_timeout",
            "stall_timeout =",
            "\"100000000h\" is out of range; allowed 1s to 1h (default 5s)",
        ),
        (
            "[retention]\ninterval = \"0s\"",
            "retention.interval",
            "interval =",
            "\"0s\" is out of range; allowed 1s to 1h (default 5min)",
        ),
        (
            "[audit]\nretention_years = 4294967295",
            "audit.retention_years",
            "retention_years =",
            "4294967295 is out of range; give 1 to 100 (years)",
        ),
        (
            "[api]\nmax_body_bytes = 9223372036854775807",
            "api.max_body_bytes",
            "max_body_bytes =",
            "9223372036854775807 is out of range; give 1024 to 16777216 (bytes)",
        ),
    ];
    for (section, key, at, want) in cases {
        let text = format!("{BASE}\n{section}\n");
        let e = error_at(&text, key, line_of(&text, at));
        assert!(e.message.starts_with(want), "{key}: {e}");
    }
    let evidence = |extra: &str| {
        replace(
            BASE,
            "path = \"/srv/custos/evidence\"",
            &format!("path = \"/srv/custos/evidence\"\n{extra}"),
        )
    };
    for max in ["0", "3651", "4294967295"] {
        let text = evidence(&format!("review_days_max = {max}"));
        let e = error_at(
            &text,
            "evidence.review_days_max",
            line_of(&text, "review_days_max"),
        );
        assert_eq!(
            e.message,
            format!("{max} is out of range; give 1 to 3650 (days; default 365)")
        );
    }
    let text = evidence("review_days_max = 3650\nreview_days_default = 3650");
    parse(&text).unwrap_or_else(|e| panic!("{e}"));
    for (key, value) in [("min_free", "2000000 TB"), ("budget", "2000000 TiB")] {
        let text = replace(
            BASE,
            "path = \"/srv/custos/recordings\"",
            &format!("path = \"/srv/custos/recordings\"\n{key} = \"{value}\""),
        );
        let e = error_at(&text, &format!("storage[0].{key}"), line_of(&text, value));
        assert!(
            e.message.contains("is out of range; give at most 1 EiB"),
            "{key}: {e}"
        );
    }
    // The top of every range is accepted, and nothing can overflow with it.
    let text = replace(BASE, "retention_days = 14", "retention_days = 366");
    let text = format!("{text}\n[daemon]\nmax_retention_days = 366\n");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.zones[1].retention_days, 366);
}

#[test]
fn retention_over_the_default_maximum() {
    let text = replace(BASE, "retention_days = 14", "retention_days = 45");
    let e = error_at(
        &text,
        "zone[1].retention_days",
        line_of(&text, "retention_days = 45"),
    );
    assert_contains(
        &e.message,
        &[
            "45 days exceeds the maximum of 31 days",
            "daemon.max_retention_days",
            "default",
        ],
    );
}

#[test]
fn retention_over_a_configured_maximum_says_where_it_is_set() {
    let text = format!("{BASE}\n[daemon]\nmax_retention_days = 12\n");
    let e = error_at(
        &text,
        "zone[1].retention_days",
        line_of(&text, "retention_days = 14"),
    );
    let max_line = line_of(&text, "max_retention_days = 12");
    assert_contains(
        &e.message,
        &[
            "maximum of 12 days",
            &format!("daemon.max_retention_days at line {max_line}"),
            "raise",
        ],
    );
    // Raising it makes the same zone valid.
    let text = text.replace("max_retention_days = 12", "max_retention_days = 14");
    parse(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn credentials_in_the_url_are_refused_without_echoing_them() {
    let text = replace(
        BASE,
        "rtsp://127.0.0.1:8554/cam2",
        "rtsp://admin:Slapta123@127.0.0.1:8554/cam2",
    );
    let e = error_at(&text, "camera[1].url", line_of(&text, "Slapta123"));
    assert_contains(
        &e.message,
        &[
            "contains credentials",
            "secrets file",
            "[camera.L1-vartai]",
            "rtsp://127.0.0.1:8554/cam2",
        ],
    );
    assert!(
        !e.message.contains("Slapta123") && !e.message.contains("admin"),
        "{e}"
    );
}

#[test]
fn secrets_in_the_url_query_are_refused() {
    let text = replace(
        BASE,
        "rtsp://127.0.0.1:8554/cam2",
        "rtsp://127.0.0.1:8554/cam2?channel=1&password=x",
    );
    let e = error_at(&text, "camera[1].url", line_of(&text, "password=x"));
    assert_contains(&e.message, &["password=", "secrets file"]);
}

#[test]
fn non_rtsp_url_is_refused() {
    let text = replace(BASE, "rtsp://127.0.0.1:8554/cam2", "http://127.0.0.1/cam2");
    let e = error_at(&text, "camera[1].url", line_of(&text, "http://"));
    assert_contains(&e.message, &["must start with rtsp:// or rtsps://"]);
}

#[test]
fn the_client_is_retina_over_tcp_gstreamer_for_udp_and_tls_or_as_chosen() {
    let area = "area = \"Pagrindiniai vartai\"";
    let c = parse(BASE).unwrap();
    assert_eq!(c.cameras[1].rtsp_client, RtspClient::Retina);
    let chosen = replace(BASE, area, &format!("{area}\nrtsp_client = \"gstreamer\""));
    let c = parse(&chosen).unwrap();
    assert_eq!(c.cameras[1].rtsp_client, RtspClient::Gstreamer);
    assert_eq!(c.cameras[0].rtsp_client, RtspClient::Retina);
    let udp = replace(BASE, area, &format!("{area}\ntransport = \"udp\""));
    assert_eq!(
        parse(&udp).unwrap().cameras[1].rtsp_client,
        RtspClient::Gstreamer
    );
    let tls = replace(
        BASE,
        "rtsp://127.0.0.1:8554/cam2",
        "rtsps://127.0.0.1:8322/cam2",
    );
    assert_eq!(
        parse(&tls).unwrap().cameras[1].rtsp_client,
        RtspClient::Gstreamer
    );
}

#[test]
fn the_retina_client_over_udp_or_tls_is_refused() {
    let retina = "area = \"Pagrindiniai vartai\"\nrtsp_client = \"retina\"";
    let udp = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        &format!("{retina}\ntransport = \"udp\""),
    );
    let e = error_at(&udp, "camera[1].rtsp_client", line_of(&udp, "rtsp_client"));
    assert_contains(
        &e.message,
        &[
            "over TCP only",
            "transport = \"tcp\"",
            "rtsp_client = \"gstreamer\"",
        ],
    );
    let tls = replace(BASE, "area = \"Pagrindiniai vartai\"", retina);
    let tls = replace(
        &tls,
        "rtsp://127.0.0.1:8554/cam2",
        "rtsps://127.0.0.1:8322/cam2",
    );
    let e = error_at(&tls, "camera[1].rtsp_client", line_of(&tls, "rtsp_client"));
    assert_contains(
        &e.message,
        &["cannot read rtsps://", "rtsp_client = \"gstreamer\""],
    );
    let unknown = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        "area = \"x\"\nrtsp_client = \"ffmpeg\"",
    );
    let e = error_at(
        &unknown,
        "camera[1].rtsp_client",
        line_of(&unknown, "rtsp_client"),
    );
    assert_contains(&e.message, &["retina", "gstreamer"]);
}

#[test]
fn unknown_field_shows_the_field_and_the_expected_ones() {
    let text = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        "area = \"Pagrindiniai vartai\"\ncolour = true",
    );
    let e = error_at(&text, "camera[1].colour", line_of(&text, "colour = true"));
    assert_contains(
        &e.message,
        &[
            "unknown key `colour`",
            "expected one of",
            "`url`",
            "`area`",
            "`enabled`",
        ],
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("cameras = 3\n{BASE}");
    let e = error_at(&text, "cameras", 1);
    assert_contains(&e.message, &["unknown key `cameras`", "`camera`", "`zone`"]);
}

#[test]
fn wrong_type_says_what_is_expected() {
    let text = replace(BASE, "retention_days = 10", "retention_days = \"10\"");
    let e = error_at(
        &text,
        "zone[0].retention_days",
        line_of(&text, "retention_days = \"10\""),
    );
    assert_contains(
        &e.message,
        &[
            "invalid type: string \"10\"",
            "whole number",
            "without quotes",
        ],
    );
}

#[test]
fn a_duration_needs_quotes_and_a_unit() {
    let text = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        "area = \"Pagrindiniai vartai\"\nsegment = 60",
    );
    let e = error_at(&text, "camera[1].segment", line_of(&text, "segment = 60"));
    assert_contains(&e.message, &["expected a string", "\"60s\""]);
}

#[test]
fn missing_required_key_points_at_the_table() {
    let text = replace(BASE, "area = \"Pagrindiniai vartai\"\n", "");
    let e = error_at(&text, "camera[1].area", line_of_nth(&text, "[[camera]]", 2));
    assert_contains(
        &e.message,
        &["required key `area` is missing", "camera register"],
    );
}

#[test]
fn invalid_camera_id_characters() {
    let text = replace(BASE, "id = \"L1-vartai\"", "id = \"L1 vartai/šiaurė\"");
    let e = error_at(&text, "camera[1].id", line_of(&text, "L1 vartai"));
    assert_contains(&e.message, &["ASCII letters, digits, '-' and '_'", "name"]);
}

#[test]
fn invalid_zone_id() {
    let text = replace(
        BASE,
        "id = \"school-territory\"",
        "id = \"School_Territory\"",
    );
    let errs = errors(&text);
    let e = errs.find("zone[1].id").unwrap();
    assert_eq!(e.line, Some(line_of(&text, "School_Territory")));
    assert_contains(&e.message, &["lowercase ASCII letters, digits and '-'"]);
}

#[test]
fn invalid_timezone() {
    let text = replace(BASE, "Europe/Vilnius", "Europe/Vilnus");
    let e = error_at(&text, "timezone", 1);
    assert_contains(
        &e.message,
        &["unknown time zone \"Europe/Vilnus\"", "\"Europe/Vilnius\""],
    );
}

#[test]
fn timezone_is_optional() {
    let text = replace(BASE, "timezone = \"Europe/Vilnius\"\n", "");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.timezone_name.is_empty());
}

#[test]
fn segment_out_of_range() {
    for (bad, _) in [("1s", "short"), ("20min", "long")] {
        let text = replace(
            BASE,
            "area = \"Pagrindiniai vartai\"",
            &format!("area = \"x\"\nsegment = \"{bad}\""),
        );
        let e = error_at(&text, "camera[1].segment", line_of(&text, "segment ="));
        assert_eq!(
            e.message,
            format!("\"{bad}\" is out of range; allowed 2s to 15min (default 1min)")
        );
    }
    let text = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        "area = \"x\"\nsegment = \"5 minutes\"",
    );
    assert_eq!(
        parse(&text).unwrap().cameras[1].segment,
        Duration::from_secs(300)
    );
}

#[test]
fn audio_in_a_zone_that_forbids_it() {
    let text = replace(
        BASE,
        "area = \"Pagrindiniai vartai\"",
        "area = \"x\"\naudio = true",
    );
    let e = error_at(&text, "camera[1].audio", line_of(&text, "audio = true"));
    let zone_line = line_of_nth(&text, "[[zone]]", 2);
    assert_contains(
        &e.message,
        &[
            &format!("zone \"school-territory\" (zone[1], line {zone_line}) forbids sound"),
            "audio = \"allowed\"",
        ],
    );
    let allowed = replace(
        &text,
        "retention_days = 14",
        "retention_days = 14\naudio = \"allowed\"",
    );
    assert!(parse(&allowed).unwrap().cameras[1].audio);
}

#[test]
fn empty_area() {
    let text = replace(BASE, "area = \"Pagrindiniai vartai\"", "area = \"  \"");
    let e = error_at(&text, "camera[1].area", line_of(&text, "area = \"  \""));
    assert_contains(&e.message, &["is empty", "camera register"]);
}

#[test]
fn grant_with_an_unknown_role() {
    let text = format!(
        "{BASE}\n[[access.grant]]\ngroup = \"apsauga\"\nroles = [\"viewer\", \"superuser\"]\nzones = [\"school-territory\"]\n"
    );
    let e = error_at(
        &text,
        "access.grant[0].roles[1]",
        line_of(&text, "superuser"),
    );
    assert_contains(
        &e.message,
        &[
            "unknown role `superuser`",
            "`viewer`, `operator`, `evidence`, `dpo`, `admin`",
        ],
    );
}

#[test]
fn viewer_grants_need_zones_and_only_they_take_them() {
    let text = format!("{BASE}\n[[access.grant]]\ngroup = \"budetojai\"\nroles = [\"viewer\"]\n");
    let e = error_at(
        &text,
        "access.grant[0].zones",
        line_of(&text, "[[access.grant]]"),
    );
    assert_contains(
        &e.message,
        &["must list the zones", "school-indoor, school-territory"],
    );

    let text = format!(
        "{BASE}\n[[access.grant]]\nuser = \"dap\"\nroles = [\"dpo\"]\nzones = [\"school-indoor\"]\n"
    );
    let e = error_at(&text, "access.grant[0].zones", line_of(&text, "zones = "));
    assert_contains(&e.message, &["only the viewer role"]);

    let text = format!(
        "{BASE}\n[[access.grant]]\ngroup = \"b\"\nroles = [\"viewer\"]\nzones = [\"yard\"]\n"
    );
    let e = error_at(
        &text,
        "access.grant[0].zones[0]",
        line_of(&text, "zones = "),
    );
    assert_contains(&e.message, &["unknown zone \"yard\""]);
}

#[test]
fn roles_are_resolved_by_uid_user_name_and_group() {
    let text = format!(
        "{BASE}
[[access.grant]]
group = \"apsauga\"
roles = [\"viewer\", \"operator\"]
zones = [\"school-territory\"]

[[access.grant]]
user = \"anna\"
roles = [\"viewer\"]
zones = [\"school-indoor\"]

[[access.grant]]
user = 1001
roles = [\"evidence\"]
"
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.access.grants[2].principal, Principal::Uid(1001));
    let (roles, zones) = c.access.roles_for(1000, Some("anna"), &["apsauga"]);
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        [Role::Viewer, Role::Operator]
    );
    assert_eq!(
        zones.into_iter().collect::<Vec<_>>(),
        ["school-indoor", "school-territory"]
    );
    let (roles, zones) = c.access.roles_for(1001, None, &[] as &[&str]);
    assert_eq!(roles.into_iter().collect::<Vec<_>>(), [Role::Evidence]);
    assert!(zones.is_empty(), "evidence grants no viewer zones");
    let (roles, _) = c.access.roles_for(1002, Some("petras"), &["mokytojai"]);
    assert!(roles.is_empty(), "nothing is granted by default");
}

#[test]
fn every_error_is_reported_in_line_order() {
    let text = replace(BASE, "retention_days = 10", "retention_days = 0");
    let text = replace(&text, "zone = \"school-territory\"", "zone = \"yard\"");
    let text = replace(
        &text,
        "area = \"Pagrindiniai vartai\"",
        "area = \"\"\ntransport = \"quic\"\nbogus = 1",
    );
    let errs = errors(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "zone[0].retention_days",
            "camera[1].zone",
            "camera[1].area",
            "camera[1].transport",
            "camera[1].bogus"
        ],
        "{errs}"
    );
    let lines: Vec<usize> = errs.iter().map(|e| e.line.unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert_eq!(errs.to_string().lines().count(), 5);
}

#[test]
fn missing_sections_are_named() {
    let errs = errors("timezone = \"Europe/Vilnius\"\n");
    for key in ["controller", "storage", "evidence"] {
        let e = errs
            .find(key)
            .unwrap_or_else(|| panic!("no error for {key}: {errs}"));
        assert!(
            e.message.contains("missing") || e.message.contains("no [[storage]]"),
            "{e}"
        );
    }
}

#[test]
fn toml_syntax_error_has_a_line() {
    let text = replace(BASE, "retention_days = 10", "retention_days = 10 days");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs}");
    assert_eq!(errs.0[0].line, Some(line_of(&text, "10 days")));
    assert!(errs.0[0].message.starts_with("TOML syntax"), "{errs}");
}

#[test]
fn evidence_may_not_live_inside_a_storage_root() {
    let text = replace(
        BASE,
        "path = \"/srv/custos/evidence\"",
        "path = \"/srv/custos/recordings/evidence\"",
    );
    let e = error_at(
        &text,
        "evidence.path",
        line_of(&text, "recordings/evidence"),
    );
    assert_contains(
        &e.message,
        &[
            "overlaps storage root \"main\"",
            "retention can never delete it",
        ],
    );
}

#[test]
fn sizes_are_parsed() {
    let text = replace(
        BASE,
        "path = \"/srv/custos/recordings\"",
        "path = \"/r\"\nmin_free = \"50 GiB\"\nbudget = \"2 TB\"",
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.storage[0].min_free, Some(50 << 30));
    assert_eq!(c.storage[0].budget, Some(2_000_000_000_000));
    let text = replace(
        BASE,
        "path = \"/srv/custos/recordings\"",
        "path = \"/r\"\nmin_free = \"50 gigs\"",
    );
    let e = error_at(&text, "storage[0].min_free", line_of(&text, "min_free"));
    assert_contains(&e.message, &["not a size", "\"50 GiB\""]);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = replace(
        BASE,
        "path = \"/srv/custos/recordings\"",
        "path = \"recordings\"",
    );
    let text = format!("secrets = \"secrets.toml\"\n{text}");
    let c = Config::parse_str(&text, Path::new("/etc/custos/custos.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.storage[0].path, Path::new("/etc/custos/recordings"));
    assert_eq!(
        c.secrets,
        Some(custos::config::SecretsSource::File(PathBuf::from(
            "/etc/custos/secrets.toml"
        )))
    );
}

const SECRETS: &str = r#"[camera.1A-foje-pietine]
username = "custos"
password = "pakeiskite-1A"

[camera.territory]
username = "custos-lauko"
password = "pakeiskite-lauko"
"#;

#[test]
fn credentials_come_from_the_secrets_file_by_id_or_key() {
    let text = replace(
        BASE,
        "zone = \"school-territory\"",
        "zone = \"school-territory\"\ncredentials = \"territory\"",
    );
    let c = Config::parse_with_secrets(
        &text,
        Path::new(FILE),
        SECRETS,
        Path::new("/etc/custos/secrets.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let by_id = c.cameras[0]
        .credentials
        .as_ref()
        .expect("the camera id is the default key");
    assert_eq!(
        (by_id.username(), by_id.password()),
        ("custos", "pakeiskite-1A")
    );
    assert_eq!(
        c.cameras[1].credentials.as_ref().unwrap().key(),
        "territory"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Never printed, not even through the camera's Debug.
    let shown = format!(
        "{:?} {}",
        c.cameras[0],
        c.cameras[0].credentials.as_ref().unwrap()
    );
    assert!(
        !shown.contains("pakeiskite") && !shown.contains("custos\""),
        "{shown}"
    );
}

#[test]
fn credentials_key_missing_from_the_secrets_file() {
    let text = replace(
        BASE,
        "zone = \"school-territory\"",
        "zone = \"school-territory\"\ncredentials = \"teritorija\"",
    );
    let errs = Config::parse_with_secrets(
        &text,
        Path::new(FILE),
        SECRETS,
        Path::new("/etc/custos/secrets.toml"),
    )
    .unwrap_err();
    let e = errs
        .find("camera[1].credentials")
        .unwrap_or_else(|| panic!("{errs}"));
    assert_eq!(
        (e.file.as_path(), e.line),
        (
            Path::new(FILE),
            Some(line_of(&text, "credentials = \"teritorija\""))
        )
    );
    assert_contains(
        &e.message,
        &["no [camera.teritorija] entry in secrets file /etc/custos/secrets.toml"],
    );
}

#[test]
fn errors_in_the_secrets_file_name_the_secrets_file() {
    let secrets = "[camera.1A-foje-pietine]\nusername = \"custos\"\npasword = \"x\"\n";
    let errs = Config::parse_with_secrets(
        BASE,
        Path::new(FILE),
        secrets,
        Path::new("/etc/custos/secrets.toml"),
    )
    .unwrap_err();
    let e = errs
        .find("camera.1A-foje-pietine.pasword")
        .unwrap_or_else(|| panic!("{errs}"));
    assert_eq!(
        (e.file.as_path(), e.line),
        (Path::new("/etc/custos/secrets.toml"), Some(3))
    );
    assert_contains(&e.message, &["unknown key `pasword`", "`password`"]);
}

#[test]
fn credentials_and_urls_are_redacted() {
    let c = Credentials::new("k", "admin", "hunter2");
    assert_eq!(format!("{c:?}"), "***");
    assert_eq!(c.to_string(), "***");
    assert_eq!(
        redact_url("rtsp://admin:hunter2@10.0.0.5:554/s?channel=1&token=abc"),
        "rtsp://10.0.0.5:554/s?channel=***&token=***"
    );
    assert_eq!(redact_url("rtsp://a:p/w@d@cam/x"), "rtsp://cam/x");
    assert_eq!(
        redact_url("rtsp://127.0.0.1:8554/cam1"),
        "rtsp://127.0.0.1:8554/cam1"
    );
}

#[test]
fn camera_equality_is_recording_equality() {
    let old = parse(BASE).unwrap();
    let renamed = replace(
        BASE,
        "name = \"L1-Vartai\"",
        "name = \"L1-Pagrindiniai-Vartai\"",
    );
    let renamed = replace(
        &renamed,
        "area = \"Pagrindiniai vartai\"",
        "area = \"Vartai ir šaligatvis\"",
    );
    let new = parse(&renamed).unwrap();
    assert_eq!(
        old.cameras[1], new.cameras[1],
        "name and area do not affect recording"
    );
    assert!(old.camera_changes(&new).changed.is_empty());

    let moved = replace(
        BASE,
        "rtsp://127.0.0.1:8554/cam2",
        "rtsp://127.0.0.1:8554/cam7",
    );
    let moved = replace(&moved, "id = \"1A-foje-pietine\"", "id = \"1B-koridorius\"");
    let new = parse(&moved).unwrap();
    assert_ne!(old.cameras[1], new.cameras[1]);
    let ch = old.camera_changes(&new);
    assert_eq!(
        (ch.added, ch.removed, ch.changed),
        (
            vec!["1B-koridorius".to_owned()],
            vec!["1A-foje-pietine".to_owned()],
            vec!["L1-vartai".to_owned()]
        )
    );
}

// ---- The real binary: `custosd check-config` ----

fn custosd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custosd"))
}

fn check(config: &Path) -> Output {
    custosd()
        .arg("check-config")
        .arg(config)
        .current_dir("/")
        .output()
        .unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Error lines (not warnings) of a failed check.
fn error_lines(out: &Output) -> Vec<String> {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stderr_lines(out)
        .into_iter()
        .filter(|l| !l.starts_with("warning: "))
        .collect()
}

/// A valid configuration whose directories all live in `dir`.
fn disk_config(dir: &Path) -> String {
    for d in ["recordings", "evidence", "state"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let text = replace(BASE, "/srv/custos/recordings", "recordings");
    let text = replace(&text, "/srv/custos/evidence", "evidence");
    format!("{text}\n[daemon]\nstate_dir = \"state\"\nsocket = \"state/admin.sock\"\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_the_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/custos.example.toml");
    let out = check(&example);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "config OK: 4 zones, 10 cameras (9 enabled), 1 storage roots\n"
    );
    // Secrets are found relative to the config file, not to the working directory ("/").
    let c = Config::load(&example).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.cameras.iter().filter(|c| c.credentials.is_some()).count() >= 4);
}

#[test]
fn check_config_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "custos.toml", &disk_config(dir.path()));
    let out = check(&cfg);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "config OK: 2 zones, 2 cameras (2 enabled), 1 storage roots\n"
    );
}

#[test]
fn check_config_reports_a_missing_config_file() {
    let out = check(Path::new("/nonexistent/custos.toml"));
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(
            "/nonexistent/custos.toml: cannot read the configuration file: No such file"
        ),
        "{lines:?}"
    );
}

#[test]
fn check_config_reports_a_missing_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("secrets = \"geheim.toml\"\n{}", disk_config(dir.path()));
    let cfg = write(dir.path(), "custos.toml", &text);
    let lines = error_lines(&check(&cfg));
    let want = format!(
        "{}:1: secrets: cannot read secrets file {}: No such file or directory (os error 2); create it",
        cfg.display(),
        dir.path().join("geheim.toml").display()
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&want), "{lines:?}\nwant: {want}");
}

#[test]
fn check_config_reports_a_credentials_key_missing_from_the_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("secrets = \"secrets.toml\"\n{}", disk_config(dir.path()));
    let text = replace(
        &text,
        "zone = \"school-territory\"",
        "zone = \"school-territory\"\ncredentials = \"teritorija\"",
    );
    let cfg = write(dir.path(), "custos.toml", &text);
    let secrets = write(dir.path(), "secrets.toml", SECRETS);
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let lines = error_lines(&check(&cfg));
    assert_eq!(
        lines,
        [format!(
            "{}:{}: camera[1].credentials: no [camera.teritorija] entry in secrets file {}; add one with username and password, or correct the key",
            cfg.display(),
            line_of(&text, "credentials = \"teritorija\""),
            secrets.display()
        )]
    );
}

#[test]
fn unused_secrets_are_only_a_warning() {
    let c = Config::parse_with_secrets(
        BASE,
        Path::new(FILE),
        SECRETS,
        Path::new("/etc/custos/secrets.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "/etc/custos/secrets.toml:5: camera.territory: is used by no camera (no camera has this id or credentials key); remove it"
        ]
    );
}

#[test]
fn check_config_warns_about_a_world_readable_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("secrets = \"secrets.toml\"\n{}", disk_config(dir.path()));
    let text = replace(
        &text,
        "zone = \"school-territory\"",
        "zone = \"school-territory\"\ncredentials = \"territory\"",
    );
    let cfg = write(dir.path(), "custos.toml", &text);
    let secrets = write(dir.path(), "secrets.toml", SECRETS);
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(&cfg);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warning = format!(
        "warning: {}: is readable by every user on this machine (mode 0644)",
        secrets.display()
    );
    assert!(
        stderr_lines(&out).iter().any(|l| l.starts_with(&warning)),
        "{:?}",
        stderr_lines(&out)
    );
}

#[test]
fn check_config_refuses_numbers_out_of_range_and_a_reserve_larger_than_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace(
        &disk_config(dir.path()),
        "path = \"recordings\"",
        "path = \"recordings\"\nmin_free = \"1000000 TiB\"",
    );
    let text = text.replace("[daemon]\n", "[daemon]\nmax_retention_days = 4294967295\n");
    let cfg = write(dir.path(), "custos.toml", &text);
    let lines = error_lines(&check(&cfg));
    let max = format!(
        "{}:{}: daemon.max_retention_days: 4294967295 is out of range; give 1 to 366 (days",
        cfg.display(),
        line_of(&text, "max_retention_days")
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&max)),
        "{lines:?}\nwant: {max}"
    );
    let reserve = format!(
        "{}:{}: storage[0].min_free: {} bytes is not less than the whole filesystem holding {}",
        cfg.display(),
        line_of(&text, "min_free"),
        1_000_000u64 << 40,
        dir.path().join("recordings").display()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&reserve) && l.contains("every unprotected recording")),
        "{lines:?}\nwant: {reserve}"
    );
}

#[test]
fn check_config_reports_a_missing_storage_root_as_maybe_unmounted() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace(
        &disk_config(dir.path()),
        "path = \"recordings\"",
        "path = \"disk2\"\ncreate = false",
    );
    let cfg = write(dir.path(), "custos.toml", &text);
    let lines = error_lines(&check(&cfg));
    let root = dir.path().join("disk2");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let want = format!(
        "{}:{}: storage[0].path: {} does not exist; if it is the mount point of a dedicated disk, the disk may not be mounted",
        cfg.display(),
        line_of(&text, "path = \"disk2\""),
        root.display()
    );
    assert!(lines[0].starts_with(&want), "{lines:?}\nwant: {want}");
    assert!(lines[0].contains("create = true"));

    // With create = true, a missing root under a writable directory is fine.
    let text = text.replace("create = false", "create = true");
    let cfg = write(dir.path(), "custos.toml", &text);
    assert_eq!(check(&cfg).status.code(), Some(0));
    assert!(!root.exists(), "check-config must not create anything");
}

#[test]
fn check_config_reports_a_storage_root_that_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace(
        &disk_config(dir.path()),
        "path = \"recordings\"",
        "path = \"plain-file\"",
    );
    write(dir.path(), "plain-file", "");
    let cfg = write(dir.path(), "custos.toml", &text);
    let lines = error_lines(&check(&cfg));
    assert_eq!(
        lines,
        [format!(
            "{}:{}: storage[0].path: {} is not a directory; point path at a directory",
            cfg.display(),
            line_of(&text, "plain-file"),
            dir.path().join("plain-file").display()
        )]
    );
}

#[test]
fn check_config_reports_a_storage_root_the_daemon_cannot_write() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run check-config as uid 65534");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = disk_config(d);
    let cfg = write(d, "custos.toml", &text);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The recordings root stays root-owned 0755; the rest belongs to the daemon's user.
    std::fs::set_permissions(d.join("recordings"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for owned in ["evidence", "state"] {
        std::os::unix::fs::chown(d.join(owned), Some(65534), Some(65534)).unwrap();
    }
    // A copy of the binary, so the test does not depend on the target dir's permissions.
    let bin = d.join("custosd");
    std::fs::copy(env!("CARGO_BIN_EXE_custosd"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&bin)
        .arg("check-config")
        .arg(&cfg)
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let want = format!(
        "{}:{}: storage[0].path: {} is not writable by ",
        cfg.display(),
        line_of(&text, "path = \"recordings\""),
        d.join("recordings").display()
    );
    assert!(lines[0].starts_with(&want), "{lines:?}\nwant: {want}");
    assert_contains(
        &lines[0],
        &[
            "uid 65534",
            "Permission denied",
            "give that user write access",
        ],
    );
}

#[test]
fn check_config_prints_every_error_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace(
        &disk_config(dir.path()),
        "zone = \"school-territory\"",
        "zone = \"yard\"\nlens = \"wide\"",
    );
    let text = replace(&text, "id = \"L1-vartai\"", "id = \"1A-foje-pietine\"");
    let cfg = write(dir.path(), "custos.toml", &text);
    let lines = error_lines(&check(&cfg));
    let at = |needle: &str| format!("{}:{}:", cfg.display(), line_of(&text, needle));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "{} camera[1].id: duplicate camera id",
            at("id = \"1A-foje-pietine\"\nname = \"L1")
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{} camera[1].zone: unknown zone \"yard\"",
            at("zone = \"yard\"")
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{} camera[1].lens: unknown key `lens`; expected one of",
            at("lens =")
        )),
        "{lines:?}"
    );
}

#[test]
fn daemon_form_checks_the_config_first() {
    let dir = tempfile::tempdir().unwrap();
    let text = replace(
        &disk_config(dir.path()),
        "retention_days = 10",
        "retention_days = 0",
    );
    let cfg = write(dir.path(), "custos.toml", &text);
    let out = custosd().arg("--config").arg(&cfg).output().unwrap();
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("zone[0].retention_days: must be at least 1"),
        "{lines:?}"
    );
}

/// A body camera and a dash camera, with an inbox per layout.
const DEVICES: &str = r#"
[[device]]
id = "bwc-07"
name = "Body camera 07"
zone = "school-territory"
kind = "body"
serial = "BWC0007"
assigned_to = "officer 1043"
registered = "2026-03-01"

[[device]]
id = "dash-3"
name = "Vehicle LRA 512"
zone = "school-territory"
kind = "dash"
serial = "DC3"
assigned_to = "vehicle LRA 512"
timezone = "Europe/Vilnius"

[[inbox]]
path = "/srv/custos/inbox/dock"
quarantine = "/srv/custos/inbox-quarantine/dock"

[[inbox]]
path = "/srv/custos/inbox/dash"
pattern = "{serial}_{YYYYMMDD}_{HHMMSS}.mp4"
settle = "3s"
poll = "1s"
quarantine = "/srv/custos/inbox-quarantine/dash"
"#;

#[test]
fn devices_and_inboxes_parse_with_their_defaults() {
    let c = parse(&format!("{BASE}{DEVICES}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.devices.len(), 2);
    let bwc = c.device("bwc-07").unwrap();
    assert_eq!(bwc.kind, custos::config::DeviceKind::Body);
    assert_eq!(bwc.timezone_name, custos::config::DEFAULT_DEVICE_TIMEZONE);
    assert_eq!(bwc.registered, Some(jiff::civil::date(2026, 3, 1)));
    assert_eq!(c.device("dash-3").unwrap().timezone_name, "Europe/Vilnius");
    assert_eq!(c.inboxes[0].device, None);
    assert_eq!(c.inboxes[0].pattern, None);
    assert_eq!(c.inboxes[0].settle, custos::config::DEFAULT_INBOX_SETTLE);
    assert_eq!(c.inboxes[0].poll, custos::config::DEFAULT_INBOX_POLL);
    assert_eq!(c.inboxes[1].settle, Duration::from_secs(3));
    assert_eq!(
        c.inboxes[1].pattern.as_deref(),
        Some("{serial}_{YYYYMMDD}_{HHMMSS}.mp4")
    );
}

#[test]
fn device_errors_name_the_key_and_what_would_be_right() {
    let text = format!("{BASE}{DEVICES}");
    let cases = [
        (
            "kind = \"dash\"",
            "kind = \"drone\"",
            "device[1].kind",
            "drone",
        ),
        (
            "zone = \"school-territory\"\nkind = \"body\"",
            "zone = \"mobile\"\nkind = \"body\"",
            "device[0].zone",
            "unknown zone \"mobile\"; defined zones are",
        ),
        (
            "LRA 512\"\ntimezone = \"Europe/Vilnius\"",
            "LRA 512\"\ntimezone = \"Europe/Vilnus\"",
            "device[1].timezone",
            "unknown time zone \"Europe/Vilnus\"",
        ),
        (
            "registered = \"2026-03-01\"",
            "registered = \"1.3.2026\"",
            "device[0].registered",
            "\"YYYY-MM-DD\"",
        ),
        (
            "serial = \"DC3\"",
            "serial = \"BWC0007\"",
            "device[1].serial",
            "also that of device[0]",
        ),
        (
            "id = \"dash-3\"",
            "id = \"L1-vartai\"",
            "device[1].id",
            "also the id of camera \"L1-vartai\"",
        ),
        (
            "id = \"dash-3\"",
            "id = \"BWC-07\"",
            "device[1].id",
            "duplicate device id",
        ),
        (
            "pattern = \"{serial}_",
            "pattern = \"{serial}{any}_",
            "inbox[1].pattern",
            "put a separator",
        ),
        (
            "pattern = \"{serial}_",
            "pattern = \"{unit}_",
            "inbox[1].pattern",
            "unknown placeholder {unit}",
        ),
        (
            "settle = \"3s\"",
            "settle = \"0s\"",
            "inbox[1].settle",
            "out of range",
        ),
        (
            "quarantine = \"/srv/custos/inbox-quarantine/dock\"",
            "quarantine = \"/srv/custos/inbox/dock/bad\"",
            "inbox[0].quarantine",
            "overlaps the inbox",
        ),
        (
            "path = \"/srv/custos/inbox/dash\"",
            "path = \"/srv/custos/recordings/in\"",
            "inbox[1].path",
            "overlaps storage[0].path",
        ),
    ];
    for (from, to, key, needle) in cases {
        let bad = replace(&text, from, to);
        let field = key.rsplit('.').next().unwrap();
        let at = to.lines().find(|l| l.starts_with(field)).unwrap();
        let line = line_of_nth(&bad, at, bad.matches(at).count());
        let e = error_at(&bad, key, line);
        assert_contains(&e.message, &[needle]);
    }
    let bad = replace(
        &text,
        "[[inbox]]\npath",
        "[[inbox]]\ndevice = \"bwc-7\"\npath",
    );
    let e = error_at(&bad, "inbox[0].device", line_of(&bad, "device = \"bwc-7\""));
    assert_eq!(
        e.message,
        "unknown device \"bwc-7\"; defined devices are: bwc-07, dash-3"
    );
}

const VAULT: &str = r#"
[vault]
endpoint = "https://s3.klaipeda.lt:9000"
bucket = "custos-evidence"
prefix = "school-12"
lock_mode = "compliance"
"#;

const VAULT_SECRETS: &str = r#"
[vault]
access_key_id = "AKIA-custos"
secret_access_key = "a-long-vault-secret"
"#;

/// Parses `text` with `secrets` as /etc/custos/secrets.toml.
fn parse_vault(text: &str, secrets: &str) -> Result<Config, ConfigErrors> {
    Config::parse_with_secrets(
        text,
        Path::new(FILE),
        secrets,
        Path::new("/etc/custos/secrets.toml"),
    )
}

#[test]
fn a_vault_takes_its_credential_from_the_secrets_file_and_never_prints_it() {
    let text = format!("{BASE}{VAULT}");
    let c = parse_vault(&text, VAULT_SECRETS).unwrap_or_else(|e| panic!("{e}"));
    let v = c.vault.as_ref().expect("[vault] is read");
    assert_eq!(v.endpoint.as_str(), "https://s3.klaipeda.lt:9000/");
    assert_eq!(
        (v.bucket.as_str(), v.prefix.as_str(), v.region.as_str()),
        ("custos-evidence", "school-12", "us-east-1")
    );
    assert_eq!(v.lock_mode, custos::config::VaultLockMode::Compliance);
    // Compliance objects cannot be deleted early: they expire.
    assert_eq!(v.on_close, custos::config::VaultOnClose::Expire);
    assert_eq!(
        v.secret_access_key.as_ref().unwrap().expose(),
        "a-long-vault-secret"
    );
    let shown = format!("{v:?}");
    assert!(
        !shown.contains("a-long-vault-secret") && !shown.contains("AKIA"),
        "{shown}"
    );

    // Without the credential the vault cannot work: said, with the file.
    let errs = parse_vault(&text, "").unwrap_err();
    let e = errs.find("vault").unwrap_or_else(|| panic!("{errs}"));
    assert_contains(
        &e.message,
        &[
            "access_key_id and secret_access_key",
            "/etc/custos/secrets.toml",
        ],
    );
    // Half a credential is an error in the secrets file.
    let errs = parse_vault(&text, "[vault]\naccess_key_id = \"AKIA-custos\"\n").unwrap_err();
    let e = errs.find("vault").unwrap_or_else(|| panic!("{errs}"));
    assert_eq!(e.file, Path::new("/etc/custos/secrets.toml"));
    assert_contains(
        &e.message,
        &["needs both access_key_id and secret_access_key"],
    );
}

#[test]
fn vault_mistakes_are_named_at_their_line() {
    let cases = [
        (
            "bucket = \"custos-evidence\"",
            "bucket = \"Custos_Evidence\"",
            "vault.bucket",
            "is not an S3 bucket name",
        ),
        (
            "prefix = \"school-12\"",
            "prefix = \"../other\"",
            "vault.prefix",
            "no '/'",
        ),
        (
            "lock_mode = \"compliance\"",
            "lock_mode = \"worm\"",
            "vault.lock_mode",
            "not governance or compliance",
        ),
        (
            "lock_mode = \"compliance\"",
            "lock_mode = \"compliance\"\non_close = \"delete\"",
            "vault.on_close",
            "nobody can delete a compliance-locked object",
        ),
        (
            "endpoint = \"https://s3.klaipeda.lt:9000\"",
            "endpoint = \"s3.klaipeda.lt\"",
            "vault.endpoint",
            "not a URL",
        ),
        (
            "endpoint = \"https://s3.klaipeda.lt:9000\"",
            "endpoint = \"https://key:secret@s3.klaipeda.lt\"",
            "vault.endpoint",
            "credentials belong in the secrets file",
        ),
    ];
    for (from, to, key, says) in cases {
        let text = format!("{BASE}{}", replace(VAULT, from, to));
        let errs = parse_vault(&text, VAULT_SECRETS).unwrap_err();
        let e = errs.find(key).unwrap_or_else(|| panic!("{to}: {errs}"));
        assert_contains(&e.message, &[says]);
        assert_eq!(
            e.line,
            Some(line_of(&text, to.lines().last().unwrap())),
            "{to}: {e}"
        );
    }
    // Plain HTTP to another machine is allowed, with a warning.
    let text = format!(
        "{BASE}{}",
        replace(
            VAULT,
            "https://s3.klaipeda.lt:9000",
            "http://s3.klaipeda.lt:9000"
        )
    );
    let c = parse_vault(&text, VAULT_SECRETS).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.warnings.iter().any(|w| w.message.contains("unencrypted")),
        "{:?}",
        c.warnings
    );
}
