//! Markdown for the controller's website (CommonMark with GFM tables).

use std::fmt::Write;

use super::{Labels, RegisterEntry, Sign, read_more, retention_text};

/// Escapes text so it renders literally: the Markdown punctuation that can
/// act mid-line is backslash-escaped (values never start a line, so `#`,
/// `-` and `1.` cannot), `<` and `>` too (raw HTML would pass through a
/// renderer), and line breaks become spaces so one value stays one line or
/// one table cell.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn sign(sign: &Sign<'_>, labels: &Labels) -> String {
    let zone = sign.zone;
    let c = sign.controller;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}: {}\n\n## {}\n\n**{}**  \n{}: {}  \n{}\n",
        labels.monitored,
        esc(&zone.name),
        labels.controller,
        esc(&c.name),
        labels.code,
        esc(&c.registration_code),
        esc(&c.address)
    );
    let mut contacts = format!("{}: {}", labels.contacts, esc(&c.email));
    if let Some(phone) = &c.phone {
        let _ = write!(contacts, ", {}", esc(phone));
    }
    let mut dpo = format!("{}: ", labels.dpo);
    if let Some(name) = &c.dpo.name {
        let _ = write!(dpo, "{}, ", esc(name));
    }
    dpo.push_str(&esc(&c.dpo.email));
    if let Some(phone) = &c.dpo.phone {
        let _ = write!(dpo, ", {}", esc(phone));
    }
    let _ = writeln!(out, "{contacts}  \n{dpo}\n\n## {}\n", labels.purposes);
    for p in &zone.purposes {
        let _ = writeln!(out, "- {}", esc(p));
    }
    let _ = writeln!(
        out,
        "\n{}: {}\n\n## {}\n\n**{}**\n\n{}: {}\n",
        labels.legal_basis,
        esc(&zone.legal_basis),
        labels.retention,
        esc(&retention_text(labels, zone.retention_days)),
        labels.processor,
        esc(&zone.processor)
    );
    if sign.cameras.is_empty() {
        let _ = writeln!(out, "{}\n", labels.no_cameras);
    }
    let _ = writeln!(
        out,
        "## {}\n\n{}",
        labels.read_more,
        link(read_more(sign.controller))
    );
    out
}

pub(crate) fn register(entries: &[RegisterEntry<'_>], labels: &Labels) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n\n| {} | {} | {} | {} | {} | {} |\n|---|---|---|---|---|---|",
        labels.register_title,
        labels.camera,
        labels.zone,
        labels.area,
        labels.retention,
        labels.controller,
        labels.processor
    );
    for e in entries {
        let status = if e.enabled {
            String::new()
        } else {
            format!(" ({})", labels.not_recording)
        };
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} | {} |",
            esc(e.name),
            status,
            esc(&e.zone.name),
            esc(labels.area_of(e)),
            esc(&retention_text(labels, e.zone.retention_days)),
            esc(&e.controller.name),
            esc(&e.zone.processor)
        );
    }
    out
}

/// A web address as an autolink (`<https://...>`), so escaping cannot mangle
/// it; anything else (an email, a malformed address) as escaped text.
fn link(s: &str) -> String {
    let plain = s.starts_with("https://") || s.starts_with("http://");
    if plain && !s.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
        format!("<{s}>")
    } else {
        esc(s)
    }
}
