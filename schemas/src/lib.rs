#![doc = include_str!("../README.md")]

pub mod calendar_date;
pub mod catalog;
pub mod content_hash;
pub mod generation;
pub mod licence;
pub mod reserved;
pub mod usage;

pub use content_hash::ContentHash;
