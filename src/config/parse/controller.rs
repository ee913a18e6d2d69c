//! `[controller]` and a zone's own `[zone.controller]`: who answers for the
//! footage, as the notice publishes it.

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawController {
    name: String,
    registration_code: String,
    address: String,
    phone: Option<String>,
    email: String,
    website: Option<String>,
    dpo: RawDpo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDpo {
    name: Option<String>,
    email: String,
    phone: Option<String>,
}

impl Builder<'_, '_> {
    pub(super) fn read_controller(&mut self) {
        let at = root().key("controller");
        if self.src.get(&at).is_none() {
            self.err(
                &at,
                "missing [controller] section: the data controller's name, registration_code, address, \
                 email and dpo contact are printed on public notices and export manifests (001 §21; 004 §23)",
            );
            return;
        }
        if let Some(raw) = self.section::<RawController>("controller") {
            self.controller = Some(self.controller(raw, &at));
        }
    }

    pub(super) fn controller(&mut self, raw: RawController, at: &KeyPath) -> Controller {
        self.non_empty(
            &at.key("name"),
            &raw.name,
            "give the controller's legal name",
        );
        self.non_empty(
            &at.key("registration_code"),
            &raw.registration_code,
            "give the registry code",
        );
        self.non_empty(&at.key("address"), &raw.address, "give the postal address");
        self.email(&at.key("email"), &raw.email);
        self.email(&at.key("dpo").key("email"), &raw.dpo.email);
        if let Some(w) = &raw.website
            && !(w.starts_with("https://") || w.starts_with("http://"))
        {
            self.err(
                &at.key("website"),
                format!("\"{w}\" must start with https:// (or http://)"),
            );
        }
        Controller {
            name: raw.name,
            registration_code: raw.registration_code,
            address: raw.address,
            phone: raw.phone,
            email: raw.email,
            website: raw.website,
            dpo: Dpo {
                name: raw.dpo.name,
                email: raw.dpo.email,
                phone: raw.dpo.phone,
            },
        }
    }

    pub(super) fn email(&mut self, at: &KeyPath, email: &str) {
        let ok = email
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.'))
            && !email.contains(char::is_whitespace);
        if !ok {
            self.err(
                at,
                format!("\"{email}\" is not an email address; e.g. \"dap@example.lt\""),
            );
        }
    }
}
