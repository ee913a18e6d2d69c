//! `[requests]`: the register of data-subject requests; each key absent
//! keeps its default from `config`.

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequests {
    max_window: Option<String>,
    personal_data_days: Option<u32>,
}

impl Builder<'_, '_> {
    pub(super) fn read_requests(&mut self) {
        let Some(raw) = self.section::<RawRequests>("requests") else {
            return;
        };
        let at = root().key("requests");
        self.requests.max_window = self.duration(
            &at.key("max_window"),
            raw.max_window.as_deref(),
            DEFAULT_REQUEST_MAX_WINDOW,
            REQUEST_MAX_WINDOW_RANGE,
        );
        if let Some(n) = raw.personal_data_days {
            let (lo, hi) = REQUEST_PERSONAL_DATA_DAYS_RANGE;
            if (lo..=hi).contains(&n) {
                self.requests.personal_data_days = n;
            } else {
                self.err(
                    &at.key("personal_data_days"),
                    format!(
                        "{n} is out of range; give {lo} to {hi} (days after a request is \
                         closed until the requester's name and contact are removed; default \
                         {DEFAULT_REQUEST_PERSONAL_DATA_DAYS})"
                    ),
                );
            }
        }
    }
}
