//! The GPU runtime: one wgpu device per process, created lazily; compute
//! pipelines compiled once per (kernel, entry point) and cached; storage,
//! uniform and readback buffers recycled through a bounded pool.
//!
//! Callers pick an [`Engine`] from a requested [`Backend`]. `Auto` falls back
//! to the CPU twins when no adapter exists and says so in a `backend: cpu` log
//! line, so a step's record always names the backend that really ran.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Threads per workgroup used by every 1-D kernel in this crate; each WGSL
/// file declares the same number.
pub const WORKGROUP_SIZE: u32 = 256;

/// The WebGPU limit on workgroups along one dimension of a dispatch.
const WORKGROUPS_PER_DIMENSION_MAX: u32 = 65_535;

/// Idle buffers kept for reuse; beyond these, returned buffers are freed.
const POOL_BUFFERS_MAX: usize = 64;
const POOL_BYTES_MAX: u64 = 1 << 30;

/// A kernel's WGSL text, compiled into the binary with `include_str!`.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// Stable name, also the pipeline cache key.
    pub name: &'static str,
    pub wgsl: &'static str,
}

impl KernelSource {
    /// `sha256:<hex>` of the WGSL text, recorded in step events so a step
    /// names the exact shader that produced it.
    pub fn source_hash(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.wgsl.as_bytes()))
        )
    }
}

/// The backend a caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The GPU path; an error when no adapter exists.
    Gpu,
    /// The CPU twins.
    Cpu,
    /// The GPU when an adapter exists, else the CPU twins (logged).
    Auto,
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            "auto" => Ok(Backend::Auto),
            other => Err(format!(
                "unknown backend {other:?}: expected gpu, cpu or auto"
            )),
        }
    }
}

/// What a step event records about the adapter that ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Graphics API, e.g. `vulkan`.
    pub backend: String,
    /// e.g. `Cpu` for lavapipe, `DiscreteGpu` for a card.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {} {})",
            self.name, self.backend, self.device_type, self.driver, self.driver_info
        )
    }
}

/// Why the GPU path could not run.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter: {0}; install a Vulkan driver (Mesa lavapipe: `apt-get install mesa-vulkan-drivers libvulkan1`) or use the cpu backend")]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    Device(String),
    #[error(
        "a GPU buffer of {needed_bytes} bytes exceeds this device's limit of {limit_bytes} bytes"
    )]
    TooLarge { needed_bytes: u64, limit_bytes: u64 },
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
}

/// The process-wide GPU device with its pipeline cache and buffer pool.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    /// Keyed by kernel name, entry point and override constants.
    #[allow(clippy::type_complexity)]
    pipelines: Mutex<HashMap<(&'static str, &'static str, String), Arc<wgpu::ComputePipeline>>>,
    pool: Mutex<Vec<wgpu::Buffer>>,
}

static SHARED: OnceLock<Result<Gpu, GpuError>> = OnceLock::new();

