//! HTML for printing: A4 pages, inline CSS and SVG only (no fonts, images or
//! scripts fetched from anywhere), every configured string escaped.

use std::fmt::Write;

use super::{Labels, RegisterEntry, Sign, read_more, retention_text};
use crate::config::Controller;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A camera pictogram (the usual CCTV sign symbol), drawn inline.
const PICTOGRAM: &str = r##"<svg class="pictogram" viewBox="0 0 120 80" role="img" aria-label="CCTV"><g fill="#111"><rect x="10" y="18" width="70" height="32" rx="5" transform="rotate(12 45 34)"/><polygon points="78,30 104,18 104,56 78,44" transform="rotate(12 45 34)"/><rect x="38" y="50" width="8" height="18"/><rect x="18" y="66" width="48" height="7" rx="2"/></g><circle cx="22" cy="30" r="5" fill="#fc0" transform="rotate(12 45 34)"/></svg>"##;

const STYLE: &str = "@page{size:A4;margin:15mm}\
*{box-sizing:border-box}\
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#111}\
.page{width:180mm;min-height:260mm;page-break-after:always;break-after:page;padding:6mm;border:3mm solid #111;margin:0 auto 10mm auto}\
.page:last-child{page-break-after:auto;break-after:auto}\
.banner{background:#fc0;border:1mm solid #111;display:flex;align-items:center;gap:6mm;padding:4mm}\
.pictogram{width:45mm;height:30mm;flex:none}\
h1{font-size:26pt;margin:0;line-height:1.15}\
h2{font-size:15pt;margin:6mm 0 1mm 0;border-bottom:0.5mm solid #111}\
p,li,td,th{font-size:12pt;line-height:1.35}\
ul{margin:1mm 0;padding-left:6mm}\
.zone{font-size:17pt;font-weight:bold;margin:4mm 0 0 0}\
.retention{font-size:16pt;font-weight:bold}\
.more{font-size:14pt;font-weight:bold;word-break:break-all}\
table{border-collapse:collapse;width:100%}\
td,th{border:0.3mm solid #111;padding:1.5mm;text-align:left;vertical-align:top;font-size:10pt}\
th{background:#eee}\
.register{border:none;min-height:0}\
tr{page-break-inside:avoid;break-inside:avoid}";

fn head(out: &mut String, labels: &Labels, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        labels.lang,
        esc(title)
    );
}

fn contacts(out: &mut String, c: &Controller, labels: &Labels) {
    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<p><strong>{}</strong><br>{}: {}<br>{}</p>",
        labels.controller,
        esc(&c.name),
        labels.code,
        esc(&c.registration_code),
        esc(&c.address)
    );
    let mut line = format!("{}: {}", labels.contacts, esc(&c.email));
    if let Some(phone) = &c.phone {
        let _ = write!(line, ", {}", esc(phone));
    }
    let mut dpo = format!("{}: ", labels.dpo);
    if let Some(name) = &c.dpo.name {
        let _ = write!(dpo, "{}, ", esc(name));
    }
    dpo.push_str(&esc(&c.dpo.email));
    if let Some(phone) = &c.dpo.phone {
        let _ = write!(dpo, ", {}", esc(phone));
    }
    let _ = writeln!(out, "<p>{line}<br>{dpo}</p>");
}

/// One document with the given signs, one A4 page each.
pub(crate) fn signs(signs: &[Sign<'_>], labels: &Labels) -> String {
    let mut out = String::new();
    let title = match signs {
        [one] => format!("{}: {}", labels.monitored, one.zone.name),
        _ => labels.monitored.to_owned(),
    };
    head(&mut out, labels, &title);
    for sign in signs {
        let zone = sign.zone;
        let _ = writeln!(
            out,
            "<section class=\"page sign\" id=\"zone-{}\">\n<div class=\"banner\">{PICTOGRAM}<h1>{}</h1></div>\n\
             <p class=\"zone\">{}</p>",
            esc(&zone.id),
            labels.monitored,
            esc(&zone.name)
        );
        contacts(&mut out, sign.controller, labels);
        let _ = writeln!(out, "<h2>{}</h2>\n<ul>", labels.purposes);
        for p in &zone.purposes {
            let _ = writeln!(out, "<li>{}</li>", esc(p));
        }
        let _ = writeln!(
            out,
            "</ul>\n<p>{}: {}</p>\n<h2>{}</h2>\n<p class=\"retention\">{}</p>\n<p>{}: {}</p>",
            labels.legal_basis,
            esc(&zone.legal_basis),
            labels.retention,
            esc(&retention_text(labels, zone.retention_days)),
            labels.processor,
            esc(&zone.processor)
        );
        if sign.cameras.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", labels.no_cameras);
        }
        let _ = writeln!(
            out,
            "<h2>{}</h2>\n<p class=\"more\">{}</p>\n</section>",
            labels.read_more,
            esc(read_more(sign.controller))
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The register as one table, grouped by nothing: file order, which is how
/// the administrator lists cameras.
pub(crate) fn register(entries: &[RegisterEntry<'_>], labels: &Labels) -> String {
    let mut out = String::new();
    head(&mut out, labels, labels.register_title);
    let _ = writeln!(
        out,
        "<section class=\"page register\">\n<h1>{}</h1>\n<table>\n<thead><tr>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
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
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(e.name),
            status,
            esc(&e.zone.name),
            esc(labels.area_of(e)),
            esc(&retention_text(labels, e.zone.retention_days)),
            esc(&e.controller.name),
            esc(&e.zone.processor)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n</body>\n</html>\n");
    out
}
