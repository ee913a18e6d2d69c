//! What the public is told: the sign before each monitored area and the public
//! camera register, generated from the configuration (RULES.md "What the
//! public is told"; 001 §8, §21, §34, §40; 004 §6, §23, §37, annex 1).
//!
//! Two forms of each document: HTML laid out for printing on A4 (one sign per
//! page, a camera pictogram, no external resources so it prints offline), and
//! Markdown for the controller's website. Both are rendered from the same
//! [`Sign`] and [`RegisterEntry`] values, so they cannot disagree.
//!
//! Invariants: every zone gets a sign, even one without live cameras (body-worn
//! and dash cameras, 001 §20.4); every camera is in the register, including
//! disabled ones (a disabled camera still hangs on the wall, 001 §8-9); every
//! string taken from the configuration is escaped for the output format, so a
//! name can never inject markup. Generation reads only the configuration: it
//! needs neither the daemon nor the index.

mod html;
mod markdown;

pub(crate) use html::esc as escape_html;
pub(crate) use markdown::esc as escape_markdown;

use std::path::{Path, PathBuf};

use crate::config::{Config, Controller, DeviceKind, Zone};
use crate::{Error, Result};

/// Language of the fixed wording on signs and in the register. Values from
/// the configuration (names, purposes, areas) are printed as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Lithuanian.
    Lt,
    /// Latvian.
    Lv,
}

impl std::str::FromStr for Language {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "en" => Ok(Language::En),
            "lt" => Ok(Language::Lt),
            "lv" => Ok(Language::Lv),
            _ => Err(Error::invalid(format!(
                "unknown notice language {s:?}: use en, lt or lv"
            ))),
        }
    }
}

/// The fixed wording in one language.
pub(crate) struct Labels {
    pub lang: &'static str,
    pub monitored: &'static str,
    pub controller: &'static str,
    pub code: &'static str,
    pub contacts: &'static str,
    pub dpo: &'static str,
    pub purposes: &'static str,
    pub legal_basis: &'static str,
    pub retention: &'static str,
    /// "kept no longer than {} days"; `{}` is replaced by the number.
    pub retention_days: &'static str,
    pub processor: &'static str,
    pub read_more: &'static str,
    pub register_title: &'static str,
    pub camera: &'static str,
    pub zone: &'static str,
    pub area: &'static str,
    pub not_recording: &'static str,
    pub no_cameras: &'static str,
    /// What a device's register row says in place of an area watched.
    pub body: &'static str,
    pub dash: &'static str,
    pub handheld: &'static str,
}

impl Labels {
    /// The area column of a register row: a camera's area, or what kind of
    /// mobile camera a device is (where it records moves with it).
    pub(crate) fn area_of<'a>(&self, e: &RegisterEntry<'a>) -> &'a str
    where
        Self: 'a,
    {
        match e.kind {
            None => e.area,
            Some(DeviceKind::Body) => self.body,
            Some(DeviceKind::Dash) => self.dash,
            Some(DeviceKind::Handheld) => self.handheld,
        }
    }
}

impl Language {
    /// The code it is parsed from: en, lt or lv.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Lt => "lt",
            Language::Lv => "lv",
        }
    }

    pub(crate) fn labels(self) -> &'static Labels {
        match self {
            Language::En => &EN,
            Language::Lt => &LT,
            Language::Lv => &LV,
        }
    }
}

const EN: Labels = Labels {
    lang: "en",
    monitored: "Video surveillance in operation",
    controller: "Controller",
    code: "Registration code",
    contacts: "Contacts",
    dpo: "Data protection officer",
    purposes: "Purposes",
    legal_basis: "Legal basis",
    retention: "Retention",
    retention_days: "recordings are kept no longer than {} days",
    processor: "Operated by",
    read_more: "More information and the camera register",
    register_title: "Register of video surveillance cameras",
    camera: "Camera",
    zone: "Zone",
    area: "Area watched",
    not_recording: "not recording",
    no_cameras: "No fixed cameras; mobile recording devices.",
    body: "body-worn camera (records where its wearer is)",
    dash: "vehicle camera (records around the vehicle)",
    handheld: "handheld camera (records where it is used)",
};

const LT: Labels = Labels {
    lang: "lt",
    monitored: "Vykdomas vaizdo stebėjimas",
    controller: "Duomenų valdytojas",
    code: "Juridinio asmens kodas",
    contacts: "Kontaktai",
    dpo: "Duomenų apsaugos pareigūnas",
    purposes: "Tikslai",
    legal_basis: "Teisinis pagrindas",
    retention: "Saugojimo terminas",
    retention_days: "įrašai saugomi ne ilgiau kaip {} d.",
    processor: "Kameras valdo",
    read_more: "Daugiau informacijos ir kamerų sąrašas",
    register_title: "Vaizdo stebėjimo kamerų sąrašas",
    camera: "Kamera",
    zone: "Zona",
    area: "Stebima teritorija",
    not_recording: "neįrašo",
    no_cameras: "Stacionarių kamerų nėra; mobilieji įrašymo įrenginiai.",
    body: "liemenės kamera (įrašo ten, kur yra ją nešiojantis asmuo)",
    dash: "automobilio vaizdo registratorius (įrašo aplink automobilį)",
    handheld: "rankinė kamera (įrašo ten, kur naudojama)",
};

