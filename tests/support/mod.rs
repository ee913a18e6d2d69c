//! Helpers shared by the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod api;
pub mod daemon;
pub mod index;
pub mod media;
pub mod relay;
pub mod s3;
pub mod tls;
pub mod webhook;
