//! `README.txt` of an export package: for a recipient who has never heard
//! of Custos.

use super::manifest::{MANIFEST_FILE, OutputFile, SIGNATURE_FILE};

pub(super) fn text(camera: &str, clips: &[OutputFile], fingerprint: &str) -> String {
    let mut list = String::new();
    for c in clips {
        list.push_str(&format!(
            "  {}  ({} to {}, {} bytes)\n",
            c.name,
            c.from.as_ref().map_or("", |i| i.utc.as_str()),
            c.to.as_ref().map_or("", |i| i.utc.as_str()),
            c.bytes
        ));
    }
    let split = if clips.len() > 1 {
        "\nThe recording has gaps in the requested period, so it is split into one\n\
         file per continuous stretch; manifest.json lists each gap (\"gaps\").\n"
    } else {
        ""
    };
    format!(
        "VIDEO SURVEILLANCE EXPORT\n\
         =========================\n\n\
         This directory holds footage of camera \"{camera}\" disclosed to you by the\n\
         data controller named in {MANIFEST_FILE}, for the purpose and under the\n\
         legal basis stated there. It is personal data: keep it secure, use it only\n\
         for that purpose, and destroy it when the purpose is fulfilled.\n\n\
         Files\n-----\n{list}{split}\
         \n  {MANIFEST_FILE}  who exported what, when, for whom and why; the exact\n\
         \x20                times (UTC and local); the SHA-256 of every file.\n\
         \x20 {SIGNATURE_FILE}   Ed25519 signature of {MANIFEST_FILE} by the recording server.\n\n\
         How to play\n-----------\n\
         The video files are standard MP4 (H.264/H.265, with audio when it was\n\
         recorded), copied from the recording without re-encoding. They open in\n\
         VLC, ffplay, mpv and web browsers. Recorded times are in {MANIFEST_FILE}\n\
         (\"files\": \"from\"/\"to\").\n\n\
         How to verify\n-------------\n\
         1. With Custos:  custosctl verify <this directory> [--key <public key>]\n\
         2. By hand: compute the SHA-256 of each file (sha256sum FILE) and compare\n\
         \x20  it with {MANIFEST_FILE}; check the Ed25519 signature in {SIGNATURE_FILE}\n\
         \x20  (line \"ed25519\", hex) over the exact bytes of {MANIFEST_FILE} with the\n\
         \x20  public key given in it (\"public_key\").\n\
         The signing key's fingerprint is {fingerprint}. Ask the controller to\n\
         confirm it by a separate channel: a match proves the package is the one\n\
         the recording server produced, unaltered.\n"
    )
}