const LV: Labels = Labels {
    lang: "lv",
    monitored: "Notiek videonovērošana",
    controller: "Pārzinis",
    code: "Reģistrācijas numurs",
    contacts: "Kontakti",
    dpo: "Datu aizsardzības speciālists",
    purposes: "Mērķi",
    legal_basis: "Tiesiskais pamats",
    retention: "Glabāšanas termiņš",
    retention_days: "ieraksti tiek glabāti ne ilgāk kā {} dienas",
    processor: "Kameras apkalpo",
    read_more: "Vairāk informācijas un kameru saraksts",
    register_title: "Videonovērošanas kameru saraksts",
    camera: "Kamera",
    zone: "Zona",
    area: "Novērotā teritorija",
    not_recording: "neieraksta",
    no_cameras: "Stacionāru kameru nav; mobilās ierakstīšanas ierīces.",
    body: "ķermeņa kamera (ieraksta tur, kur atrodas tās nēsātājs)",
    dash: "transportlīdzekļa kamera (ieraksta ap transportlīdzekli)",
    handheld: "rokas kamera (ieraksta tur, kur to lieto)",
};

/// Everything printed on one zone's sign.
#[derive(Clone, Debug)]
pub struct Sign<'a> {
    pub zone: &'a Zone,
    pub controller: &'a Controller,
    /// Display names of the zone's cameras, in file order.
    pub cameras: Vec<&'a str>,
}

/// One row of the public camera register.
#[derive(Clone, Debug)]
pub struct RegisterEntry<'a> {
    pub name: &'a str,
    pub area: &'a str,
    pub zone: &'a Zone,
    pub controller: &'a Controller,
    pub enabled: bool,
    /// Set for a mobile camera (`[[device]]`); its `area` is then empty.
    pub kind: Option<DeviceKind>,
}

/// The signs, one per zone, in file order.
pub fn signs(config: &Config) -> Vec<Sign<'_>> {
    config
        .zones
        .iter()
        .map(|zone| Sign {
            zone,
            controller: config.zone_controller(zone),
            cameras: config
                .cameras
                .iter()
                .filter(|c| c.zone == zone.id)
                .map(|c| c.name.as_str())
                .collect(),
        })
        .collect()
}

/// The register, one entry per camera, in file order, then one per
/// mobile camera (device). A device's assignment (who wears it) is not
/// published.
pub fn register(config: &Config) -> Vec<RegisterEntry<'_>> {
    let devices = config.devices.iter().map(|d| {
        let zone = config
            .zone(&d.zone)
            .expect("a loaded configuration has every device's zone");
        RegisterEntry {
            name: &d.name,
            area: "",
            zone,
            controller: config.zone_controller(zone),
            enabled: true,
            kind: Some(d.kind),
        }
    });
    config
        .cameras
        .iter()
        .map(|c| {
            let zone = config
                .zone(&c.zone)
                .expect("a loaded configuration has every camera's zone");
            RegisterEntry {
                name: &c.name,
                area: &c.area,
                zone,
                controller: config.zone_controller(zone),
                enabled: c.enabled,
                kind: None,
            }
        })
        .chain(devices)
        .collect()
}

/// One generated file: its name (no directory) and contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub file_name: String,
    pub contents: String,
}

/// All documents: `sign-<zone>.html` and `.md` per zone, `signs.html` (every
/// sign, one per A4 page, for printing in one go), `register.html` and
/// `register.md`.
pub fn render(config: &Config, language: Language) -> Vec<Document> {
    let labels = language.labels();
    let signs = signs(config);
    let register = register(config);
    let mut docs = Vec::new();
    for sign in &signs {
        docs.push(Document {
            file_name: format!("sign-{}.html", sign.zone.id),
            contents: html::signs(std::slice::from_ref(sign), labels),
        });
        docs.push(Document {
            file_name: format!("sign-{}.md", sign.zone.id),
            contents: markdown::sign(sign, labels),
        });
    }
    docs.push(Document {
        file_name: "signs.html".into(),
        contents: html::signs(&signs, labels),
    });
    docs.push(Document {
        file_name: "register.html".into(),
        contents: html::register(&register, labels),
    });
    docs.push(Document {
        file_name: "register.md".into(),
        contents: markdown::register(&register, labels),
    });
    docs
}

/// Renders and writes every document into `dir` (created if missing).
/// Returns the paths written. Files are replaced whole; no fsync, as these
/// are regenerated at will and hold nothing that exists only here.
pub fn write(config: &Config, language: Language, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut written = Vec::new();
    for doc in render(config, language) {
        let path = dir.join(&doc.file_name);
        std::fs::write(&path, doc.contents).map_err(|e| Error::io("write", &path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// "kept no longer than N days" in the chosen language.
pub(crate) fn retention_text(labels: &Labels, days: u32) -> String {
    labels.retention_days.replace("{}", &days.to_string())
}

/// Where to read more: the controller's website, else its email (001 §40;
/// 004 §37.2).
pub(crate) fn read_more(controller: &Controller) -> &str {
    controller.website.as_deref().unwrap_or(&controller.email)
}
