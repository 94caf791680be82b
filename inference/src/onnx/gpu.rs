//! The GPU forward pass of an ONNX graph: the same operators as
//! [`super::cpu`], as WGSL kernels (`onnx.wgsl`) run through wgpu, the
//! whole graph recorded into one submission. Shapes are known before
//! anything runs, so integer shape arithmetic (Shape, Cast, the Slice and
//! Concat of shapes) is done on the host by the CPU pass, Reshape and
//! Unsqueeze only relabel a buffer, and every float operator is a
//! dispatch. Intermediate tensors stay on the device; only the graph's
//! outputs are read back.

use super::cpu::{self, ConvShape, RunError};
use super::model::{Model, Node};
use super::tensor::{strides, Data, Tensor};
use crate::gpu::{thread_grid, Dispatch, Gpu, GpuError, KernelSource};
use std::collections::HashMap;

pub const SOURCE: KernelSource = KernelSource {
    name: "onnx",
    wgsl: include_str!("onnx.wgsl"),
};

/// The largest rank the kernels index.
const RANK: usize = 6;
/// The output channels and columns one conv2d thread computes (`M_TILE`
/// and `W_TILE` in `onnx.wgsl`, at most 32 sums): 8 × 4, or 16 columns of
/// a single channel. Of the tiles tried on lavapipe (4 × 2 to 16 × 2, and
/// 1 × 8 to 1 × 32 for one channel) these were the fastest. Two other
/// layouts measured no better there: whole workgroups an output row (so
/// every lane loads the same weights), within the bench's run-to-run
/// spread; and shifting the input tile one column a tap (one load a tap
/// instead of `W_TILE`), 20% slower.
fn conv_tile(out_channels: usize) -> (usize, usize) {
    if out_channels == 1 {
        (1, 16)
    } else {
        (8, 4)
    }
}

/// Why the GPU pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum GpuRunError {
    #[error(transparent)]
    Graph(#[from] RunError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// A value of the graph during planning: on the host (shapes, constants)
/// or a device buffer (an index into the arena) with its shape.
#[derive(Clone)]
enum Value {
    Host(Tensor),
    Device { buffer: usize, shape: Vec<usize> },
}

/// One planned dispatch: entry point, parameter words, bindings (binding
/// number, arena index) and threads.
struct Planned {
    entry: &'static str,
    /// WGSL override constants of the pipeline.
    constants: Vec<(&'static str, f64)>,
    words: [u32; 64],
    bindings: Vec<(u32, usize)>,
    threads: usize,
}

/// A parameter block of 64 words, as `onnx.wgsl`'s `Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Words([u32; 64]);

struct Plan<'g> {
    gpu: &'g Gpu,
    arena: Vec<crate::gpu::PooledBuffer<'g>>,
    /// Bytes of every buffer in the arena, all held until the run ends.
    arena_bytes: u64,
    dispatches: Vec<Planned>,
    uploaded: HashMap<String, usize>,
}

/// Runs `model` on `inputs` on the GPU and returns its outputs in the
/// graph's order, as float tensors.
pub fn run(
    gpu: &Gpu,
    model: &Model,
    inputs: Vec<(String, Tensor)>,
) -> Result<Vec<Tensor>, GpuRunError> {
    let mut plan = Plan {
        gpu,
        arena: Vec::new(),
        arena_bytes: 0,
        dispatches: Vec::new(),
        uploaded: HashMap::new(),
    };
    let mut values: HashMap<String, Value> = HashMap::new();
    for (name, tensor) in inputs {
        if !model.inputs.contains(&name) {
            return Err(RunError::UnknownInput(name).into());
        }
        let buffer = plan.upload(&tensor)?;
        values.insert(
            name,
            Value::Device {
                buffer,
                shape: tensor.shape,
            },
        );
    }
    if let Some(missing) = model.inputs.iter().find(|i| !values.contains_key(*i)) {
        return Err(RunError::MissingInput(missing.clone()).into());
    }
    for (index, node) in model.nodes.iter().enumerate() {
        let op_error = |message: String| RunError::Op {
            index,
            op: node.op_type.clone(),
            message,
        };
        let mut args = Vec::with_capacity(node.inputs.len());
        for name in &node.inputs {
            if name.is_empty() {
                args.push(None);
                continue;
            }
            let value = match values.get(name) {
                Some(value) => value.clone(),
                None => match model.initializers.get(name) {
                    Some(tensor) => Value::Host(tensor.clone()),
                    None => {
                        return Err(RunError::Undefined {
                            index,
                            op: node.op_type.clone(),
                            value: name.clone(),
                        }
                        .into())
                    }
                },
            };
            args.push(Some((name.as_str(), value)));
        }
        let outputs = plan.node(node, &args).map_err(|e| match e {
            NodeError::Op(message) => GpuRunError::Graph(op_error(message)),
            NodeError::Gpu(e) => GpuRunError::Gpu(e),
        })?;
        for (name, value) in node.outputs.iter().zip(outputs) {
            values.insert(name.clone(), value);
        }
    }
    let mut reads = Vec::new();
    for name in &model.outputs {
        match values.get(name) {
            Some(Value::Device { buffer, shape }) => reads.push((*buffer, shape.clone())),
            _ => {
                return Err(RunError::Op {
                    index: model.nodes.len(),
                    op: "output".into(),
                    message: format!("{name:?} is not a device tensor"),
                }
                .into())
            }
        }
    }
    plan.execute(&reads)
}

enum NodeError {
    Op(String),
    Gpu(GpuError),
}

impl From<String> for NodeError {
    fn from(message: String) -> Self {
        NodeError::Op(message)
    }
}

impl From<&str> for NodeError {
    fn from(message: &str) -> Self {
        NodeError::Op(message.to_string())
    }
}

impl From<GpuError> for NodeError {
    fn from(error: GpuError) -> Self {
        NodeError::Gpu(error)
    }
}

type Arg<'a> = Option<(&'a str, Value)>;

