//! ONNX models without an ONNX runtime: a protobuf reader for the model
//! file ([`model`]) and a CPU forward pass ([`cpu`]) with opset-15
//! semantics for the operators Basic Pitch's network uses. The GPU pass
//! runs the same graph as WGSL kernels and is tested against this one.

pub mod cpu;
pub mod gpu;
pub mod model;
pub mod protobuf;
pub mod tensor;

pub use model::{Model, ModelError};
pub use tensor::{Data, Tensor};
