//! The answer letter to a data subject, from the request's [`Findings`]:
//! what footage of the window exists and what no longer does, its
//! retention, the recipients of the past year, the purposes and legal basis,
//! what was done (erasure, refused erasure, restriction, objection,
//! correction, extension), the requester's rights and the DPO's contacts
//! (004 §25; 001 §33). HTML laid out for printing and Markdown, both from
//! one [`Letter`] so they cannot disagree; fixed wording in the notice's
//! languages, values from the configuration and the register as written
//! and escaped.

use std::fmt::Write;

use jiff::tz::TimeZone;

use super::access::Findings;
use crate::config::Config;
use crate::index::DeletionReason;
use crate::notice::{Document, Language, escape_html, escape_markdown};

/// The fixed wording in one language; `{}`-style names are replaced.
struct Words {
    lang: &'static str,
    title: &'static str,
    date: &'static str,
    to: &'static str,
    request: &'static str,
    received: &'static str,
    reference: &'static str,
    kinds: [&'static str; 6],
    place_time: &'static str,
    times_in: &'static str,
    what_we_hold: &'static str,
    exists: &'static str,
    none_exists: &'static str,
    deleted: &'static str,
    why_retention: &'static str,
    why_pressure: &'static str,
    why_erasure: &'static str,
    why_case_closed: &'static str,
    retention: &'static str,
    held: &'static str,
    purposes: &'static str,
    legal_basis: &'static str,
    processor: &'static str,
    recipients: &'static str,
    no_recipients: &'static str,
    done: &'static str,
    erased: &'static str,
    kept_case: &'static str,
    kept_other: &'static str,
    restricted: &'static str,
    lifted: &'static str,
    upheld: &'static str,
    rejected: &'static str,
    corrected: &'static str,
    extended: &'static str,
    copy_note: &'static str,
    rights: &'static str,
    rights_text: &'static str,
    questions: &'static str,
    contact_dpo: &'static str,
}

const EN: Words = Words {
    lang: "en",
    title: "Answer to your request",
    date: "Date",
    to: "To",
    request: "Your request",
    received: "received",
    reference: "Our reference",
    kinds: [
        "access to recordings of you",
        "a copy of recordings of you",
        "rectification (a wrong date or time)",
        "erasure",
        "restriction of processing",
        "objection to processing",
    ],
    place_time: "Place and time",
    times_in: "Times are local time ({zone}).",
    what_we_hold: "What we hold",
    exists: "Recordings from {from} to {to} exist.",
    none_exists: "No recording of this time exists.",
    deleted: "Recordings from {from} to {to} were deleted on {on}: {why}.",
    why_retention: "their {days}-day retention period had ended",
    why_pressure: "the storage was full and the oldest recordings are deleted first",
    why_erasure: "erased at a data subject's request",
    why_case_closed: "the copies kept for a closed case were destroyed",
    retention: "Recordings of this area are kept no longer than {days} days.",
    held: "Part of these recordings is kept longer because it is needed for legal proceedings.",
    purposes: "Purposes",
    legal_basis: "Legal basis",
    processor: "Processor",
    recipients: "Recipients in the past year",
    no_recipients: "No recording of this time was disclosed to anyone in the past year.",
    done: "What we did",
    erased: "Recordings from {from} to {to} ({camera}) were erased on {on}.",
    kept_case: "Recordings from {from} to {to} ({camera}) were not erased: they are needed for legal proceedings.",
    kept_other: "Recordings from {from} to {to} ({camera}) could not be erased yet.",
    restricted: "Processing of recordings from {from} to {to} ({camera}) is restricted: they are kept untouched and not used.",
    lifted: "The restriction of recordings from {from} to {to} ({camera}) was lifted on {on}.",
    upheld: "Your objection was upheld: {text}",
    rejected: "Your objection was not upheld: {text}",
    corrected: "The time shown in recordings from {from} to {to} ({camera}) is noted as off by {offset}: {text}. The recordings themselves are not altered.",
    extended: "The time to answer was extended to {on}: {text}.",
    copy_note: "A copy of recordings is given only with other people and vehicle number plates made unidentifiable; it is prepared separately.",
    rights: "Your rights",
    rights_text: "You may ask for access to your data, its rectification, erasure or the restriction of its processing, and object to its processing. If you think your data is processed unlawfully, you may lodge a complaint with the data protection supervisory authority.",
    questions: "Questions",
    contact_dpo: "Contact our data protection officer:",
};

const LT: Words = Words {
    lang: "lt",
    title: "Atsakymas į jūsų prašymą",
    date: "Data",
    to: "Kam",
    request: "Jūsų prašymas",
    received: "gautas",
    reference: "Mūsų nuoroda",
    kinds: [
        "susipažinti su vaizdo įrašais, kuriuose esate",
        "vaizdo įrašų, kuriuose esate, kopija",
        "ištaisyti (neteisinga data ar laikas)",
        "ištrinti",
        "apriboti tvarkymą",
        "nesutikimas su tvarkymu",
    ],
    place_time: "Vieta ir laikas",
    times_in: "Nurodytas vietos laikas ({zone}).",
    what_we_hold: "Kokius duomenis turime",
    exists: "Yra įrašų nuo {from} iki {to}.",
    none_exists: "Šio laiko įrašų nėra.",
    deleted: "Įrašai nuo {from} iki {to} ištrinti {on}: {why}.",
    why_retention: "baigėsi jų {days} d. saugojimo terminas",
    why_pressure: "saugykla buvo pilna, o pirmiausia trinami seniausi įrašai",
    why_erasure: "ištrinti duomenų subjekto prašymu",
    why_case_closed: "sunaikintos baigtai bylai saugotos kopijos",
    retention: "Šios vietos įrašai saugomi ne ilgiau kaip {days} d.",
    held: "Dalis šių įrašų saugoma ilgiau, nes jų reikia teisiniams procesams.",
    purposes: "Tikslai",
    legal_basis: "Teisinis pagrindas",
    processor: "Duomenų tvarkytojas",
    recipients: "Gavėjai per pastaruosius metus",
    no_recipients: "Per pastaruosius metus šio laiko įrašai niekam nebuvo perduoti.",
    done: "Ką atlikome",
    erased: "Įrašai nuo {from} iki {to} ({camera}) ištrinti {on}.",
    kept_case: "Įrašai nuo {from} iki {to} ({camera}) neištrinti: jų reikia teisiniams procesams.",
    kept_other: "Įrašų nuo {from} iki {to} ({camera}) kol kas nepavyko ištrinti.",
    restricted: "Įrašų nuo {from} iki {to} ({camera}) tvarkymas apribotas: jie saugomi nekeičiami ir nenaudojami.",
    lifted: "Įrašų nuo {from} iki {to} ({camera}) tvarkymo apribojimas panaikintas {on}.",
    upheld: "Jūsų nesutikimas pripažintas pagrįstu: {text}",
    rejected: "Jūsų nesutikimas nepripažintas pagrįstu: {text}",
    corrected: "Pažymėta, kad įrašuose nuo {from} iki {to} ({camera}) rodomas laikas netikslus {offset}: {text}. Patys įrašai nekeičiami.",
    extended: "Atsakymo terminas pratęstas iki {on}: {text}.",
    copy_note: "Įrašų kopija pateikiama tik padarius kitus asmenis ir transporto priemonių numerius neatpažįstamus; ji rengiama atskirai.",
    rights: "Jūsų teisės",
    rights_text: "Galite prašyti susipažinti su savo duomenimis, juos ištaisyti, ištrinti ar apriboti jų tvarkymą ir nesutikti su jų tvarkymu. Jei manote, kad jūsų duomenys tvarkomi neteisėtai, galite pateikti skundą Valstybinei duomenų apsaugos inspekcijai.",
    questions: "Klausimai",
    contact_dpo: "Kreipkitės į mūsų duomenų apsaugos pareigūną:",
};

const LV: Words = Words {
    lang: "lv",
    title: "Atbilde uz jūsu pieprasījumu",
    date: "Datums",
    to: "Kam",
    request: "Jūsu pieprasījums",
    received: "saņemts",
    reference: "Mūsu atsauce",
    kinds: [
        "piekļuve videoierakstiem, kuros esat redzams",
        "videoierakstu, kuros esat redzams, kopija",
        "labošana (nepareizs datums vai laiks)",
        "dzēšana",
        "apstrādes ierobežošana",
        "iebildums pret apstrādi",
    ],
    place_time: "Vieta un laiks",
    times_in: "Norādīts vietējais laiks ({zone}).",
    what_we_hold: "Kādi dati mums ir",
    exists: "Ir ieraksti no {from} līdz {to}.",
    none_exists: "Šī laika ierakstu nav.",
    deleted: "Ieraksti no {from} līdz {to} tika dzēsti {on}: {why}.",
    why_retention: "beidzās to {days} dienu glabāšanas termiņš",
    why_pressure: "krātuve bija pilna, un vispirms tiek dzēsti vecākie ieraksti",
    why_erasure: "dzēsti pēc datu subjekta pieprasījuma",
    why_case_closed: "iznīcinātas slēgtai lietai glabātās kopijas",
    retention: "Šīs vietas ieraksti tiek glabāti ne ilgāk kā {days} dienas.",
    held: "Daļa šo ierakstu tiek glabāta ilgāk, jo tie nepieciešami tiesvedībai.",
    purposes: "Mērķi",
    legal_basis: "Tiesiskais pamats",
    processor: "Apstrādātājs",
    recipients: "Saņēmēji pēdējā gada laikā",
    no_recipients: "Pēdējā gada laikā šī laika ieraksti nevienam netika nodoti.",
    done: "Ko mēs izdarījām",
    erased: "Ieraksti no {from} līdz {to} ({camera}) tika dzēsti {on}.",
    kept_case: "Ieraksti no {from} līdz {to} ({camera}) netika dzēsti: tie nepieciešami tiesvedībai.",
    kept_other: "Ierakstus no {from} līdz {to} ({camera}) pagaidām nevarēja dzēst.",
    restricted: "Ierakstu no {from} līdz {to} ({camera}) apstrāde ir ierobežota: tie tiek glabāti neskarti un netiek izmantoti.",
    lifted: "Ierakstu no {from} līdz {to} ({camera}) apstrādes ierobežojums tika atcelts {on}.",
    upheld: "Jūsu iebildums tika atzīts par pamatotu: {text}",
    rejected: "Jūsu iebildums netika atzīts par pamatotu: {text}",
    corrected: "Atzīmēts, ka ierakstos no {from} līdz {to} ({camera}) redzamais laiks ir nobīdīts par {offset}: {text}. Paši ieraksti netiek mainīti.",
    extended: "Atbildes termiņš tika pagarināts līdz {on}: {text}.",
    copy_note: "Ierakstu kopija tiek izsniegta tikai pēc tam, kad citas personas un transportlīdzekļu numuri ir padarīti neatpazīstami; tā tiek sagatavota atsevišķi.",
    rights: "Jūsu tiesības",
    rights_text: "Jūs varat pieprasīt piekļuvi saviem datiem, to labošanu, dzēšanu vai apstrādes ierobežošanu un iebilst pret to apstrādi. Ja uzskatāt, ka jūsu dati tiek apstrādāti nelikumīgi, varat iesniegt sūdzību Datu valsts inspekcijā.",
    questions: "Jautājumi",
    contact_dpo: "Sazinieties ar mūsu datu aizsardzības speciālistu:",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::En => &EN,
        Language::Lt => &LT,
        Language::Lv => &LV,
    }
}

