//! What every short GStreamer pipeline here needs: its elements by name,
//! a refused push as an error, and a stop however the function returns.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::{Error, Result};

/// The element `name` of `pipeline`, as a `T`.
pub(crate) fn by_name<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> Result<T> {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or_else(|| Error::internal(format!("the pipeline has no {name}")))
}

/// A push the pipeline refused, as an error.
pub(crate) fn flow(e: gst::FlowError) -> Error {
    Error::internal(format!("the pipeline refused a frame: {e:?}"))
}

/// Stops a pipeline however its function returns.
pub(crate) struct Stop(pub(crate) gst::Pipeline);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}
