//! The Basic Pitch network file: read from disk, refused unless its SHA-256
//! is the published file's, then parsed and run window by window.

use crate::gpu::Engine;
use crate::onnx::gpu as onnx_gpu;
use crate::onnx::{cpu, Model, ModelError, Tensor};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What the network is called in events and output.
pub const MODEL_NAME: &str = "basic-pitch icassp_2022 nmp.onnx";
/// The id steps and its `model.registered` event name it by.
pub const MODEL_ID: &str = "basic-pitch-icassp-2022";
/// Where the file comes from and under which terms, as its
/// `model.registered` event records them (`models/basic-pitch/README.md`).
pub const MODEL_LICENCE: &str = "Apache-2.0";
pub const MODEL_AUTHORS: &str =
    "Spotify AB (Bittner, Bosch, Rubinstein, Meseguer-Brocal and Ewert, ICASSP 2022)";
pub const MODEL_SOURCE_PACKAGE: &str = "pypi:basic-pitch";
pub const MODEL_SOURCE_VERSION: &str = "0.4.0";
pub const MODEL_SOURCE_PATH: &str = "basic_pitch/saved_models/icassp_2022/nmp.onnx";
/// The SHA-256 of `nmp.onnx` in the `basic-pitch` 0.4.0 wheel.
pub const MODEL_SHA256: &str = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec";
/// Where the repository keeps the file (`models/basic-pitch/`, with its
/// licence and notice).
pub const VENDORED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/basic-pitch/nmp.onnx");

/// Samples in one window of the network's input, at 22,050 Hz.
pub const WINDOW_SAMPLES: usize = 43_844;
/// Frames of each output per window.
pub const WINDOW_FRAMES: usize = 172;
/// Bins of the note and onset outputs: the 88 piano keys, A0 to C8.
pub const NOTE_BINS: usize = 88;
/// Bins of the contour output: three per semitone.
pub const CONTOUR_BINS: usize = 264;