/// One piece of text with its variable parts, so each output escapes them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Fixed wording.
    Fixed(String),
    /// A value from the configuration or the register.
    Value(String),
}

type Line = Vec<Part>;

/// A section: a heading, then lines (paragraphs) and items (a list).
#[derive(Debug, Clone, Default)]
struct Section {
    heading: Option<String>,
    lines: Vec<Line>,
    items: Vec<Line>,
}

/// The letter, independent of its format.
#[derive(Debug, Clone)]
struct Letter {
    lang: &'static str,
    title: String,
    sections: Vec<Section>,
}

/// Fills `{name}` placeholders of a template: fixed text around values.
fn fill(template: &str, values: &[(&str, String)]) -> Line {
    let mut line = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                line.push(Part::Fixed(rest[..open].to_owned()));
                line.push(Part::Value(v.clone()));
            }
            None => line.push(Part::Fixed(rest[..open + close + 1].to_owned())),
        }
        rest = &rest[open + close + 1..];
    }
    line.push(Part::Fixed(rest.to_owned()));
    line
}

fn fixed(s: &str) -> Line {
    vec![Part::Fixed(s.to_owned())]
}

struct Clock<'a> {
    tz: &'a TimeZone,
}

impl Clock<'_> {
    fn fmt(&self, t: i64, f: &str) -> String {
        jiff::Timestamp::from_microsecond(t)
            .map(|t| t.to_zoned(self.tz.clone()).strftime(f).to_string())
            .unwrap_or_else(|_| "?".into())
    }
    fn time(&self, t: i64) -> String {
        self.fmt(t, "%Y-%m-%d %H:%M")
    }
    fn day(&self, t: i64) -> String {
        self.fmt(t, "%Y-%m-%d")
    }
}

