//! The public notice and camera register (RULES.md "What the public is told";
//! 001 §8, §21, §34, §40; 004 §6, §23, §37, annex 1), generated from the
//! shipped example configuration and checked field by field, zone by zone and
//! camera by camera. The HTML is checked structurally here (balanced tags,
//! one A4 page per sign, nothing fetched from outside); a rendering check by
//! eye is `scripts/notice-screenshot`.

use std::path::Path;
use std::process::Command;

use custos::config::Config;
use custos::notice::{self, Document, Language};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/custos.example.toml");

fn example() -> Config {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    Config::parse_str(&text, Path::new(EXAMPLE)).unwrap()
}

fn doc<'a>(docs: &'a [Document], name: &str) -> &'a str {
    &docs
        .iter()
        .find(|d| d.file_name == name)
        .unwrap_or_else(|| panic!("no {name} among {:?}", names(docs)))
        .contents
}

fn names(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.file_name.as_str()).collect()
}

/// The HTML form of `s`, as the renderer escapes it.
fn h(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The Markdown form of `s`, as the renderer escapes it.
fn m(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\`*_[]|<>~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks that every non-void element is closed in order and that no
/// attribute value or text holds a raw `<`: a cheap well-formedness check
/// that catches a forgotten close tag or unescaped markup.
fn assert_balanced(html: &str) {
    const VOID: &[&str] = &["meta", "br", "rect", "polygon", "circle", "!DOCTYPE"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "raw '<' inside a tag: {tag}");
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if tag.starts_with('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
        } else if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
}

#[test]
fn every_zone_gets_a_sign_with_what_the_rules_require() {
    let config = example();
    let docs = notice::render(&config, Language::En);
    assert_eq!(config.zones.len(), 4);
    for zone in &config.zones {
        let c = config.zone_controller(zone);
        let html = doc(&docs, &format!("sign-{}.html", zone.id));
        let md = doc(&docs, &format!("sign-{}.md", zone.id));
        // 001 §21, §34; 004 §23, annex 1: that monitoring takes place, the
        // controller's name, code and contacts, purposes, where to read more;
        // and the retention of the zone.
        let mut expected = vec![
            "Video surveillance in operation".to_owned(),
            zone.name.clone(),
            c.name.clone(),
            c.registration_code.clone(),
            c.address.clone(),
            c.email.clone(),
            c.dpo.email.clone(),
            zone.legal_basis.clone(),
            zone.processor.clone(),
            format!("kept no longer than {} days", zone.retention_days),
            c.website.clone().unwrap_or_else(|| c.email.clone()),
        ];
        expected.extend(zone.purposes.iter().cloned());
        expected.extend(c.phone.iter().cloned());
        for want in &expected {
            assert!(html.contains(&h(want)), "{}: HTML lacks {want:?}", zone.id);
            let in_md = md.contains(&m(want)) || md.contains(&format!("<{want}>"));
            assert!(in_md, "{}: Markdown lacks {want:?}", zone.id);
        }
        assert!(html.contains("<svg class=\"pictogram\""), "no pictogram");
        assert_balanced(html);
    }
}

#[test]
fn a_zone_with_its_own_controller_names_it_not_the_default_one() {
    let config = example();
    let docs = notice::render(&config, Language::En);
    let public = doc(&docs, "sign-public-space.html");
    assert!(public.contains(&h("Klaipėdos miesto savivaldybės administracija")));
    assert!(public.contains("188710823"));
    assert!(
        !public.contains("190000000"),
        "school's code on the city's sign"
    );
    let indoor = doc(&docs, "sign-school-indoor.html");
    assert!(indoor.contains("190000000"));
    assert!(!indoor.contains("188710823"));
    // The mobile zone has no fixed cameras, and says so on both forms.
    let mobile = "No fixed cameras; mobile recording devices.";
    assert!(doc(&docs, "sign-mobile.html").contains(mobile));
    assert!(doc(&docs, "sign-mobile.md").contains(mobile));
    assert!(!indoor.contains(mobile));
    // Different retention per zone (004 §6, §9).
    assert!(indoor.contains("no longer than 10 days"));
    assert!(doc(&docs, "sign-school-territory.html").contains("no longer than 14 days"));
}

#[test]
fn signs_html_has_one_a4_page_per_zone_and_fetches_nothing() {
    let config = example();
    let docs = notice::render(&config, Language::En);
    let all = doc(&docs, "signs.html");
    assert_balanced(all);
    assert!(all.contains("@page{size:A4"));
    assert_eq!(
        all.matches("<section class=\"page sign\"").count(),
        config.zones.len()
    );
    for zone in &config.zones {
        assert!(all.contains(&format!("id=\"zone-{}\"", zone.id)));
    }
    for d in &docs {
        if d.file_name.ends_with(".html") {
            for external in ["src=", "href=", "http-equiv", "<script", "@import", "url("] {
                assert!(
                    !d.contents.contains(external),
                    "{} contains {external}",
                    d.file_name
                );
            }
            assert!(d.contents.starts_with("<!DOCTYPE html>"));
            assert!(d.contents.contains("<meta charset=\"utf-8\">"));
        }
    }
}

#[test]
fn the_register_lists_every_camera_with_zone_area_retention_and_processor() {
    let config = example();
    let docs = notice::render(&config, Language::En);
    let html = doc(&docs, "register.html");
    let md = doc(&docs, "register.md");
    assert_balanced(html);
    let sources = config.cameras.len() + config.devices.len();
    assert_eq!(html.matches("<tr><td>").count(), sources);
    // Header, separator, one row per camera and mobile camera, each with 6 cells.
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), sources + 2);
    for camera in &config.cameras {
        let zone = config.zone(&camera.zone).unwrap();
        let retention = format!("kept no longer than {} days", zone.retention_days);
        let row = html
            .lines()
            .find(|l| l.starts_with(&format!("<tr><td>{}", h(&camera.name))))
            .unwrap_or_else(|| panic!("{} not in the HTML register", camera.name));
        let md_row = rows
            .iter()
            .find(|l| l.starts_with(&format!("| {}", m(&camera.name))))
            .unwrap_or_else(|| panic!("{} not in the Markdown register", camera.name));
        // An unescaped '|' would add a cell.
        assert_eq!(md_row.matches(" | ").count(), 5, "{md_row}");
        for want in [
            &zone.name,
            &camera.area,
            &retention,
            &zone.processor,
            &config.zone_controller(zone).name,
        ] {
            assert!(row.contains(&h(want)), "{}: lacks {want:?}", camera.id);
            assert!(md_row.contains(&m(want)), "{}: lacks {want:?}", camera.id);
        }
        // A disabled camera stays in the register, marked.
        assert_eq!(
            row.contains("(not recording)"),
            !camera.enabled,
            "{}",
            camera.id
        );
    }
    assert!(config.cameras.iter().any(|c| !c.enabled));
    // Mobile cameras are listed with their kind and zone; who carries one
    // is not published.
    assert!(!config.devices.is_empty());
    for d in &config.devices {
        let zone = config.zone(&d.zone).unwrap();
        let row = html
            .lines()
            .find(|l| l.starts_with(&format!("<tr><td>{}", h(&d.name))))
            .unwrap_or_else(|| panic!("{} not in the HTML register", d.name));
        let kind = match d.kind {
            custos::config::DeviceKind::Body => "body-worn camera",
            custos::config::DeviceKind::Dash => "vehicle camera",
            custos::config::DeviceKind::Handheld => "handheld camera",
        };
        assert!(row.contains(kind) && row.contains(&h(&zone.name)), "{row}");
        assert!(!row.contains(&h(&d.assigned_to)), "{row}");
    }
}

#[test]
fn configured_text_cannot_inject_markup() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap().replace(
        "name = \"1A-Fojė-Pietinė\"",
        "name = \"<script>alert(1)</script> | *x* [a](b)\"",
    );
    let config = Config::parse_str(&text, Path::new(EXAMPLE)).unwrap();
    let docs = notice::render(&config, Language::En);
    let html = doc(&docs, "register.html");
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_balanced(html);
    let md = doc(&docs, "register.md");
    assert!(md.contains(r"\<script\>alert(1)\</script\> \| \*x\* \[a\](b)"));
    let row = md.lines().find(|l| l.contains("alert")).unwrap();
    assert_eq!(row.matches(" | ").count(), 5, "{row}");
}

#[test]
fn wording_follows_the_chosen_language() {
    let config = example();
    let lt = notice::render(&config, Language::Lt);
    let sign = doc(&lt, "sign-school-indoor.html");
    assert!(sign.contains("<html lang=\"lt\">"));
    assert!(sign.contains("Vykdomas vaizdo stebėjimas"));
    assert!(sign.contains("įrašai saugomi ne ilgiau kaip 10 d."));
    let lv = notice::render(&config, Language::Lv);
    assert!(doc(&lv, "register.md").contains("ne ilgāk kā 14 dienas"));
    assert!("de".parse::<Language>().is_err());
}

#[test]
fn custosctl_notice_writes_the_files_offline_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("notice");
    // No daemon runs and the socket does not exist: notice needs neither.
    let run = Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .args(["--socket", "/nonexistent/admin.sock", "notice", "--config"])
        .arg(EXAMPLE)
        .arg("--out")
        .arg(&out)
        .args(["--lang", "lt"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let listed = String::from_utf8(run.stdout).unwrap();
    let config = example();
    let expected = notice::render(&config, Language::Lt);
    assert_eq!(listed.lines().count(), expected.len());
    for d in &expected {
        let written = std::fs::read_to_string(out.join(&d.file_name)).unwrap();
        assert_eq!(written, d.contents, "{}", d.file_name);
    }

    // A broken configuration: exit 2 (invalid input) with the file's errors.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[controller]\nname = 1\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .args(["notice", "--config"])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("never"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("bad.toml"));
    assert!(!dir.path().join("never").exists());
}
