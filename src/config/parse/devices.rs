//! `[[device]]`: mobile cameras (body, dash, handheld) whose footage arrives
//! as files. A device id names a directory and an index camera row, so it
//! follows the camera id rules and may not repeat a camera's id.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::units::check_camera_id;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: String,
    name: String,
    zone: String,
    kind: DeviceKind,
    serial: String,
    assigned_to: String,
    timezone: Option<String>,
    registered: Option<String>,
}

impl Builder<'_, '_> {
    pub(super) fn read_devices(&mut self) {
        let zone_ids = self.peek_ids("zone");
        let camera_ids = self.peek_ids("camera");
        let mut seen: HashMap<String, KeyPath> = HashMap::new();
        let mut serials: HashMap<String, KeyPath> = HashMap::new();
        for at in self.elements(&root(), "device") {
            let Some(raw) = self.src.de::<RawDevice>(&at, &mut self.errors) else {
                continue;
            };
            match check_camera_id(&raw.id) {
                Err(m) => self.err(&at.key("id"), m),
                Ok(()) => {
                    let folded = raw.id.to_ascii_lowercase();
                    if let Some(c) = camera_ids.iter().find(|c| c.to_ascii_lowercase() == folded) {
                        self.err(
                            &at.key("id"),
                            format!(
                                "\"{}\" is also the id of camera \"{c}\"; a device's footage is indexed \
                                 like a camera's, so give the device an id no camera has",
                                raw.id
                            ),
                        );
                    } else if let Some(first) = seen.get(&folded) {
                        let line = self.line(&first.key("id"));
                        self.err(
                            &at.key("id"),
                            format!(
                                "duplicate device id \"{}\"; first defined at line {line} ({first}); \
                                 device ids must be unique regardless of letter case",
                                raw.id
                            ),
                        );
                    } else {
                        seen.insert(folded, at.clone());
                    }
                }
            }
            self.non_empty(
                &at.key("name"),
                &raw.name,
                "give the device's display name, e.g. \"Body camera 07\"",
            );
            if !zone_ids.contains(&raw.zone) {
                let m = format!(
                    "unknown zone \"{}\"; {}",
                    raw.zone,
                    self.zones_message(&zone_ids)
                );
                self.err(&at.key("zone"), m);
            }
            if raw.serial.trim().is_empty() {
                self.err(
                    &at.key("serial"),
                    "is empty; give the serial number printed on the device (file names often carry it)",
                );
            } else if let Some(first) = serials.get(&raw.serial) {
                let line = self.line(first);
                self.err(
                    &at.key("serial"),
                    format!(
                        "serial \"{}\" is also that of {first} (line {line}); each device has its own",
                        raw.serial
                    ),
                );
            } else {
                serials.insert(raw.serial.clone(), at.key("serial"));
            }
            self.non_empty(
                &at.key("assigned_to"),
                &raw.assigned_to,
                "say who or what the device is assigned to, e.g. \"patrol officer 1043\" or \"vehicle LRA 512\"",
            );
            let tz_name = raw
                .timezone
                .clone()
                .unwrap_or_else(|| DEFAULT_DEVICE_TIMEZONE.to_owned());
            let timezone = match jiff::tz::TimeZone::get(&tz_name) {
                Ok(tz) => tz,
                Err(_) => {
                    self.err(
                        &at.key("timezone"),
                        format!(
                            "unknown time zone \"{tz_name}\"; use the IANA name of the zone the device's \
                             clock is set to, such as \"Europe/Vilnius\", or \"UTC\" (the default)"
                        ),
                    );
                    jiff::tz::TimeZone::UTC
                }
            };
            let registered = raw.registered.as_deref().and_then(|r| {
                match r.parse::<jiff::civil::Date>() {
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.err(
                            &at.key("registered"),
                            format!(
                                "\"{r}\" is not a date; write the day the device was put into service as \
                                 \"YYYY-MM-DD\", e.g. \"2026-03-01\""
                            ),
                        );
                        None
                    }
                }
            });
            self.devices.push(Device {
                id: raw.id,
                name: raw.name,
                zone: raw.zone,
                kind: raw.kind,
                serial: raw.serial,
                assigned_to: raw.assigned_to,
                timezone,
                timezone_name: tz_name,
                registered,
            });
        }
    }
}