/// Why the model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read the model file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not Basic Pitch's nmp.onnx: its SHA-256 is {found}, the published file's is {MODEL_SHA256} (scripts/fetch-basic-pitch-model restores it)", .path.display())]
    NotTheModel { path: PathBuf, found: String },
    #[error("the model artifact is not Basic Pitch's nmp.onnx: its SHA-256 is {found}, the published file's is {MODEL_SHA256}")]
    NotTheModelArtifact { found: String },
    #[error(transparent)]
    Parse(#[from] ModelError),
    #[error("the model's graph is not Basic Pitch's: {0}")]
    Graph(String),
    #[error("the network failed: {0}")]
    Run(#[from] cpu::RunError),
    #[error("the network failed on the GPU: {0}")]
    Gpu(#[from] onnx_gpu::GpuRunError),
}

/// The three outputs of a batch of windows, each `[windows, 172, bins]`
/// row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOutputs {
    pub note: Vec<f32>,
    pub onset: Vec<f32>,
    pub contour: Vec<f32>,
}

/// The network, checked and parsed.
#[derive(Debug, Clone)]
pub struct BasicPitch {
    model: Model,
    note: usize,
    onset: usize,
    contour: usize,
}

impl BasicPitch {
    /// Reads the model at `path`, refusing any file that is not byte for
    /// byte the published one before a byte of it is parsed.
    pub fn load(path: &Path) -> Result<BasicPitch, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|source| ModelFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        BasicPitch::from_bytes(&bytes).map_err(|error| match error {
            ModelFileError::NotTheModelArtifact { found } => ModelFileError::NotTheModel {
                path: path.to_owned(),
                found,
            },
            other => other,
        })
    }

    /// Parses the model from its bytes (an artifact the log names by hash),
    /// refusing any that are not the published file's before parsing.
    pub fn from_bytes(bytes: &[u8]) -> Result<BasicPitch, ModelFileError> {
        let found = hex::encode(Sha256::digest(bytes));
        if found != MODEL_SHA256 {
            return Err(ModelFileError::NotTheModelArtifact { found });
        }
        let model = Model::parse(bytes)?;
        let position = |name: &str| {
            model
                .outputs
                .iter()
                .position(|o| o == name)
                .ok_or_else(|| ModelFileError::Graph(format!("no output {name}")))
        };
        // tf2onnx's names: :1 is the note posteriorgram, :2 the onsets and
        // :0 the contour (the Keras model's "note", "onset", "contour").
        let (note, onset, contour) = (
            position("StatefulPartitionedCall:1")?,
            position("StatefulPartitionedCall:2")?,
            position("StatefulPartitionedCall:0")?,
        );
        if model.inputs.len() != 1 {
            return Err(ModelFileError::Graph(format!(
                "{} inputs, not one",
                model.inputs.len()
            )));
        }
        Ok(BasicPitch {
            model,
            note,
            onset,
            contour,
        })
    }

    /// The model the repository ships ([`VENDORED_PATH`]).
    pub fn load_vendored() -> Result<BasicPitch, ModelFileError> {
        BasicPitch::load(Path::new(VENDORED_PATH))
    }

    /// The parsed graph.
    pub fn graph(&self) -> &Model {
        &self.model
    }

    /// Runs the network on `windows` windows of [`WINDOW_SAMPLES`] samples
    /// each, back to back in `samples`: the WGSL kernels on a GPU engine,
    /// the CPU pass on the CPU.
    pub fn run(
        &self,
        engine: &Engine,
        samples: &[f32],
        windows: usize,
    ) -> Result<WindowOutputs, ModelFileError> {
        debug_assert_eq!(samples.len(), windows * WINDOW_SAMPLES);
        let input = Tensor::f32(vec![windows, WINDOW_SAMPLES, 1], samples.to_vec());
        let inputs = vec![(self.model.inputs[0].clone(), input)];
        let mut outputs = match engine {
            Engine::Cpu => cpu::run(&self.model, inputs)?,
            Engine::Gpu(gpu) => onnx_gpu::run(gpu, &self.model, inputs)?,
        };
        let mut take = |index: usize, bins: usize| -> Result<Vec<f32>, ModelFileError> {
            let tensor = std::mem::replace(&mut outputs[index], Tensor::f32(vec![0], vec![]));
            if tensor.shape != [windows, WINDOW_FRAMES, bins] {
                return Err(ModelFileError::Graph(format!(
                    "an output of shape {:?}, not [{windows}, {WINDOW_FRAMES}, {bins}]",
                    tensor.shape
                )));
            }
            match tensor.data {
                crate::onnx::Data::F32(values) => Ok(values),
                other => Err(ModelFileError::Graph(format!(
                    "a {} output",
                    other.type_name()
                ))),
            }
        };
        Ok(WindowOutputs {
            note: take(self.note, NOTE_BINS)?,
            onset: take(self.onset, NOTE_BINS)?,
            contour: take(self.contour, CONTOUR_BINS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_model_loads_and_a_changed_byte_is_refused() {
        let model = BasicPitch::load_vendored().unwrap();
        assert_eq!(model.graph().producer, "tf2onnx");
        let mut bytes = std::fs::read(VENDORED_PATH).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let dir = tempfile::tempdir().unwrap();
        let corrupted = dir.path().join("nmp.onnx");
        std::fs::write(&corrupted, &bytes).unwrap();
        let error = BasicPitch::load(&corrupted).unwrap_err();
        assert!(
            matches!(error, ModelFileError::NotTheModel { .. }),
            "{error}"
        );
        // A foreign file, even a well-formed ONNX one, is refused alike.
        let foreign = dir.path().join("foreign.onnx");
        std::fs::write(&foreign, b"\x08\x08\x3a\x00").unwrap();
        let error = BasicPitch::load(&foreign).unwrap_err().to_string();
        assert!(error.contains("is not Basic Pitch's nmp.onnx"), "{error}");
    }
}
