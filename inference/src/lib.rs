#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`gpu`]: the process-wide device, pipeline cache and buffer pool, and the
//!   [`gpu::Engine`] a caller picks with [`gpu::Backend`].
//! - [`kernels`]: one module per kernel (`stft`, `hpss`, ...), WGSL beside Rust.
//! - [`audio`]: the planar PCM the kernels take and return.
//! - [`artifacts`]: the content-addressed store of inputs and outputs.
//! - [`attribution`]: energy shares as basis points summing to 10 000.
//! - [`credentials`]: Content Credentials (C2PA) on published outputs: the
//!   signing identity, the manifest, signing it in and verifying it.
//! - [`fingerprint`]: Chromaprint acoustic fingerprints of published outputs.
//! - [`pipeline`]: generation jobs and voice model training, each step an
//!   event in the log, and the replay of a step on the CPU twin.
//! - [`sample_catalog`]: synthesized multitrack songs for demos and tests.
//! - [`voice`]: voice models learned from an artist's licensed vocal stems,
//!   which drive [`voice::ddsp`] synthesis.
//! - [`spectrogram`]: log-magnitude spectrogram PNGs, to look at what a step did.

pub mod artifacts;
pub mod attribution;
pub mod audio;
pub mod credentials;
pub mod fingerprint;
pub mod gpu;
pub mod kernels;
pub mod onnx;
pub mod pipeline;
pub mod sample_catalog;
pub mod spectrogram;
pub mod transcribe;
pub mod voice;

pub use audio::Audio;
pub use gpu::{Backend, Engine};
