//! `[[camera]]`: each camera's stream, zone, client and segment length, checked
//! against its zone (audio policy) and the other cameras (ids, URLs).

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::units::{check_camera_id, check_camera_url};

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: String,
    name: String,
    zone: String,
    url: String,
    credentials: Option<String>,
    transport: Option<Transport>,
    rtsp_client: Option<RtspClient>,
    audio: Option<bool>,
    segment: Option<String>,
    area: String,
    enabled: Option<bool>,
}

impl Builder<'_, '_> {
    pub(super) fn read_cameras(&mut self) {
        let zone_ids = self.peek_ids("zone");
        // Lowercased id -> where it was first defined: ids that differ only in
        // case would collide on a case-insensitive filesystem and confuse people.
        let mut seen: HashMap<String, (String, KeyPath)> = HashMap::new();
        let mut urls: HashMap<String, KeyPath> = HashMap::new();
        for at in self.elements(&root(), "camera") {
            let Some(raw) = self.src.de::<RawCamera>(&at, &mut self.errors) else {
                continue;
            };
            match check_camera_id(&raw.id) {
                Err(m) => self.err(&at.key("id"), m),
                Ok(()) => {
                    let folded = raw.id.to_ascii_lowercase();
                    if let Some((first_id, first)) = seen.get(&folded) {
                        let first_line = self.line(&first.key("id"));
                        let how = if *first_id == raw.id {
                            String::new()
                        } else {
                            format!(" as \"{first_id}\", which differs only in letter case")
                        };
                        self.err(
                            &at.key("id"),
                            format!(
                                "duplicate camera id \"{}\"; first defined at line {first_line} ({first}){how}; \
                                 camera ids must be unique",
                                raw.id
                            ),
                        );
                    } else {
                        seen.insert(folded, (raw.id.clone(), at.clone()));
                    }
                }
            }
            self.non_empty(
                &at.key("name"),
                &raw.name,
                "give the camera's display name, e.g. \"1A-Fojė-Pietinė\"",
            );
            if !zone_ids.contains(&raw.zone) {
                let m = format!(
                    "unknown zone \"{}\"; {}",
                    raw.zone,
                    self.zones_message(&zone_ids)
                );
                self.err(&at.key("zone"), m);
            }
            let credentials_key = raw.credentials.clone();
            if let Some(k) = &credentials_key
                && k.is_empty()
            {
                self.err(
                    &at.key("credentials"),
                    "is empty; name a [camera.KEY] entry of the secrets file, or remove it",
                );
            }
            let key_for_advice = credentials_key.as_deref().unwrap_or(&raw.id).to_owned();
            if let Err(m) = check_camera_url(&raw.url, &key_for_advice) {
                self.err(&at.key("url"), m);
            } else if let Some(first) = urls.get(&raw.url) {
                let first_line = self.line(first);
                self.warn(&at.key("url"), format!("same URL as {first} (line {first_line}); the stream would be recorded twice"));
            } else {
                urls.insert(raw.url.clone(), at.key("url"));
            }
            let transport = raw.transport.unwrap_or(DEFAULT_TRANSPORT);
            let rtsps = raw.url.to_ascii_lowercase().starts_with("rtsps:");
            let rtsp_client = match raw.rtsp_client {
                Some(RtspClient::Retina) if transport == Transport::Udp => {
                    self.err(
                        &at.key("rtsp_client"),
                        "rtsp_client = \"retina\" reads RTP over TCP only; set transport = \"tcp\", or \
                         rtsp_client = \"gstreamer\" for UDP",
                    );
                    RtspClient::Gstreamer
                }
                Some(RtspClient::Retina) if rtsps => {
                    self.err(
                        &at.key("rtsp_client"),
                        "rtsp_client = \"retina\" cannot read rtsps:// (TLS); set rtsp_client = \"gstreamer\"",
                    );
                    RtspClient::Gstreamer
                }
                client => client.unwrap_or(default_rtsp_client(transport, rtsps)),
            };
            let segment = self.duration(
                &at.key("segment"),
                raw.segment.as_deref(),
                DEFAULT_SEGMENT,
                (MIN_SEGMENT, MAX_SEGMENT),
            );
            let audio = raw.audio.unwrap_or(DEFAULT_CAMERA_AUDIO);
            if audio
                && let Some((zi, zone)) = self.zones.iter().find(|(_, z)| z.id == raw.zone)
                && zone.audio == AudioPolicy::Forbidden
            {
                let zone_at = root().key("zone").index(*zi);
                let m = format!(
                    "audio = true, but zone \"{}\" ({zone_at}, line {}) forbids sound; set audio = false, or set \
                     audio = \"allowed\" in that zone if its rules permit recording sound (001 §19)",
                    zone.id,
                    self.line(&zone_at)
                );
                self.err(&at.key("audio"), m);
            }
            self.non_empty(
                &at.key("area"),
                &raw.area,
                "describe what the camera watches, e.g. \"first-floor foyer, south entrance\"; it is published in \
                 the camera register (001 §8-9; 004 §6)",
            );
            let camera = Camera {
                id: raw.id,
                name: raw.name,
                zone: raw.zone,
                url: raw.url,
                credentials: None,
                transport,
                rtsp_client,
                audio,
                segment,
                area: raw.area,
                enabled: raw.enabled.unwrap_or(DEFAULT_CAMERA_ENABLED),
            };
            self.cameras.push(CameraEntry {
                index: index_of(&at),
                camera,
                credentials_key,
            });
        }
    }
}
