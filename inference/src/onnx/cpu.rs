//! The CPU forward pass of an ONNX graph: each node in file order, with
//! ONNX opset-15 semantics, in plain Rust. It implements the operators
//! Basic Pitch's graph uses and refuses any other by name. Values are
//! dropped after their last use, so memory holds the live tensors only.

use super::model::{Model, Node};
use super::tensor::{map_offsets, strides, Data, Tensor};
use std::collections::HashMap;

/// Why a forward pass stopped.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    #[error("the graph input {0:?} was not given")]
    MissingInput(String),
    #[error("{0:?} was given but is not an input of the graph")]
    UnknownInput(String),
    #[error("node {index} ({op}) reads {value:?}, which no earlier node or initializer defines")]
    Undefined {
        index: usize,
        op: String,
        value: String,
    },
    #[error("node {index} ({op}): {message}")]
    Op {
        index: usize,
        op: String,
        message: String,
    },
}

/// The operators [`run`] implements.
pub const OPERATORS: &[&str] = &[
    "Add",
    "Cast",
    "Concat",
    "Conv",
    "Div",
    "Equal",
    "Log",
    "Mul",
    "Neg",
    "Pad",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Sqrt",
    "Sub",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// Runs `model` on `inputs` (graph input name, tensor) and returns its
/// outputs in the graph's order.
pub fn run(model: &Model, inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>, RunError> {
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    for (name, tensor) in inputs {
        let Some(input) = model.inputs.iter().find(|i| **i == name) else {
            return Err(RunError::UnknownInput(name));
        };
        values.insert(input.as_str(), tensor);
    }
    if let Some(missing) = model
        .inputs
        .iter()
        .find(|i| !values.contains_key(i.as_str()))
    {
        return Err(RunError::MissingInput(missing.clone()));
    }
    // The last node that reads each value; graph outputs are kept.
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (index, node) in model.nodes.iter().enumerate() {
        for input in &node.inputs {
            last_use.insert(input.as_str(), index);
        }
    }
    for output in &model.outputs {
        last_use.insert(output.as_str(), usize::MAX);
    }
    for (index, node) in model.nodes.iter().enumerate() {
        let op_error = |message: String| RunError::Op {
            index,
            op: node.op_type.clone(),
            message,
        };
        let args = node
            .inputs
            .iter()
            .map(|name| {
                if name.is_empty() {
                    return Ok(None);
                }
                values
                    .get(name.as_str())
                    .or_else(|| model.initializers.get(name))
                    .map(Some)
                    .ok_or_else(|| RunError::Undefined {
                        index,
                        op: node.op_type.clone(),
                        value: name.clone(),
                    })
            })
            .collect::<Result<Vec<Option<&Tensor>>, RunError>>()?;
        let outputs = apply(node, &args).map_err(op_error)?;
        for input in &node.inputs {
            if last_use.get(input.as_str()) == Some(&index) {
                values.remove(input.as_str());
            }
        }
        for (name, tensor) in node.outputs.iter().zip(outputs) {
            values.insert(name.as_str(), tensor);
        }
    }
    model
        .outputs
        .iter()
        .map(|name| {
            values
                .remove(name.as_str())
                .ok_or_else(|| RunError::MissingInput(name.clone()))
        })
        .collect()
}

type OpResult = Result<Vec<Tensor>, String>;

pub(super) fn apply(node: &Node, args: &[Option<&Tensor>]) -> OpResult {
    let arg = |i: usize| -> Result<&Tensor, String> {
        args.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {i} is missing"))
    };
    let one = |t: Tensor| Ok(vec![t]);
    match node.op_type.as_str() {
        "Neg" => one(unary(arg(0)?, |x| -x)?),
        "Relu" => one(unary(arg(0)?, |x| x.max(0.0))?),
        "Sigmoid" => one(unary(arg(0)?, sigmoid)?),
        "Sqrt" => one(unary(arg(0)?, f32::sqrt)?),
        "Log" => one(unary(arg(0)?, f32::ln)?),
        "Add" => one(binary(arg(0)?, arg(1)?, |a, b| a + b)?),
        "Sub" => one(binary(arg(0)?, arg(1)?, |a, b| a - b)?),
        "Mul" => one(binary(arg(0)?, arg(1)?, |a, b| a * b)?),
        "Div" => one(binary(arg(0)?, arg(1)?, |a, b| a / b)?),
        "Equal" => one(equal(arg(0)?, arg(1)?)?),
        "Where" => one(select(arg(0)?, arg(1)?, arg(2)?)?),
        "Reshape" => one(reshape(arg(0)?, arg(1)?.ints()?)?),
        "Unsqueeze" => one(unsqueeze(arg(0)?, arg(1)?.ints()?)?),
        "Transpose" => one(transpose(arg(0)?, node.ints("perm"))?),
        "Concat" => {
            let tensors = args.iter().map(|a| a.ok_or("a missing input".to_string()));
            one(concat(
                &tensors.collect::<Result<Vec<_>, _>>()?,
                node.int("axis").ok_or("no axis")?,
            )?)
        }
        "Slice" => one(slice(
            arg(0)?,
            arg(1)?.ints()?,
            arg(2)?.ints()?,
            args.get(3)
                .copied()
                .flatten()
                .map(Tensor::ints)
                .transpose()?,
            args.get(4)
                .copied()
                .flatten()
                .map(Tensor::ints)
                .transpose()?,
        )?),
        "Pad" => {
            let fill = match args.get(2).copied().flatten() {
                Some(t) => *t.floats()?.first().ok_or("an empty pad value")?,
                None => 0.0,
            };
            one(pad(
                arg(0)?,
                arg(1)?.ints()?,
                node.text("mode").unwrap_or("constant"),
                fill,
            )?)
        }
        "Conv" => one(conv(
            node,
            arg(0)?,
            arg(1)?,
            args.get(2).copied().flatten(),
        )?),
        "ReduceSum" => {
            let axes = args
                .get(1)
                .copied()
                .flatten()
                .map(Tensor::ints)
                .transpose()?;
            let noop = node.int("noop_with_empty_axes").unwrap_or(0) == 1;
            if noop && axes.is_none_or(|a| a.is_empty()) {
                return one(arg(0)?.clone());
            }
            one(reduce(arg(0)?, axes, keepdims(node), 0.0, |a, b| a + b)?)
        }
        "ReduceMin" => one(reduce(
            arg(0)?,
            node.ints("axes"),
            keepdims(node),
            f32::INFINITY,
            f32::min,
        )?),
        "ReduceMax" => one(reduce(
            arg(0)?,
            node.ints("axes"),
            keepdims(node),
            f32::NEG_INFINITY,
            f32::max,
        )?),
        "Shape" => {
            let t = arg(0)?;
            one(Tensor::i64(
                vec![t.shape.len()],
                t.shape.iter().map(|&d| d as i64).collect(),
            ))
        }
        "Cast" => one(cast(arg(0)?, node.int("to").ok_or("no target type")?)?),
        other => Err(format!(
            "operator {other} is not implemented (the CPU pass implements {})",
            OPERATORS.join(", ")
        )),
    }
}

fn keepdims(node: &Node) -> bool {
    node.int("keepdims").unwrap_or(1) == 1
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn unary(t: &Tensor, f: impl Fn(f32) -> f32) -> Result<Tensor, String> {
    Ok(Tensor::f32(
        t.shape.clone(),
        t.floats()?.iter().map(|&x| f(x)).collect(),
    ))
}

/// The numpy-style broadcast of two shapes.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// For each element of `out`, the offset in a tensor of `shape` that
/// broadcasts to it.
fn broadcast_offsets(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let skip = out.len() - shape.len();
    let own = strides(shape);
    let step: Vec<usize> = (0..out.len())
        .map(|i| {
            if i < skip || shape[i - skip] == 1 {
                0
            } else {
                own[i - skip]
            }
        })
        .collect();
    map_offsets(out, |index| {
        Some(index.iter().zip(&step).map(|(i, s)| i * s).sum())
    })
    .into_iter()
    .map(Option::unwrap)
    .collect()
}

fn binary(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Result<Tensor, String> {
    let (x, y) = (a.floats()?, b.floats()?);
    if a.shape == b.shape {
        return Ok(Tensor::f32(
            a.shape.clone(),
            x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect(),
        ));
    }
    if y.len() == 1 {
        let q = y[0];
        let shape = broadcast_shape(&a.shape, &b.shape)?;
        if shape == a.shape {
            return Ok(Tensor::f32(shape, x.iter().map(|&p| f(p, q)).collect()));
        }
    }
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    let (ia, ib) = (
        broadcast_offsets(&a.shape, &shape),
        broadcast_offsets(&b.shape, &shape),
    );
    let data = ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect();
    Ok(Tensor::f32(shape, data))
}

fn equal(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    let (ia, ib) = (
        broadcast_offsets(&a.shape, &shape),
        broadcast_offsets(&b.shape, &shape),
    );
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => ia.iter().zip(&ib).map(|(&i, &j)| x[i] == y[j]).collect(),
        (Data::I64(x), Data::I64(y)) => ia.iter().zip(&ib).map(|(&i, &j)| x[i] == y[j]).collect(),
        (x, y) => {
            return Err(format!(
                "cannot compare {} with {}",
                x.type_name(),
                y.type_name()
            ))
        }
    };
    Ok(Tensor {
        shape,
        data: Data::Bool(data),
    })
}

fn select(condition: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    let Data::Bool(c) = &condition.data else {
        return Err("the condition is not bool".into());
    };
    let shape = broadcast_shape(&broadcast_shape(&condition.shape, &x.shape)?, &y.shape)?;
    let (ic, ix, iy) = (
        broadcast_offsets(&condition.shape, &shape),
        broadcast_offsets(&x.shape, &shape),
        broadcast_offsets(&y.shape, &shape),
    );
    let (xs, ys) = (x.floats()?, y.floats()?);
    let data = (0..ic.len())
        .map(|k| if c[ic[k]] { xs[ix[k]] } else { ys[iy[k]] })
        .collect();
    Ok(Tensor::f32(shape, data))
}

fn reshape(t: &Tensor, target: &[i64]) -> Result<Tensor, String> {
    Ok(Tensor {
        shape: reshaped(&t.shape, target)?,
        data: t.data.clone(),
    })
}

/// The shape Reshape gives a tensor of `shape` for `target`: 0 keeps the
/// input's dimension, one -1 takes what is left.
pub(super) fn reshaped(shape: &[usize], target: &[i64]) -> Result<Vec<usize>, String> {
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            0 => out.push(*shape.get(i).ok_or("a 0 beyond the input's rank")?),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            d if d > 0 => out.push(d as usize),
            d => return Err(format!("dimension {d} in the target shape")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || count % known != 0 {
            return Err(format!("{count} elements do not reshape to {target:?}"));
        }
        out[i] = count / known;
    }
    if out.iter().product::<usize>() != count {
        return Err(format!(
            "{count} elements (shape {shape:?}) do not reshape to {target:?}"
        ));
    }
    Ok(out)
}

/// An axis given relative to `rank`, negative counting from the end.
fn axis_of(axis: i64, rank: usize) -> Result<usize, String> {
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    if (0..rank as i64).contains(&resolved) {
        Ok(resolved as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

fn unsqueeze(t: &Tensor, axes: &[i64]) -> Result<Tensor, String> {
    Ok(Tensor {
        shape: unsqueezed(&t.shape, axes)?,
        data: t.data.clone(),
    })
}

/// `shape` with a dimension of 1 inserted at each of `axes` (of the
/// result's rank).
pub(super) fn unsqueezed(shape: &[usize], axes: &[i64]) -> Result<Vec<usize>, String> {
    let rank = shape.len() + axes.len();
    let mut inserted = axes
        .iter()
        .map(|&a| axis_of(a, rank))
        .collect::<Result<Vec<_>, _>>()?;
    inserted.sort_unstable();
    let mut dims = shape.iter();
    Ok((0..rank)
        .map(|i| {
            if inserted.binary_search(&i).is_ok() {
                1
            } else {
                *dims.next().unwrap()
            }
        })
        .collect())
}

fn transpose(t: &Tensor, perm: Option<&[i64]>) -> Result<Tensor, String> {
    let rank = t.shape.len();
    let perm: Vec<usize> = match perm {
        Some(p) => p
            .iter()
            .map(|&a| axis_of(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(format!("perm {perm:?} is not a permutation of rank {rank}"));
    }
    let own = strides(&t.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let step: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
    let offsets = map_offsets(&shape, |index| {
        Some(index.iter().zip(&step).map(|(i, s)| i * s).sum())
    });
    Ok(Tensor {
        shape,
        data: t.data.gather(&offsets, 0.0),
    })
}

fn concat(tensors: &[&Tensor], axis: i64) -> Result<Tensor, String> {
    let first = tensors.first().ok_or("no inputs")?;
    let rank = first.shape.len();
    let axis = axis_of(axis, rank)?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for t in tensors {
        let mut other = t.shape.clone();
        if other.len() != rank {
            return Err(format!(
                "shapes {:?} and {:?} differ in rank",
                first.shape, t.shape
            ));
        }
        shape[axis] += other[axis];
        other[axis] = shape[axis];
        if other != shape {
            return Err(format!(
                "shapes {:?} and {:?} differ off the axis",
                first.shape, t.shape
            ));
        }
    }
    let outer: usize = shape[..axis].iter().product();
    let block = |t: &Tensor| t.shape[axis..].iter().product::<usize>();
    macro_rules! join {
        ($variant:ident) => {{
            let mut out = Vec::with_capacity(shape.iter().product());
            for o in 0..outer {
                for t in tensors {
                    let Data::$variant(v) = &t.data else {
                        return Err("inputs of different types".into());
                    };
                    let b = block(t);
                    out.extend_from_slice(&v[o * b..(o + 1) * b]);
                }
            }
            Data::$variant(out)
        }};
    }
    let data = match &first.data {
        Data::F32(_) => join!(F32),
        Data::I64(_) => join!(I64),
        Data::Bool(_) => join!(Bool),
    };
    Ok(Tensor { shape, data })
}

/// Where a Slice begins on each axis of `shape` and the shape it cuts,
/// with ONNX's clamping of negative and out-of-range starts and ends.
pub(super) fn slice_bounds(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let rank = shape.len();
    let mut begin = vec![0usize; rank];
    let mut out = shape.to_vec();
    for (k, (&start, &end)) in starts.iter().zip(ends).enumerate() {
        let axis = match axes {
            Some(axes) => axis_of(*axes.get(k).ok_or("fewer axes than starts")?, rank)?,
            None => k,
        };
        if steps.is_some_and(|s| s.get(k).is_some_and(|&s| s != 1)) {
            return Err("steps other than 1 are not implemented".into());
        }
        let dim = shape[axis] as i64;
        let clamp = |i: i64| (if i < 0 { i + dim } else { i }).clamp(0, dim);
        let (s, e) = (clamp(start), clamp(end));
        begin[axis] = s as usize;
        out[axis] = (e - s).max(0) as usize;
    }
    Ok((begin, out))
}

fn slice(
    t: &Tensor,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Tensor, String> {
    let (begin, shape) = slice_bounds(&t.shape, starts, ends, axes, steps)?;
    let own = strides(&t.shape);
    let offsets = map_offsets(&shape, |index| {
        Some(
            index
                .iter()
                .zip(&begin)
                .zip(&own)
                .map(|((i, b), s)| (i + b) * s)
                .sum(),
        )
    });
    Ok(Tensor {
        shape,
        data: t.data.gather(&offsets, 0.0),
    })
}

fn pad(t: &Tensor, pads: &[i64], mode: &str, fill: f32) -> Result<Tensor, String> {
    let rank = t.shape.len();
    if pads.len() != 2 * rank {
        return Err(format!("{} pads for rank {rank}", pads.len()));
    }
    if pads.iter().any(|&p| p < 0) {
        return Err("negative pads are not implemented".into());
    }
    let reflect = match mode {
        "constant" => false,
        "reflect" => true,
        other => return Err(format!("pad mode {other:?} is not implemented")),
    };
    let before: Vec<usize> = pads[..rank].iter().map(|&p| p as usize).collect();
    let shape: Vec<usize> = (0..rank)
        .map(|i| t.shape[i] + before[i] + pads[rank + i] as usize)
        .collect();
    if reflect
        && (0..rank).any(|i| {
            shape[i] != t.shape[i] && (before[i].max(pads[rank + i] as usize) >= t.shape[i])
        })
    {
        return Err("a reflect pad as wide as its axis".into());
    }
    let own = strides(&t.shape);
    let offsets = map_offsets(&shape, |index| {
        let mut offset = 0;
        for axis in 0..rank {
            let n = t.shape[axis] as i64;
            let mut i = index[axis] as i64 - before[axis] as i64;
            if i < 0 || i >= n {
                if !reflect {
                    return None;
                }
                i = if i < 0 { -i } else { 2 * (n - 1) - i };
            }
            offset += i as usize * own[axis];
        }
        Some(offset)
    });
    Ok(Tensor {
        shape,
        data: t.data.gather(&offsets, fill),
    })
}

fn reduce(
    t: &Tensor,
    axes: Option<&[i64]>,
    keep: bool,
    identity: f32,
    f: impl Fn(f32, f32) -> f32,
) -> Result<Tensor, String> {
    let rank = t.shape.len();
    let reduced: Vec<usize> = match axes {
        Some(axes) if !axes.is_empty() => axes
            .iter()
            .map(|&a| axis_of(a, rank))
            .collect::<Result<_, _>>()?,
        _ => (0..rank).collect(),
    };
    let kept: Vec<usize> = (0..rank)
        .map(|i| if reduced.contains(&i) { 1 } else { t.shape[i] })
        .collect();
    let out_strides = strides(&kept);
    let step: Vec<usize> = (0..rank)
        .map(|i| {
            if reduced.contains(&i) {
                0
            } else {
                out_strides[i]
            }
        })
        .collect();
    let mut out = vec![identity; kept.iter().product()];
    let x = t.floats()?;
    let targets = map_offsets(&t.shape, |index| {
        Some(index.iter().zip(&step).map(|(i, s)| i * s).sum())
    });
    for (value, target) in x.iter().zip(targets) {
        let target = target.unwrap();
        out[target] = f(out[target], *value);
    }
    let shape = if keep {
        kept
    } else {
        (0..rank)
            .filter(|i| !reduced.contains(i))
            .map(|i| t.shape[i])
            .collect()
    };
    Ok(Tensor::f32(shape, out))
}

fn cast(t: &Tensor, to: i64) -> Result<Tensor, String> {
    let data = match (to, &t.data) {
        (1, Data::F32(v)) => Data::F32(v.clone()),
        (1, Data::I64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
        (1, Data::Bool(v)) => Data::F32(v.iter().map(|&x| f32::from(u8::from(x))).collect()),
        (6 | 7, Data::F32(v)) => Data::I64(v.iter().map(|&x| x as i64).collect()),
        (6 | 7, Data::I64(v)) => Data::I64(v.clone()),
        (6 | 7, Data::Bool(v)) => Data::I64(v.iter().map(|&x| i64::from(x)).collect()),
        (9, Data::F32(v)) => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
        (9, Data::I64(v)) => Data::Bool(v.iter().map(|&x| x != 0).collect()),
        (to, from) => return Err(format!("cast of {} to type {to}", from.type_name())),
    };
    Ok(Tensor {
        shape: t.shape.clone(),
        data,
    })
}

/// The geometry of a 2-D convolution, NCHW, one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_channels: usize,
    pub kernel_height: usize,
    pub kernel_width: usize,
    pub stride_height: usize,
    pub stride_width: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl ConvShape {
    /// The geometry of `node` on input and weight shapes; refuses groups,
    /// dilations and automatic padding, which Basic Pitch does not use.
    pub fn of(node: &Node, input: &[usize], weight: &[usize]) -> Result<ConvShape, String> {
        if node.int("group").unwrap_or(1) != 1 {
            return Err("grouped convolution is not implemented".into());
        }
        if node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&d| d != 1))
        {
            return Err("dilated convolution is not implemented".into());
        }
        if node.text("auto_pad").is_some_and(|p| p != "NOTSET") {
            return Err("auto_pad is not implemented".into());
        }
        let [n, c, h, w] = <[usize; 4]>::try_from(input).map_err(|_| "the input is not 4-D")?;
        let [m, wc, kh, kw] =
            <[usize; 4]>::try_from(weight).map_err(|_| "the weight is not 4-D")?;
        if wc != c {
            return Err(format!("weight channels {wc} for input channels {c}"));
        }
        let strides = node.ints("strides").unwrap_or(&[1, 1]);
        let pads = node.ints("pads").unwrap_or(&[0, 0, 0, 0]);
        let [sh, sw] = <[i64; 2]>::try_from(strides).map_err(|_| "strides are not 2")?;
        let [pt, pl, pb, pr] = <[i64; 4]>::try_from(pads).map_err(|_| "pads are not 4")?;
        if sh < 1 || sw < 1 || [pt, pl, pb, pr].iter().any(|&p| p < 0) {
            return Err("non-positive strides or negative pads".into());
        }
        let span = |size: usize, before: i64, after: i64, kernel: usize, stride: i64| {
            let padded = size + before as usize + after as usize;
            (padded >= kernel).then(|| (padded - kernel) / stride as usize + 1)
        };
        let out_height = span(h, pt, pb, kh, sh).ok_or("the kernel is taller than the input")?;
        let out_width = span(w, pl, pr, kw, sw).ok_or("the kernel is wider than the input")?;
        Ok(ConvShape {
            batch: n,
            in_channels: c,
            in_height: h,
            in_width: w,
            out_channels: m,
            kernel_height: kh,
            kernel_width: kw,
            stride_height: sh as usize,
            stride_width: sw as usize,
            pad_top: pt as usize,
            pad_left: pl as usize,
            out_height,
            out_width,
        })
    }
}

fn conv(node: &Node, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor, String> {
    let g = ConvShape::of(node, &x.shape, &w.shape)?;
    let (xs, ws) = (x.floats()?, w.floats()?);
    let bias = b.map(Tensor::floats).transpose()?;
    if bias.is_some_and(|b| b.len() != g.out_channels) {
        return Err("the bias is not one per output channel".into());
    }
    let plane = g.out_height * g.out_width;
    let mut out = vec![0f32; g.batch * g.out_channels * plane];
    for n in 0..g.batch {
        for m in 0..g.out_channels {
            let o = &mut out[(n * g.out_channels + m) * plane..][..plane];
            o.fill(bias.map_or(0.0, |b| b[m]));
            for c in 0..g.in_channels {
                let input = &xs[(n * g.in_channels + c) * g.in_height * g.in_width..]
                    [..g.in_height * g.in_width];
                let kernel = &ws[(m * g.in_channels + c) * g.kernel_height * g.kernel_width..]
                    [..g.kernel_height * g.kernel_width];
                accumulate(&g, input, kernel, o);
            }
        }
    }
    Ok(Tensor::f32(
        vec![g.batch, g.out_channels, g.out_height, g.out_width],
        out,
    ))
}

/// Adds one input channel's correlation with one kernel to an output plane.
/// Each kernel tap is a scaled copy of an input row into an output row, so
/// the innermost loop runs along the output row (a contiguous axpy when the
/// stride is 1).
fn accumulate(g: &ConvShape, input: &[f32], kernel: &[f32], out: &mut [f32]) {
    for kh in 0..g.kernel_height {
        for oh in 0..g.out_height {
            let Some(ih) = (oh * g.stride_height + kh).checked_sub(g.pad_top) else {
                continue;
            };
            if ih >= g.in_height {
                continue;
            }
            let row = &input[ih * g.in_width..][..g.in_width];
            let out_row = &mut out[oh * g.out_width..][..g.out_width];
            for kw in 0..g.kernel_width {
                let weight = kernel[kh * g.kernel_width + kw];
                // Output columns whose input column kw + ow*s - pad_left
                // lies inside the row.
                let first = g.pad_left.saturating_sub(kw).div_ceil(g.stride_width);
                let last = (g.in_width + g.pad_left)
                    .checked_sub(kw + 1)
                    .map_or(0, |span| (span / g.stride_width + 1).min(g.out_width));
                if first >= last {
                    continue;
                }
                let start = first * g.stride_width + kw - g.pad_left;
                if g.stride_width == 1 {
                    let span = last - first;
                    for (o, &v) in out_row[first..last]
                        .iter_mut()
                        .zip(&row[start..start + span])
                    {
                        *o += weight * v;
                    }
                } else {
                    for (k, o) in out_row[first..last].iter_mut().enumerate() {
                        *o += weight * row[start + k * g.stride_width];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::model::Attribute;

    fn node(op: &str, attributes: &[(&str, Attribute)]) -> Node {
        Node {
            op_type: op.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.floats().unwrap().to_vec()
    }

    #[test]
    fn binary_ops_broadcast_as_numpy_does() {
        let a = Tensor::f32(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let column = Tensor::f32(vec![2, 1], vec![10., 20.]);
        let sum = binary(&a, &column, |x, y| x + y).unwrap();
        assert_eq!(sum.shape, [2, 3]);
        assert_eq!(floats(&sum), [11., 12., 13., 24., 25., 26.]);
        let scalar = Tensor::f32(vec![], vec![2.]);
        assert_eq!(floats(&binary(&a, &scalar, |x, y| x * y).unwrap())[5], 12.);
        let wrong = Tensor::f32(vec![4], vec![0.; 4]);
        assert!(binary(&a, &wrong, |x, y| x + y).is_err());
    }

    #[test]
    fn reflect_and_constant_pads_follow_onnx() {
        let row = Tensor::f32(vec![1, 4], vec![1., 2., 3., 4.]);
        let reflected = pad(&row, &[0, 2, 0, 2], "reflect", 0.).unwrap();
        assert_eq!(floats(&reflected), [3., 2., 1., 2., 3., 4., 3., 2.]);
        let constant = pad(&row, &[0, 1, 0, 0], "constant", 9.).unwrap();
        assert_eq!(floats(&constant), [9., 1., 2., 3., 4.]);
        assert!(pad(&row, &[0, 4, 0, 0], "reflect", 0.).is_err());
    }

    #[test]
    fn slice_transpose_and_concat_move_the_right_elements() {
        let t = Tensor::f32(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let sliced = slice(&t, &[1], &[i64::MAX], Some(&[1]), None).unwrap();
        assert_eq!(
            (sliced.shape.clone(), floats(&sliced)),
            (vec![2, 2], vec![2., 3., 5., 6.])
        );
        let last = slice(&t, &[-1], &[3], Some(&[-1]), None).unwrap();
        assert_eq!(floats(&last), [3., 6.]);
        let transposed = transpose(&t, Some(&[1, 0])).unwrap();
        assert_eq!(floats(&transposed), [1., 4., 2., 5., 3., 6.]);
        assert!(transpose(&t, Some(&[0, 0])).is_err());
        let joined = concat(&[&t, &t], 1).unwrap();
        assert_eq!(joined.shape, [2, 6]);
        assert_eq!(floats(&joined)[..6], [1., 2., 3., 1., 2., 3.]);
    }

    #[test]
    fn reductions_keep_or_drop_their_axes() {
        let t = Tensor::f32(vec![2, 3], vec![1., 5., 3., 4., 2., 6.]);
        let max = reduce(&t, Some(&[1]), false, f32::NEG_INFINITY, f32::max).unwrap();
        assert_eq!((max.shape.clone(), floats(&max)), (vec![2], vec![5., 6.]));
        let sum = reduce(&t, Some(&[0]), true, 0.0, |a, b| a + b).unwrap();
        assert_eq!(
            (sum.shape.clone(), floats(&sum)),
            (vec![1, 3], vec![5., 7., 9.])
        );
    }

    #[test]
    fn a_strided_padded_convolution_equals_the_direct_sum() {
        // One input channel 3×5, two output channels of 2×3 kernels,
        // stride (1, 2), pads (1, 1, 0, 1).
        let x: Vec<f32> = (0..15).map(|i| i as f32 - 7.0).collect();
        let w: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        let conv_node = node(
            "Conv",
            &[
                ("strides", Attribute::Ints(vec![1, 2])),
                ("pads", Attribute::Ints(vec![1, 1, 0, 1])),
            ],
        );
        let input = Tensor::f32(vec![1, 1, 3, 5], x.clone());
        let weight = Tensor::f32(vec![2, 1, 2, 3], w.clone());
        let bias = Tensor::f32(vec![2], vec![0.5, -0.5]);
        let out = conv(&conv_node, &input, &weight, Some(&bias)).unwrap();
        // Padded 4×7 input, 2×3 kernel: 3 rows, (7 - 3) / 2 + 1 = 3 columns.
        assert_eq!(out.shape, [1, 2, 3, 3]);
        let at = |r: isize, c: isize| {
            if (0..3).contains(&r) && (0..5).contains(&c) {
                x[(r * 5 + c) as usize]
            } else {
                0.0
            }
        };
        for m in 0..2 {
            for oh in 0..3 {
                for ow in 0..3 {
                    let mut sum = [0.5, -0.5][m];
                    for kh in 0..2 {
                        for kw in 0..3 {
                            let (r, c) = (
                                oh as isize + kh as isize - 1,
                                2 * ow as isize + kw as isize - 1,
                            );
                            sum += w[m * 6 + kh * 3 + kw] * at(r, c);
                        }
                    }
                    let got = floats(&out)[m * 9 + oh * 3 + ow];
                    assert!((got - sum).abs() < 1e-5, "{m} {oh} {ow}: {got} vs {sum}");
                }
            }
        }
    }

    #[test]
    fn an_unknown_operator_is_refused_by_name() {
        let error = apply(&node("Gemm", &[]), &[]).unwrap_err();
        assert!(
            error.contains("operator Gemm is not implemented"),
            "{error}"
        );
    }
}