fn offset_text(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    let d = std::time::Duration::from_secs(us.unsigned_abs() / 1_000_000);
    format!("{sign}{}", humantime::format_duration(d))
}

fn kind_index(kind: &str) -> usize {
    super::Kind::ALL
        .iter()
        .position(|k| k.as_str() == kind)
        .unwrap_or(0)
}

fn build(f: &Findings, config: &Config, w: &Words) -> Letter {
    let clock = Clock {
        tz: &config.timezone,
    };
    let r = &f.request;
    let c = &config.controller;
    let mut head = Section::default();
    head.lines.push(vec![Part::Value(format!(
        "{} ({})",
        c.name, c.registration_code
    ))]);
    head.lines.push(vec![Part::Value(c.address.clone())]);
    head.lines.push(fill(
        &format!("{}: {{v}}", w.date),
        &[("v", clock.day(f.at_us))],
    ));
    if let Some(name) = &r.requester {
        let to = match &r.contact {
            Some(contact) => format!("{name}, {contact}"),
            None => name.clone(),
        };
        head.lines
            .push(fill(&format!("{}: {{v}}", w.to), &[("v", to)]));
    }
    head.lines.push(fill(
        &format!("{}: {{kind}}, {} {{on}}.", w.request, w.received),
        &[
            ("kind", w.kinds[kind_index(&r.kind)].to_owned()),
            ("on", clock.day(r.received_us)),
        ],
    ));
    let reference = match &r.reference {
        Some(x) => format!("{} ({x})", r.id),
        None => r.id.clone(),
    };
    head.lines.push(fill(
        &format!("{}: {{v}}", w.reference),
        &[("v", reference)],
    ));

    let mut place = Section {
        heading: Some(w.place_time.to_owned()),
        ..Section::default()
    };
    for cam in &f.cameras {
        let name = if cam.area.is_empty() {
            cam.name.clone()
        } else {
            format!("{}: {}", cam.name, cam.area)
        };
        place.items.push(vec![Part::Value(name)]);
    }
    place.lines.push(vec![Part::Value(format!(
        "{} – {}",
        clock.time(r.from_us),
        clock.time(r.to_us)
    ))]);
    place
        .lines
        .push(fill(w.times_in, &[("zone", config.timezone_name.clone())]));

    let mut sections = vec![head, place];
    for cam in &f.cameras {
        let mut s = Section {
            heading: Some(format!("{}: {}", w.what_we_hold, cam.name)),
            ..Section::default()
        };
        if cam.footage.is_empty() {
            s.lines.push(fixed(w.none_exists));
        }
        for span in &cam.footage {
            s.lines.push(fill(
                w.exists,
                &[
                    ("from", clock.time(span.from_us.max(r.from_us))),
                    ("to", clock.time(span.to_us.min(r.to_us))),
                ],
            ));
        }
        for d in &cam.deleted {
            let why = match d.reason {
                DeletionReason::Retention => w
                    .why_retention
                    .replace("{days}", &cam.retention_days.to_string()),
                DeletionReason::DiskPressure => w.why_pressure.to_owned(),
                DeletionReason::Erasure => w.why_erasure.to_owned(),
                DeletionReason::CaseClosed => w.why_case_closed.to_owned(),
            };
            s.lines.push(fill(
                w.deleted,
                &[
                    ("from", clock.time(d.from_us.max(r.from_us))),
                    ("to", clock.time(d.to_us.min(r.to_us))),
                    ("on", clock.day(d.at_us)),
                    ("why", why),
                ],
            ));
        }
        s.lines.push(fill(
            w.retention,
            &[("days", cam.retention_days.to_string())],
        ));
        if cam.held {
            s.lines.push(fixed(w.held));
        }
        for (label, value) in [
            (w.purposes, cam.purposes.join("; ")),
            (w.legal_basis, cam.legal_basis.clone()),
            (w.processor, cam.processor.clone()),
        ] {
            if !value.is_empty() {
                s.items
                    .push(fill(&format!("{label}: {{v}}"), &[("v", value)]));
            }
        }
        let mut recipients = Section {
            heading: Some(format!("{}: {}", w.recipients, cam.name)),
            ..Section::default()
        };
        if cam.disclosed.is_empty() {
            recipients.lines.push(fixed(w.no_recipients));
        }
        for d in &cam.disclosed {
            recipients.items.push(vec![
                Part::Fixed(format!("{}: ", clock.day(d.at_us))),
                Part::Value(format!("{} ({})", d.recipient, d.legal_basis)),
            ]);
        }
        sections.push(s);
        sections.push(recipients);
    }

    let done = done_section(f, w, &clock);
    if !done.lines.is_empty() {
        sections.push(done);
    }
    if r.kind == super::Kind::Copy.as_str() {
        sections.push(Section {
            lines: vec![fixed(w.copy_note)],
            ..Section::default()
        });
    }
    sections.push(Section {
        heading: Some(w.rights.to_owned()),
        lines: vec![fixed(w.rights_text)],
        ..Section::default()
    });
    let dpo = &c.dpo;
    let mut contact = vec![dpo.name.clone(), Some(dpo.email.clone()), dpo.phone.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    if contact.is_empty() {
        contact = c.email.clone();
    }
    sections.push(Section {
        heading: Some(w.questions.to_owned()),
        lines: vec![vec![
            Part::Fixed(format!("{} ", w.contact_dpo)),
            Part::Value(contact),
        ]],
        ..Section::default()
    });
    Letter {
        lang: w.lang,
        title: format!("{} {}", w.title, r.id),
        sections,
    }
}

fn done_section(f: &Findings, w: &Words, clock: &Clock) -> Section {
    let mut s = Section {
        heading: Some(w.done.to_owned()),
        ..Section::default()
    };
    let get = |e: &serde_json::Value, k: &str| e.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let text = |e: &serde_json::Value, k: &str| {
        e.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    for e in &f.events {
        let d = &e.detail;
        let range = |d: &serde_json::Value| {
            vec![
                ("from", clock.time(get(d, "from_us"))),
                ("to", clock.time(get(d, "to_us"))),
                ("camera", text(d, "camera")),
                ("on", clock.day(e.at_us)),
            ]
        };
        match e.kind.as_str() {
            "erased" => s.lines.push(fill(w.erased, &range(d))),
            "erasure_refused" if d.get("case").is_some_and(|c| !c.is_null()) => {
                s.lines.push(fill(w.kept_case, &range(d)))
            }
            "erasure_refused" => s.lines.push(fill(w.kept_other, &range(d))),
            "objection_decided" => {
                let t = if d.get("upheld").and_then(|v| v.as_bool()) == Some(true) {
                    w.upheld
                } else {
                    w.rejected
                };
                s.lines.push(fill(t, &[("text", text(d, "reasoning"))]));
            }
            "extended" => s.lines.push(fill(
                w.extended,
                &[("on", text(d, "to")), ("text", text(d, "reason"))],
            )),
            _ => {}
        }
    }
    for r in &f.restrictions {
        let vals = vec![
            ("from", clock.time(r.from_us)),
            ("to", clock.time(r.to_us)),
            ("camera", r.camera.clone()),
            ("on", r.lifted_us.map(|t| clock.day(t)).unwrap_or_default()),
        ];
        let t = if r.lifted_us.is_some() {
            w.lifted
        } else {
            w.restricted
        };
        s.lines.push(fill(t, &vals));
    }
    for c in &f.corrections {
        s.lines.push(fill(
            w.corrected,
            &[
                ("from", clock.time(c.from_us)),
                ("to", clock.time(c.to_us)),
                ("camera", c.camera.clone()),
                ("offset", offset_text(c.offset_us)),
                ("text", c.note.clone()),
            ],
        ));
    }
    s
}

fn markdown(l: &Letter) -> String {
    let line = |parts: &Line| -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Fixed(s) => escape_markdown(s),
                Part::Value(s) => escape_markdown(s),
            })
            .collect()
    };
    let mut out = format!("# {}\n", escape_markdown(&l.title));
    for s in &l.sections {
        out.push('\n');
        if let Some(h) = &s.heading {
            let _ = writeln!(out, "## {}\n", escape_markdown(h));
        }
        for p in &s.lines {
            let _ = writeln!(out, "{}  ", line(p));
        }
        if !s.items.is_empty() && !s.lines.is_empty() {
            out.push('\n');
        }
        for i in &s.items {
            let _ = writeln!(out, "- {}", line(i));
        }
    }
    out
}

