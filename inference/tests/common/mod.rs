//! Helpers shared by the inference tests.

pub mod flac;