fn shape_of(value: &Value) -> &[usize] {
    match value {
        Value::Host(t) => &t.shape,
        Value::Device { shape, .. } => shape,
    }
}

fn host(value: &Value) -> Result<&Tensor, NodeError> {
    match value {
        Value::Host(t) => Ok(t),
        Value::Device { .. } => Err("a shape or index input computed on the device".into()),
    }
}

/// `shape` padded with leading 1s to [`RANK`].
fn padded(shape: &[usize]) -> Result<[usize; RANK], NodeError> {
    if shape.len() > RANK {
        return Err(format!("rank {} is above the kernels' {RANK}", shape.len()).into());
    }
    let mut out = [1; RANK];
    out[RANK - shape.len()..].copy_from_slice(shape);
    Ok(out)
}

/// The strides by which a tensor of `shape` is read as `out` (broadcast
/// axes read with stride 0), padded to [`RANK`].
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Result<[usize; RANK], NodeError> {
    let own = strides(shape);
    let skip = out.len() - shape.len();
    let mut result = [0; RANK];
    for axis in 0..out.len() {
        result[RANK - out.len() + axis] = if axis < skip || shape[axis - skip] == 1 {
            0
        } else {
            own[axis - skip]
        };
    }
    Ok(result)
}

fn put(words: &mut [u32; 64], at: usize, values: &[usize]) -> Result<(), NodeError> {
    for (k, v) in values.iter().enumerate() {
        words[at + k] = u32::try_from(*v).map_err(|_| "a size above 2^32")?;
    }
    Ok(())
}