const STYLE: &str = "@page{size:A4;margin:20mm}\
body{font-family:'DejaVu Sans',Arial,sans-serif;color:#111;max-width:170mm;margin:0 auto}\
h1{font-size:18pt}h2{font-size:13pt;margin:6mm 0 1mm 0;border-bottom:0.3mm solid #111}\
p,li{font-size:11pt;line-height:1.4;margin:1mm 0}";

fn html(l: &Letter) -> String {
    let line = |parts: &Line| -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Fixed(s) => escape_html(s),
                Part::Value(s) => format!("<span class=\"v\">{}</span>", escape_html(s)),
            })
            .collect()
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        l.lang,
        escape_html(&l.title),
        escape_html(&l.title)
    );
    for s in &l.sections {
        if let Some(h) = &s.heading {
            let _ = writeln!(out, "<h2>{}</h2>", escape_html(h));
        }
        for p in &s.lines {
            let _ = writeln!(out, "<p>{}</p>", line(p));
        }
        if !s.items.is_empty() {
            out.push_str("<ul>\n");
            for i in &s.items {
                let _ = writeln!(out, "<li>{}</li>", line(i));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// The answer letter for `findings`, as `answer-<id>.html` and `.md`.
pub fn render(findings: &Findings, config: &Config, language: Language) -> Vec<Document> {
    let letter = build(findings, config, words(language));
    let stem = format!("answer-{}", findings.request.id);
    vec![
        Document {
            file_name: format!("{stem}.html"),
            contents: html(&letter),
        },
        Document {
            file_name: format!("{stem}.md"),
            contents: markdown(&letter),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_keeps_values_apart_from_wording() {
        let l = fill(
            "from {from} to {to}.",
            &[("from", "a<b".into()), ("to", "c".into())],
        );
        assert_eq!(
            l,
            vec![
                Part::Fixed("from ".into()),
                Part::Value("a<b".into()),
                Part::Fixed(" to ".into()),
                Part::Value("c".into()),
                Part::Fixed(".".into()),
            ]
        );
    }

    #[test]
    fn every_language_has_every_placeholder_the_english_has() {
        for w in [&LT, &LV] {
            for (en, other) in [
                (EN.exists, w.exists),
                (EN.deleted, w.deleted),
                (EN.erased, w.erased),
                (EN.kept_case, w.kept_case),
                (EN.restricted, w.restricted),
                (EN.lifted, w.lifted),
                (EN.corrected, w.corrected),
                (EN.extended, w.extended),
                (EN.retention, w.retention),
                (EN.why_retention, w.why_retention),
            ] {
                for name in [
                    "{from}", "{to}", "{on}", "{why}", "{camera}", "{days}", "{text}", "{offset}",
                ] {
                    assert_eq!(
                        en.contains(name),
                        other.contains(name),
                        "{}: {other}",
                        w.lang
                    );
                }
            }
        }
    }
}
