//! An ONNX model (<https://onnx.ai/onnx/repo-docs/IR.html>) read from its
//! protobuf bytes: the graph's nodes in file order, its initializers as
//! tensors, and its inputs and outputs. Only what a forward pass needs is
//! kept; training info, metadata and value types are skipped.

use super::protobuf::{packed_varints, Fields, Value, WireError};
use super::tensor::{Data, Tensor};
use std::collections::HashMap;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model is not a well-formed ONNX protobuf: {0}")]
    Wire(#[from] WireError),
    #[error("the model has no graph")]
    NoGraph,
    #[error("tensor {name:?}: {message}")]
    Tensor { name: String, message: String },
    #[error("node {node:?} attribute {name:?}: {message}")]
    Attribute {
        node: String,
        name: String,
        message: String,
    },
    #[error(
        "the model needs default-domain opset {found}; this reader implements opset {supported}"
    )]
    Opset { found: i64, supported: i64 },
}

/// The default-domain opset whose operator semantics the CPU and GPU
/// forward passes implement.
pub const OPSET: i64 = 15;

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Float(f32),
    Int(i64),
    Text(String),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Tensor(Tensor),
}

/// One operator application.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op_type: String,
    /// Input value names; an empty name is an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: HashMap<String, Attribute>,
}

impl Node {
    /// An integer list attribute, or `default` when absent.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attributes.get(name) {
            Some(Attribute::Ints(values)) => Some(values),
            _ => None,
        }
    }

    /// An integer attribute, if present.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attributes.get(name) {
            Some(Attribute::Int(value)) => Some(*value),
            _ => None,
        }
    }

    /// A text attribute, if present.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.attributes.get(name) {
            Some(Attribute::Text(value)) => Some(value),
            _ => None,
        }
    }
}

/// A model's graph, ready to run.
#[derive(Debug, Clone)]
pub struct Model {
    /// Nodes in file order, which ONNX requires to be topological.
    pub nodes: Vec<Node>,
    pub initializers: HashMap<String, Tensor>,
    /// Graph inputs that are not initializers, in order.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub producer: String,
}

impl Model {
    /// Reads a model from its `.onnx` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Model, ModelError> {
        let mut graph = None;
        let mut producer = String::new();
        for field in Fields::new(bytes) {
            match field? {
                (2, Value::Bytes(b)) => producer = String::from_utf8_lossy(b).into_owned(),
                (7, Value::Bytes(b)) => graph = Some(b),
                (8, Value::Bytes(b)) => check_opset(b)?,
                _ => {}
            }
        }
        let graph = graph.ok_or(ModelError::NoGraph)?;
        let mut model = Model {
            nodes: Vec::new(),
            initializers: HashMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            producer,
        };
        let mut declared_inputs = Vec::new();
        for field in Fields::new(graph) {
            match field? {
                (1, Value::Bytes(b)) => model.nodes.push(parse_node(b)?),
                (5, Value::Bytes(b)) => {
                    let (name, tensor) = parse_tensor(b)?;
                    model.initializers.insert(name, tensor);
                }
                (11, Value::Bytes(b)) => declared_inputs.push(value_info_name(b)?),
                (12, Value::Bytes(b)) => model.outputs.push(value_info_name(b)?),
                _ => {}
            }
        }
        model.inputs = declared_inputs
            .into_iter()
            .filter(|name| !model.initializers.contains_key(name))
            .collect();
        Ok(model)
    }
}

fn check_opset(bytes: &[u8]) -> Result<(), ModelError> {
    let (mut domain, mut version) = (String::new(), 0i64);
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(b)) => domain = String::from_utf8_lossy(b).into_owned(),
            (2, Value::Varint(v)) => version = v as i64,
            _ => {}
        }
    }
    // Other domains (ai.onnx.ml) only matter if a node uses them, and a
    // node of an unknown op is refused when the graph runs.
    if (domain.is_empty() || domain == "ai.onnx") && version > OPSET {
        return Err(ModelError::Opset {
            found: version,
            supported: OPSET,
        });
    }
    Ok(())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn value_info_name(bytes: &[u8]) -> Result<String, ModelError> {
    for field in Fields::new(bytes) {
        if let (1, Value::Bytes(b)) = field? {
            return Ok(text(b));
        }
    }
    Ok(String::new())
}

fn parse_node(bytes: &[u8]) -> Result<Node, ModelError> {
    let mut node = Node {
        op_type: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        attributes: HashMap::new(),
    };
    let mut attributes = Vec::new();
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(b)) => node.inputs.push(text(b)),
            (2, Value::Bytes(b)) => node.outputs.push(text(b)),
            (4, Value::Bytes(b)) => node.op_type = text(b),
            (5, Value::Bytes(b)) => attributes.push(b),
            _ => {}
        }
    }
    for bytes in attributes {
        let (name, value) = parse_attribute(bytes, &node)?;
        node.attributes.insert(name, value);
    }
    Ok(node)
}