impl Gpu {
    /// The process's device, created on first use. Every later call returns
    /// the same device (or the same error: adapters do not appear mid-run).
    pub fn shared() -> Result<&'static Gpu, GpuError> {
        SHARED
            .get_or_init(Gpu::create)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn create() -> Result<Gpu, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        // Ask for everything the adapter offers: a minute of stereo spectrum
        // already exceeds WebGPU's default 128 MiB storage binding.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ledgerline-inference"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        let adapter = AdapterSummary {
            name: info.name,
            backend: info.backend.to_string(),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
        };
        tracing::info!("backend: gpu, adapter: {adapter}");
        Ok(Gpu {
            device,
            queue,
            adapter,
            limits,
            pipelines: Mutex::new(HashMap::new()),
            pool: Mutex::new(Vec::new()),
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The largest storage buffer one binding may cover on this device.
    pub fn storage_binding_bytes_max(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// The compute pipeline for `entry` in `kernel`, compiled on first use.
    pub fn pipeline(
        &self,
        kernel: &KernelSource,
        entry: &'static str,
    ) -> Arc<wgpu::ComputePipeline> {
        self.pipeline_with_constants(kernel, entry, &[])
    }

    /// The pipeline for `entry` with WGSL `override` constants set, compiled
    /// once per distinct set of values.
    pub fn pipeline_with_constants(
        &self,
        kernel: &KernelSource,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Arc<wgpu::ComputePipeline> {
        let key = (kernel.name, entry, format!("{constants:?}"));
        let mut cache = self.pipelines.lock().expect("pipeline cache lock");
        cache
            .entry(key)
            .or_insert_with(|| {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(kernel.name),
                        source: wgpu::ShaderSource::Wgsl(kernel.wgsl.into()),
                    });
                Arc::new(
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(entry),
                            layout: None,
                            module: &module,
                            entry_point: Some(entry),
                            compilation_options: wgpu::PipelineCompilationOptions {
                                constants,
                                ..Default::default()
                            },
                            cache: None,
                        }),
                )
            })
            .clone()
    }

    fn take(
        &self,
        usage: wgpu::BufferUsages,
        len_bytes: u64,
    ) -> Result<PooledBuffer<'_>, GpuError> {
        let len_bytes = len_bytes.max(16).next_multiple_of(4);
        if len_bytes > self.limits.max_buffer_size {
            return Err(GpuError::TooLarge {
                needed_bytes: len_bytes,
                limit_bytes: self.limits.max_buffer_size,
            });
        }
        // Power-of-two size classes make reuse likely across segments and calls.
        let class_bytes = len_bytes
            .next_power_of_two()
            .min(self.limits.max_buffer_size);
        let reused = {
            let mut pool = self.pool.lock().expect("buffer pool lock");
            pool.iter()
                .position(|b| b.usage() == usage && b.size() == class_bytes)
                .map(|i| pool.swap_remove(i))
        };
        let buffer = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: class_bytes,
                usage,
                mapped_at_creation: false,
            })
        });
        Ok(PooledBuffer {
            gpu: self,
            buffer: Some(buffer),
            len_bytes,
        })
    }

    /// A storage buffer of at least `len_bytes`; its contents are unspecified.
    pub fn storage(&self, len_bytes: u64) -> Result<PooledBuffer<'_>, GpuError> {
        let limit_bytes = self.storage_binding_bytes_max();
        if len_bytes > limit_bytes {
            return Err(GpuError::TooLarge {
                needed_bytes: len_bytes,
                limit_bytes,
            });
        }
        self.take(
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            len_bytes,
        )
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<PooledBuffer<'_>, GpuError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.storage(bytes.len() as u64)?;
        self.write(&buffer, bytes);
        Ok(buffer)
    }

    /// A uniform buffer holding one parameter block.
    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> PooledBuffer<'_> {
        let bytes = bytemuck::bytes_of(value);
        let buffer = self
            .take(
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                bytes.len() as u64,
            )
            .expect("a parameter block fits any buffer limit");
        self.write(&buffer, bytes);
        buffer
    }

    fn write(&self, buffer: &PooledBuffer<'_>, bytes: &[u8]) {
        if bytes.len() % 4 == 0 {
            self.queue.write_buffer(buffer.raw(), 0, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(4), 0);
            self.queue.write_buffer(buffer.raw(), 0, &padded);
        }
    }

    /// Records `dispatches` in order into one compute pass (wgpu inserts the
    /// barriers between dependent dispatches), submits them, and reads back
    /// the first `len` elements of each buffer in `reads`.
    pub fn run<T: bytemuck::Pod>(
        &self,
        dispatches: &[Dispatch<'_>],
        reads: &[(&PooledBuffer<'_>, usize)],
    ) -> Result<Vec<Vec<T>>, GpuError> {
        let started = std::time::Instant::now();
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let bind_groups: Vec<wgpu::BindGroup> = dispatches
            .iter()
            .map(|d| {
                let layout = d.pipeline.get_bind_group_layout(0);
                let entries: Vec<wgpu::BindGroupEntry<'_>> = std::iter::once((0, &d.params))
                    .chain(
                        d.bindings
                            .iter()
                            .map(|(binding, buffer)| (*binding, *buffer)),
                    )
                    .map(|(binding, buffer)| wgpu::BindGroupEntry {
                        binding,
                        resource: buffer.binding(),
                    })
                    .collect();
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &layout,
                    entries: &entries,
                })
            })
            .collect();
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for (dispatch, bind_group) in dispatches.iter().zip(&bind_groups) {
                pass.set_pipeline(&dispatch.pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                let [x, y, z] = dispatch.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
        let element_bytes = std::mem::size_of::<T>() as u64;
        let mut staging = Vec::with_capacity(reads.len());
        for (buffer, len) in reads {
            let len_bytes = *len as u64 * element_bytes;
            assert!(len_bytes <= buffer.len_bytes, "readback within the buffer");
            let target = self.take(
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                len_bytes,
            )?;
            encoder.copy_buffer_to_buffer(
                buffer.raw(),
                0,
                target.raw(),
                0,
                len_bytes.next_multiple_of(4),
            );
            staging.push((target, len_bytes));
        }
        self.queue.submit([encoder.finish()]);
        let submitted = std::time::Instant::now();

        let (sender, receiver) = mpsc::channel();
        for (index, (target, len_bytes)) in staging.iter().enumerate() {
            let sender = sender.clone();
            target
                .raw()
                .slice(..len_bytes.next_multiple_of(4))
                .map_async(wgpu::MapMode::Read, move |result| {
                    let _ = sender.send((index, result));
                });
        }
        drop(sender);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        for (_, result) in receiver.iter() {
            result.map_err(|e| GpuError::Readback(e.to_string()))?;
        }
        let finished = std::time::Instant::now();
        let mut out = Vec::with_capacity(staging.len());
        for (target, len_bytes) in &staging {
            let slice = target.raw().slice(..len_bytes.next_multiple_of(4));
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            out.push(bytemuck::pod_collect_to_vec(&view[..*len_bytes as usize]));
            drop(view);
            target.raw().unmap();
        }
        // Where a run's time goes (RUST_LOG=inference::gpu=debug): recording
        // and uploads, the device's work, and copying results out of mapped
        // memory.
        tracing::debug!(
            dispatches = dispatches.len(),
            readback_bytes = staging.iter().map(|(_, len)| len).sum::<u64>(),
            encode_us = (submitted - started).as_micros() as u64,
            device_us = (finished - submitted).as_micros() as u64,
            readback_us = finished.elapsed().as_micros() as u64,
            "gpu run"
        );
        Ok(out)
    }

    fn recycle(&self, buffer: wgpu::Buffer) {
        let mut pool = self.pool.lock().expect("buffer pool lock");
        let pooled_bytes: u64 = pool.iter().map(wgpu::Buffer::size).sum();
        if pool.len() < POOL_BUFFERS_MAX && pooled_bytes + buffer.size() <= POOL_BYTES_MAX {
            pool.push(buffer);
        } else {
            buffer.destroy();
        }
    }
}

/// A buffer borrowed from the pool; dropping it returns it for reuse.
pub struct PooledBuffer<'g> {
    gpu: &'g Gpu,
    buffer: Option<wgpu::Buffer>,
    len_bytes: u64,
}

impl PooledBuffer<'_> {
    fn raw(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a pooled buffer is present until dropped")
    }

    /// Binds exactly the requested bytes, not the whole size class.
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: 0,
            size: NonZeroU64::new(self.len_bytes),
        })
    }
}