impl<'g> Plan<'g> {
    fn upload(&mut self, tensor: &Tensor) -> Result<usize, GpuError> {
        let floats: Vec<f32> = match &tensor.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
        };
        let buffer = self.gpu.upload(&floats)?;
        self.arena.push(buffer);
        self.arena_bytes += floats.len() as u64 * 4;
        Ok(self.arena.len() - 1)
    }

    /// The device buffer of an argument, uploading a host tensor once per
    /// initializer name.
    fn device(&mut self, (name, value): &(&str, Value)) -> Result<usize, NodeError> {
        match value {
            Value::Device { buffer, .. } => Ok(*buffer),
            Value::Host(tensor) => {
                if let Some(&buffer) = self.uploaded.get(*name) {
                    return Ok(buffer);
                }
                let buffer = self.upload(tensor)?;
                self.uploaded.insert(name.to_string(), buffer);
                Ok(buffer)
            }
        }
    }

    fn output(&mut self, shape: &[usize]) -> Result<usize, GpuError> {
        let count: usize = shape.iter().product();
        let buffer = self.gpu.storage((count.max(1) * 4) as u64)?;
        self.arena.push(buffer);
        self.arena_bytes += count as u64 * 4;
        Ok(self.arena.len() - 1)
    }

    fn dispatch(
        &mut self,
        entry: &'static str,
        words: [u32; 64],
        inputs: &[(u32, usize)],
        shape: &[usize],
    ) -> Result<Value, NodeError> {
        let out = self.output(shape)?;
        let mut bindings = inputs.to_vec();
        bindings.push((4, out));
        self.dispatches.push(Planned {
            entry,
            constants: Vec::new(),
            words,
            bindings,
            threads: shape.iter().product(),
        });
        Ok(Value::Device {
            buffer: out,
            shape: shape.to_vec(),
        })
    }

    fn node(&mut self, node: &Node, args: &[Arg<'_>]) -> Result<Vec<Value>, NodeError> {
        // Integer and constant arithmetic stays on the host.
        if args
            .iter()
            .flatten()
            .all(|(_, v)| matches!(v, Value::Host(_)))
        {
            let tensors: Vec<Option<&Tensor>> = args
                .iter()
                .map(|a| a.as_ref().map(|(_, v)| host(v)).transpose())
                .collect::<Result<_, _>>()?;
            return Ok(cpu::apply(node, &tensors)?
                .into_iter()
                .map(Value::Host)
                .collect());
        }
        let arg = |i: usize| -> Result<&(&str, Value), NodeError> {
            args.get(i)
                .and_then(Option::as_ref)
                .ok_or_else(|| format!("input {i} is missing").into())
        };
        let one = |v: Value| Ok(vec![v]);
        match node.op_type.as_str() {
            "Shape" => {
                let shape = shape_of(&arg(0)?.1);
                one(Value::Host(Tensor::i64(
                    vec![shape.len()],
                    shape.iter().map(|&d| d as i64).collect(),
                )))
            }
            "Reshape" | "Unsqueeze" => {
                let Value::Device { buffer, shape } = &arg(0)?.1 else {
                    return Err("a host tensor reshaped by a device tensor".into());
                };
                let target = host(&arg(1)?.1)?.ints()?;
                let shape = if node.op_type == "Reshape" {
                    cpu::reshaped(shape, target)?
                } else {
                    cpu::unsqueezed(shape, target)?
                };
                one(Value::Device {
                    buffer: *buffer,
                    shape,
                })
            }
            "Neg" | "Relu" | "Sigmoid" | "Sqrt" | "Log" => {
                let op = ["Neg", "Relu", "Sigmoid", "Sqrt", "Log"]
                    .iter()
                    .position(|o| *o == node.op_type)
                    .unwrap();
                let x = arg(0)?;
                let shape = shape_of(&x.1).to_vec();
                let input = self.device(x)?;
                let mut words = [0; 64];
                put(&mut words, 0, &[shape.iter().product(), op])?;
                one(self.dispatch("unary", words, &[(1, input)], &shape)?)
            }
            "Add" | "Sub" | "Mul" | "Div" | "Equal" => {
                let op = ["Add", "Sub", "Mul", "Div", "Equal"]
                    .iter()
                    .position(|o| *o == node.op_type)
                    .unwrap();
                let (x, y) = (arg(0)?, arg(1)?);
                let shape = broadcast(shape_of(&x.1), shape_of(&y.1))?;
                let (bx, by) = (self.device(x)?, self.device(y)?);
                let mut words = [0; 64];
                put(&mut words, 0, &[shape.iter().product(), op])?;
                put(&mut words, 2, &padded(&shape)?)?;
                put(&mut words, 8, &broadcast_strides(shape_of(&x.1), &shape)?)?;
                put(&mut words, 14, &broadcast_strides(shape_of(&y.1), &shape)?)?;
                one(self.dispatch("binary", words, &[(1, bx), (2, by)], &shape)?)
            }
            "Where" => {
                let (c, x, y) = (arg(0)?, arg(1)?, arg(2)?);
                let shape = broadcast(
                    &broadcast(shape_of(&c.1), shape_of(&x.1))?,
                    shape_of(&y.1),
                )?;
                let (bc, bx, by) = (self.device(c)?, self.device(x)?, self.device(y)?);
                let mut words = [0; 64];
                put(&mut words, 0, &[shape.iter().product()])?;
                put(&mut words, 2, &padded(&shape)?)?;
                put(&mut words, 8, &broadcast_strides(shape_of(&c.1), &shape)?)?;
                put(&mut words, 14, &broadcast_strides(shape_of(&x.1), &shape)?)?;
                put(&mut words, 20, &broadcast_strides(shape_of(&y.1), &shape)?)?;
                one(self.dispatch("choose", words, &[(1, bc), (2, bx), (3, by)], &shape)?)
            }
            "Transpose" | "Slice" | "Pad" => self.gather_node(node, args).map(|v| vec![v]),
            "Concat" => {
                let parts: Vec<&(&str, Value)> = args
                    .iter()
                    .map(|a| a.as_ref().ok_or("a missing input"))
                    .collect::<Result<_, _>>()?;
                let rank = shape_of(&parts[0].1).len();
                let axis = node.int("axis").ok_or("no axis")?;
                let axis = if axis < 0 { axis + rank as i64 } else { axis } as usize;
                let mut shape = shape_of(&parts[0].1).to_vec();
                shape[axis] = parts.iter().map(|p| shape_of(&p.1)[axis]).sum();
                let out = self.output(&shape)?;
                let out_strides = strides(&shape);
                let mut at = 0;
                for part in parts {
                    let part_shape = shape_of(&part.1).to_vec();
                    let input = self.device(part)?;
                    let mut words = [0; 64];
                    put(&mut words, 0, &[part_shape.iter().product()])?;
                    put(&mut words, 3, &[at * out_strides[axis]])?;
                    put(&mut words, 4, &padded(&part_shape)?)?;
                    put(&mut words, 10, &padded_strides(&strides(&part_shape)))?;
                    put(&mut words, 22, &padded(&part_shape)?)?;
                    put(&mut words, 28, &padded_strides(&out_strides))?;
                    self.dispatches.push(Planned {
                        entry: "gather",
                        constants: Vec::new(),
                        words,
                        bindings: vec![(1, input), (4, out)],
                        threads: part_shape.iter().product(),
                    });
                    at += part_shape[axis];
                }
                one(Value::Device { buffer: out, shape })
            }
            "ReduceSum" | "ReduceMin" | "ReduceMax" => {
                let x = arg(0)?;
                let shape = shape_of(&x.1).to_vec();
                let rank = shape.len();
                let axes: Vec<i64> = if node.op_type == "ReduceSum" {
                    match args.get(1).and_then(Option::as_ref) {
                        Some(a) => host(&a.1)?.ints()?.to_vec(),
                        None => Vec::new(),
                    }
                } else {
                    node.ints("axes").map(<[i64]>::to_vec).unwrap_or_default()
                };
                let reduced: Vec<usize> = if axes.is_empty() {
                    (0..rank).collect()
                } else {
                    axes.iter()
                        .map(|&a| if a < 0 { a + rank as i64 } else { a } as usize)
                        .collect()
                };
                let own = strides(&shape);
                let kept_dims: Vec<usize> = (0..rank)
                    .map(|i| if reduced.contains(&i) { 1 } else { shape[i] })
                    .collect();
                let kept_strides: Vec<usize> = (0..rank)
                    .map(|i| if reduced.contains(&i) { 0 } else { own[i] })
                    .collect();
                let reduced_dims: Vec<usize> = (0..rank)
                    .map(|i| if reduced.contains(&i) { shape[i] } else { 1 })
                    .collect();
                let reduced_strides: Vec<usize> = (0..rank)
                    .map(|i| if reduced.contains(&i) { own[i] } else { 0 })
                    .collect();
                let keep = node.int("keepdims").unwrap_or(1) == 1;
                let out_shape: Vec<usize> = if keep {
                    kept_dims.clone()
                } else {
                    (0..rank)
                        .filter(|i| !reduced.contains(i))
                        .map(|i| shape[i])
                        .collect()
                };
                let op = ["ReduceSum", "ReduceMin", "ReduceMax"]
                    .iter()
                    .position(|o| *o == node.op_type)
                    .unwrap();
                let input = self.device(x)?;
                let mut words = [0; 64];
                put(&mut words, 0, &[kept_dims.iter().product(), op])?;
                put(&mut words, 2, &padded(&kept_dims)?)?;
                put(&mut words, 8, &padded_strides(&kept_strides))?;
                put(&mut words, 14, &padded(&reduced_dims)?)?;
                put(&mut words, 20, &padded_strides(&reduced_strides))?;
                put(&mut words, 26, &[reduced_dims.iter().product()])?;
                one(self.dispatch("reduce", words, &[(1, input)], &out_shape)?)
            }
            "Conv" => {
                let (x, w) = (arg(0)?, arg(1)?);
                let g = ConvShape::of(node, shape_of(&x.1), shape_of(&w.1))?;
                let (bx, bw) = (self.device(x)?, self.device(w)?);
                let bias = args.get(2).and_then(Option::as_ref);
                let bb = match bias {
                    Some(b) => self.device(b)?,
                    // A zero bias, so the binding is always there.
                    None => self.upload(&Tensor::f32(vec![g.out_channels], vec![0.0; g.out_channels]))?,
                };
                let shape = vec![g.batch, g.out_channels, g.out_height, g.out_width];
                let (channel_tile, column_tile) = conv_tile(g.out_channels);
                let channel_tiles = g.out_channels.div_ceil(channel_tile);
                let column_tiles = g.out_width.div_ceil(column_tile);
                let tiles = g.batch * channel_tiles * g.out_height * column_tiles;
                let mut words = [0; 64];
                put(
                    &mut words,
                    0,
                    &[
                        tiles,
                        g.batch,
                        g.in_channels,
                        g.in_height,
                        g.in_width,
                        g.out_channels,
                        g.kernel_height,
                        g.kernel_width,
                        g.stride_height,
                        g.stride_width,
                        g.pad_top,
                        g.pad_left,
                        g.out_height,
                        g.out_width,
                        channel_tiles,
                        column_tiles,
                    ],
                )?;
                let out = self.output(&shape)?;
                self.dispatches.push(Planned {
                    entry: "conv2d",
                    constants: vec![
                        ("M_TILE", channel_tile as f64),
                        ("W_TILE", column_tile as f64),
                    ],
                    words,
                    bindings: vec![(1, bx), (2, bw), (3, bb), (4, out)],
                    threads: tiles,
                });
                one(Value::Device { buffer: out, shape })
            }
            other => Err(format!(
                "operator {other} on device tensors is not implemented (the GPU pass implements {})",
                cpu::OPERATORS.join(", ")
            )
            .into()),
        }
    }

    /// Transpose, Slice and Pad: one gather through an index map.
    fn gather_node(&mut self, node: &Node, args: &[Arg<'_>]) -> Result<Value, NodeError> {
        let x = args[0].as_ref().ok_or("input 0 is missing")?;
        let shape = shape_of(&x.1).to_vec();
        let rank = shape.len();
        let own = strides(&shape);
        let input = self.device(x)?;
        let mut words = [0; 64];
        let (out_shape, src_strides, begin, src_dims, mode, fill): (
            Vec<usize>,
            Vec<usize>,
            Vec<i64>,
            Vec<usize>,
            u32,
            f32,
        ) = match node.op_type.as_str() {
            "Transpose" => {
                let perm: Vec<usize> = match node.ints("perm") {
                    Some(p) => p.iter().map(|&a| a as usize).collect(),
                    None => (0..rank).rev().collect(),
                };
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..rank).collect::<Vec<_>>() {
                    return Err(format!("perm {perm:?} is not a permutation of rank {rank}").into());
                }
                let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
                (
                    out.clone(),
                    perm.iter().map(|&p| own[p]).collect(),
                    vec![0; rank],
                    out,
                    0,
                    0.0,
                )
            }
            "Slice" => {
                let ints = |i: usize| -> Result<Option<Vec<i64>>, NodeError> {
                    match args.get(i).and_then(Option::as_ref) {
                        Some((_, v)) => Ok(Some(host(v)?.ints()?.to_vec())),
                        None => Ok(None),
                    }
                };
                let (starts, ends) = (ints(1)?.ok_or("no starts")?, ints(2)?.ok_or("no ends")?);
                let (axes, steps) = (ints(3)?, ints(4)?);
                let (begin, out) =
                    cpu::slice_bounds(&shape, &starts, &ends, axes.as_deref(), steps.as_deref())?;
                let begin: Vec<i64> = begin.into_iter().map(|b| b as i64).collect();
                (out, own.clone(), begin, shape.clone(), 0, 0.0)
            }
            _ => {
                let pads = host(&args[1].as_ref().ok_or("no pads")?.1)?
                    .ints()?
                    .to_vec();
                if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
                    return Err("pads must be 2 × rank and not negative".into());
                }
                let fill = match args.get(2).and_then(Option::as_ref) {
                    Some((_, v)) => *host(v)?.floats()?.first().ok_or("an empty pad value")?,
                    None => 0.0,
                };
                let reflect = match node.text("mode").unwrap_or("constant") {
                    "constant" => 0,
                    "reflect" => 1,
                    other => return Err(format!("pad mode {other:?} is not implemented").into()),
                };
                let out: Vec<usize> = (0..rank)
                    .map(|i| shape[i] + pads[i] as usize + pads[rank + i] as usize)
                    .collect();
                // Reflection reaches at most one axis length back, as in
                // the CPU pass.
                if reflect == 1
                    && (0..rank).any(|i| {
                        pads[i].max(pads[rank + i]) as usize >= shape[i] && out[i] != shape[i]
                    })
                {
                    return Err("a reflect pad as wide as its axis".into());
                }
                let begin = (0..rank).map(|i| -pads[i]).collect();
                (out, own.clone(), begin, shape.clone(), reflect, fill)
            }
        };
        put(&mut words, 0, &[out_shape.iter().product(), mode as usize])?;
        words[2] = fill.to_bits();
        put(&mut words, 4, &padded(&out_shape)?)?;
        put(&mut words, 10, &padded_strides(&src_strides))?;
        let mut begin_words = [0i64; RANK];
        begin_words[RANK - rank..].copy_from_slice(&begin);
        for (k, b) in begin_words.iter().enumerate() {
            words[16 + k] = (*b as i32) as u32;
        }
        put(&mut words, 22, &padded(&src_dims)?)?;
        put(&mut words, 28, &padded_strides(&strides(&out_shape)))?;
        self.dispatch("gather", words, &[(1, input)], &out_shape)
    }

    /// Records every planned dispatch into one submission and reads back
    /// `reads` (arena index, shape).
    fn execute(self, reads: &[(usize, Vec<usize>)]) -> Result<Vec<Tensor>, GpuRunError> {
        tracing::debug!(
            dispatches = self.dispatches.len(),
            buffers = self.arena.len(),
            bytes = self.arena_bytes,
            "onnx graph planned"
        );
        if tracing::enabled!(tracing::Level::TRACE) {
            let mut threads: HashMap<&str, (usize, usize)> = HashMap::new();
            for d in &self.dispatches {
                let entry = threads.entry(d.entry).or_default();
                entry.0 += 1;
                entry.1 += d.threads;
            }
            tracing::trace!(?threads, "dispatches and threads per entry point");
        }
        let dispatches: Vec<Dispatch<'_>> = self
            .dispatches
            .iter()
            .map(|d| Dispatch {
                pipeline: self
                    .gpu
                    .pipeline_with_constants(&SOURCE, d.entry, &d.constants),
                params: self.gpu.uniform(&Words(d.words)),
                bindings: d
                    .bindings
                    .iter()
                    .map(|&(b, i)| (b, &self.arena[i]))
                    .collect(),
                workgroups: thread_grid(d.threads as u32),
            })
            .collect();
        let read_list: Vec<(&crate::gpu::PooledBuffer<'_>, usize)> = reads
            .iter()
            .map(|(i, shape)| (&self.arena[*i], shape.iter().product()))
            .collect();
        let data = self.gpu.run::<f32>(&dispatches, &read_list)?;
        Ok(data
            .into_iter()
            .zip(reads)
            .map(|(values, (_, shape))| Tensor::f32(shape.clone(), values))
            .collect())
    }
}

/// Strides padded with leading zeros to [`RANK`].
fn padded_strides(values: &[usize]) -> [usize; RANK] {
    let mut out = [0; RANK];
    out[RANK - values.len()..].copy_from_slice(values);
    out
}

fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, NodeError> {
    Ok(cpu::broadcast_shape(a, b)?)
}