/// AttributeProto.AttributeType values.
const ATTRIBUTE_FLOAT: u64 = 1;
const ATTRIBUTE_INT: u64 = 2;
const ATTRIBUTE_STRING: u64 = 3;
const ATTRIBUTE_TENSOR: u64 = 4;
const ATTRIBUTE_FLOATS: u64 = 6;
const ATTRIBUTE_INTS: u64 = 7;

fn parse_attribute(bytes: &[u8], node: &Node) -> Result<(String, Attribute), ModelError> {
    let (mut name, mut kind) = (String::new(), 0u64);
    let (mut float, mut int, mut string, mut tensor) = (0f32, 0i64, Vec::new(), None);
    let (mut floats, mut ints) = (Vec::new(), Vec::new());
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(b)) => name = text(b),
            (2, Value::Fixed32(bits)) => float = f32::from_bits(bits),
            (3, Value::Varint(v)) => int = v as i64,
            (4, Value::Bytes(b)) => string = b.to_vec(),
            (5, Value::Bytes(b)) => tensor = Some(parse_tensor(b)?.1),
            (7, Value::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (7, Value::Bytes(b)) => floats.extend(packed_f32(b)),
            (8, Value::Varint(v)) => ints.push(v as i64),
            (8, Value::Bytes(b)) => ints.extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (20, Value::Varint(v)) => kind = v,
            _ => {}
        }
    }
    let value = match kind {
        ATTRIBUTE_FLOAT => Attribute::Float(float),
        ATTRIBUTE_INT => Attribute::Int(int),
        ATTRIBUTE_STRING => Attribute::Text(String::from_utf8_lossy(&string).into_owned()),
        ATTRIBUTE_TENSOR => Attribute::Tensor(tensor.ok_or_else(|| ModelError::Attribute {
            node: node.op_type.clone(),
            name: name.clone(),
            message: "a tensor attribute without a tensor".into(),
        })?),
        ATTRIBUTE_FLOATS => Attribute::Floats(floats),
        ATTRIBUTE_INTS => Attribute::Ints(ints),
        other => {
            return Err(ModelError::Attribute {
                node: node.op_type.clone(),
                name,
                message: format!("attribute type {other} is not supported"),
            })
        }
    };
    Ok((name, value))
}

fn packed_f32(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
}

/// TensorProto.DataType values this reader takes.
const FLOAT: u64 = 1;
const INT32: u64 = 6;
const INT64: u64 = 7;
const BOOL: u64 = 9;

fn parse_tensor(bytes: &[u8]) -> Result<(String, Tensor), ModelError> {
    let (mut name, mut dims, mut data_type) = (String::new(), Vec::new(), 0u64);
    let (mut raw, mut floats, mut ints, mut external) = (None, Vec::new(), Vec::new(), false);
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Varint(v)) => dims.push(v as i64),
            (1, Value::Bytes(b)) => dims.extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (2, Value::Varint(v)) => data_type = v,
            (4, Value::Bytes(b)) => floats.extend(packed_f32(b)),
            (4, Value::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            // int32_data (also bool) and int64_data, both varints.
            (5 | 7, Value::Bytes(b)) => {
                ints.extend(packed_varints(b)?.into_iter().map(|v| v as i64))
            }
            (5 | 7, Value::Varint(v)) => ints.push(v as i64),
            (8, Value::Bytes(b)) => name = text(b),
            (9, Value::Bytes(b)) => raw = Some(b),
            (14, Value::Varint(1)) => external = true,
            _ => {}
        }
    }
    let bad = |message: String| ModelError::Tensor {
        name: name.clone(),
        message,
    };
    if external {
        return Err(bad(
            "its data is in an external file, which is not read".into()
        ));
    }
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} is negative"))))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad("its element count overflows".into()))?;
    let data = match (data_type, raw) {
        (FLOAT, Some(raw)) => Data::F32(packed_f32(raw).collect()),
        (FLOAT, None) => Data::F32(floats),
        (INT64, Some(raw)) => Data::I64(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ),
        (INT32, Some(raw)) => Data::I64(
            raw.chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
        ),
        (INT64 | INT32, None) => Data::I64(ints),
        (BOOL, Some(raw)) => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        (BOOL, None) => Data::Bool(ints.iter().map(|&b| b != 0).collect()),
        (other, _) => return Err(bad(format!("data type {other} is not supported"))),
    };
    if data.len() != count {
        return Err(bad(format!(
            "it holds {} elements; its shape {shape:?} needs {count}",
            data.len()
        )));
    }
    Ok((name.clone(), Tensor { shape, data }))
}