impl Drop for PooledBuffer<'_> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.gpu.recycle(buffer);
        }
    }
}

/// One compute dispatch: a pipeline, its parameter block (bound at group 0,
/// binding 0, as every kernel in this crate declares it), its other group-0
/// bindings and a grid.
pub struct Dispatch<'a> {
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub params: PooledBuffer<'a>,
    pub bindings: Vec<(u32, &'a PooledBuffer<'a>)>,
    pub workgroups: [u32; 3],
}

/// A grid of at least `count` workgroups, folded into a second dimension past
/// the per-dimension limit. Kernels recover the linear index as
/// `wid.y * nwg.x + wid.x` and ignore indices past their count.
pub fn workgroup_grid(count: u32) -> [u32; 3] {
    let count = count.max(1);
    if count <= WORKGROUPS_PER_DIMENSION_MAX {
        [count, 1, 1]
    } else {
        let y = count.div_ceil(WORKGROUPS_PER_DIMENSION_MAX);
        [count.div_ceil(y), y, 1]
    }
}

/// A grid with at least `threads` threads of [`WORKGROUP_SIZE`].
pub fn thread_grid(threads: u32) -> [u32; 3] {
    workgroup_grid(threads.div_ceil(WORKGROUP_SIZE))
}

/// Which implementation runs a step.
#[derive(Clone, Copy)]
pub enum Engine {
    Gpu(&'static Gpu),
    Cpu,
}

impl Engine {
    /// Resolves a requested backend. `Auto` without an adapter logs
    /// `backend: cpu` with the reason and runs the CPU twins.
    pub fn select(requested: Backend) -> Result<Engine, GpuError> {
        match requested {
            Backend::Cpu => Ok(Engine::Cpu),
            Backend::Gpu => Gpu::shared().map(Engine::Gpu),
            Backend::Auto => match Gpu::shared() {
                Ok(gpu) => Ok(Engine::Gpu(gpu)),
                Err(error) => {
                    tracing::warn!("backend: cpu ({error})");
                    Ok(Engine::Cpu)
                }
            },
        }
    }

    /// `gpu` or `cpu`, as step events record it.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Engine::Gpu(_) => "gpu",
            Engine::Cpu => "cpu",
        }
    }

    /// The adapter that runs GPU steps; `None` on the CPU twins.
    pub fn adapter(&self) -> Option<&AdapterSummary> {
        match self {
            Engine::Gpu(gpu) => Some(gpu.adapter()),
            Engine::Cpu => None,
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Gpu(gpu) => write!(f, "Engine::Gpu({})", gpu.adapter()),
            Engine::Cpu => write!(f, "Engine::Cpu"),
        }
    }
}

/// The device for tests: CI installs lavapipe, so a missing adapter is a
/// failure to report, never a reason to skip.
#[cfg(test)]
pub(crate) fn test_gpu() -> &'static Gpu {
    Gpu::shared().unwrap_or_else(|e| {
        panic!("GPU kernel tests need a wgpu adapter (CI installs Mesa lavapipe): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_hash_is_sha256_of_the_wgsl_text() {
        let kernel = KernelSource {
            name: "t",
            wgsl: "abc",
        };
        assert_eq!(
            kernel.source_hash(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn backend_parses_the_three_names_and_rejects_others() {
        assert_eq!("gpu".parse::<Backend>(), Ok(Backend::Gpu));
        assert_eq!("cpu".parse::<Backend>(), Ok(Backend::Cpu));
        assert_eq!("auto".parse::<Backend>(), Ok(Backend::Auto));
        assert!("cuda"
            .parse::<Backend>()
            .unwrap_err()
            .contains("gpu, cpu or auto"));
    }

    #[test]
    fn the_device_is_created_once_and_describes_its_adapter() {
        let first = test_gpu();
        let second = Gpu::shared().expect("same device");
        assert!(std::ptr::eq(first, second));
        assert!(!first.adapter().name.is_empty());
        assert!(!first.adapter().backend.is_empty());
        let engine = Engine::select(Backend::Auto).expect("auto resolves");
        assert_eq!(engine.backend_name(), "gpu");
        assert_eq!(Engine::select(Backend::Cpu).unwrap().backend_name(), "cpu");
    }

    #[test]
    fn grids_cover_the_count_within_the_dimension_limit() {
        for count in [1u32, 255, 65_535, 65_536, 1_000_000] {
            let [x, y, z] = workgroup_grid(count);
            assert!(x <= WORKGROUPS_PER_DIMENSION_MAX && y <= WORKGROUPS_PER_DIMENSION_MAX);
            assert!(u64::from(x) * u64::from(y) * u64::from(z) >= u64::from(count));
        }
    }
}
