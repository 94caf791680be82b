//! Content-addressed audio artifacts under `<data dir>/artifacts/`.
//!
//! Every stored file is named by the SHA-256 of its bytes
//! (`artifacts/sha256/<hex>`), and also indexed by the hash of its decoded PCM
//! (`artifacts/pcm/<hex>` holds the file hash), so the same audio re-wrapped in
//! another container or encoding is still recognised. A published output's
//! Content Credentials are kept as its manifest store beside it
//! ([`ArtifactStore::put_credentials`]), not as a second copy of the audio.
//! Inputs are decoded and
//! validated before anything is written: an unreadable, empty, non-finite,
//! over-long or oddly sampled file, or one that decodes to more than
//! [`DECODED_SAMPLES_MAX`] samples, is refused with nothing stored. Files
//! are decoded as a stream ([`decode_stream`]), so a caller that only needs
//! a hash ([`pcm_hash_of_file`]) never holds the decoded audio.
//!
//! WAV is read and written with `hound`; FLAC, MP3 and Ogg Vorbis are decoded
//! with `symphonia`.

use crate::audio::Audio;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use symphonia::core::io::{MediaSource, MediaSourceStream};

/// Longest accepted input, seconds.
pub const DURATION_S_MAX: u64 = 20 * 60;
/// Accepted sample rates, Hz.
pub const SAMPLE_RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=192_000;
/// Most channels accepted.
pub const CHANNELS_MAX: usize = 8;
/// The most samples (all channels together) one file may decode to: 20
/// minutes of stereo at 96 kHz, 921.6 MB as f32. The duration, rate and
/// channel limits alone would allow 8 channels at 192 kHz for 20 minutes
/// (7.4 GB as f32), which a few megabytes of compressed constant audio can
/// claim.
pub const DECODED_SAMPLES_MAX: u64 = DURATION_S_MAX * 96_000 * 2;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("not decodable audio ({reason}); accepted: WAV (PCM or float), FLAC, MP3, Ogg Vorbis")]
    Undecodable { reason: String },
    #[error("the audio is empty (no samples)")]
    Empty,
    #[error("interleaved sample {index} is not finite (NaN or infinity)")]
    NonFinite { index: usize },
    #[error("the audio lasts more than {DURATION_S_MAX} s ({frames} frames at {sample_rate} Hz)")]
    TooLong { frames: u64, sample_rate: u32 },
    #[error("the audio decodes to more than {limit} samples, the most accepted ({samples} samples reached or declared: {channels} channels at {sample_rate} Hz); send a shorter excerpt, or fewer channels or a lower rate")]
    TooManySamples {
        samples: u64,
        sample_rate: u32,
        channels: usize,
        limit: u64,
    },
    #[error("sample rate {0} Hz is outside the accepted 8000..=192000 Hz")]
    SampleRate(u32),
    #[error("{0} channels: accepted 1..={CHANNELS_MAX}")]
    Channels(usize),
    #[error("no artifact {0} in the store")]
    NotFound(String),
    #[error("artifact store I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A stored audio artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// `sha256:<hex>` of the file bytes.
    pub file_hash: String,
    /// `sha256:<hex>` of the decoded PCM, see [`pcm_hash`].
    pub pcm_hash: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Samples per channel.
    pub frames: u64,
    /// Where the bytes live in the store.
    pub path: PathBuf,
}

/// `sha256:<hex>` of `bytes`.
pub fn file_hash(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hash that identifies audio independently of its container:
/// `sha256:<hex>` of the byte string
/// `sample_rate as u32 LE || channel count as u16 LE || samples`,
/// where `samples` are the interleaved (frame-major) samples as IEEE-754 f32,
/// little-endian. Integer PCM decodes to f32 as `x / 2^(bits - 1)` (so a 16-bit
/// file and a float file holding the same values hash alike).
pub fn pcm_hash(audio: &Audio) -> String {
    let mut hasher = Sha256::new();
    hasher.update(audio.sample_rate.to_le_bytes());
    hasher.update((audio.channel_count() as u16).to_le_bytes());
    for i in 0..audio.frames() {
        for channel in &audio.channels {
            hasher.update(channel[i].to_le_bytes());
        }
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Decodes and validates an audio file from disk, within
/// [`DECODED_SAMPLES_MAX`].
pub fn decode_file(path: &Path) -> Result<Audio, ArtifactError> {
    collect(open_source(path)?, extension_of(path))
}

/// Decodes and validates audio bytes, within [`DECODED_SAMPLES_MAX`];
/// `extension` is a format hint.
pub fn decode_bytes(bytes: &[u8], extension: Option<&str>) -> Result<Audio, ArtifactError> {
    collect(Box::new(Cursor::new(bytes.to_vec())), extension)
}

/// The [`pcm_hash`] of an audio file, decoded as a stream: memory stays at
/// one packet whatever the file decodes to, and decoding stops at
/// [`DECODED_SAMPLES_MAX`]. Equal to `pcm_hash(&decode_file(path)?)`.
pub fn pcm_hash_of_file(path: &Path) -> Result<String, ArtifactError> {
    let mut hasher = PcmHasher::default();
    decode_stream(path, DECODED_SAMPLES_MAX, &mut |spec, samples| {
        hasher.feed(spec, samples)
    })?;
    Ok(hasher.finish())
}

/// The [`pcm_hash`] computed run by run as a [`decode_stream`] sink, so a
/// caller can hash in the same pass that does something else with the
/// samples.
#[derive(Default)]
pub struct PcmHasher {
    hasher: Sha256,
    bytes: Vec<u8>,
}

impl PcmHasher {
    /// Takes the next run of interleaved frames.
    pub fn feed(&mut self, spec: StreamSpec, samples: &[f32]) {
        if spec.first {
            self.hasher.update(spec.sample_rate.to_le_bytes());
            self.hasher.update((spec.channels as u16).to_le_bytes());
        }
        self.bytes.clear();
        self.bytes
            .extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        self.hasher.update(&self.bytes);
    }

    /// The hash, `sha256:<hex>`.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

/// What a streamed decode hands its sink with each run of frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    pub sample_rate: u32,
    pub channels: usize,
    /// True for the first run of frames only.
    pub first: bool,
}

/// Decodes the audio file at `path` as a stream, handing `sink` whole
/// interleaved frames as they are decoded, validated as [`decode_file`]
/// validates (rate, channels, duration, finite samples, not empty). The
/// file is refused with [`ArtifactError::TooManySamples`] as soon as its
/// header declares, or its decoded samples (all channels) reach, more than
/// `decoded_samples_max`: a few kilobytes of compressed silence can claim
/// gigabytes of PCM. Returns the number of frames decoded.
pub fn decode_stream(
    path: &Path,
    decoded_samples_max: u64,
    sink: &mut dyn FnMut(StreamSpec, &[f32]),
) -> Result<u64, ArtifactError> {
    let source = open_source(path)?;
    let mut budget = Budget::new(decoded_samples_max, sink);
    decode_source(source, extension_of(path), &mut budget)?;
    budget.finish()
}

fn open_source(path: &Path) -> Result<Box<dyn MediaSource>, ArtifactError> {
    let file = fs::File::open(path).map_err(|e| ArtifactError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Box::new(file))
}

fn extension_of(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

/// Decodes into planar channels, within [`DECODED_SAMPLES_MAX`].
fn collect(source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Audio, ArtifactError> {
    let mut rate = 0;
    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut sink = |spec: StreamSpec, samples: &[f32]| {
        if spec.first {
            rate = spec.sample_rate;
            channels = vec![Vec::new(); spec.channels];
        }
        for frame in samples.chunks_exact(spec.channels) {
            for (channel, &sample) in channels.iter_mut().zip(frame) {
                channel.push(sample);
            }
        }
    };
    let mut budget = Budget::new(DECODED_SAMPLES_MAX, &mut sink);
    decode_source(source, extension, &mut budget)?;
    budget.finish()?;
    Ok(Audio::new(rate, channels))
}

fn check_header(
    sample_rate: u32,
    channels: usize,
    frames: Option<u64>,
) -> Result<(), ArtifactError> {
    if !SAMPLE_RATE_RANGE.contains(&sample_rate) {
        return Err(ArtifactError::SampleRate(sample_rate));
    }
    if channels == 0 || channels > CHANNELS_MAX {
        return Err(ArtifactError::Channels(channels));
    }
    if let Some(frames) = frames {
        if frames > DURATION_S_MAX * u64::from(sample_rate) {
            return Err(ArtifactError::TooLong {
                frames,
                sample_rate,
            });
        }
    }
    Ok(())
}

fn validate(audio: &Audio) -> Result<(), ArtifactError> {
    check_header(
        audio.sample_rate,
        audio.channel_count(),
        Some(audio.frames() as u64),
    )?;
    if audio.frames() == 0 {
        return Err(ArtifactError::Empty);
    }
    for (c, channel) in audio.channels.iter().enumerate() {
        if let Some(i) = channel.iter().position(|x| !x.is_finite()) {
            return Err(ArtifactError::NonFinite {
                index: i * audio.channel_count() + c,
            });
        }
    }
    Ok(())
}

/// Stands between a decoder and its sink: checks the header's claims and
/// every decoded run of frames against the limits before the sink sees it.
struct Budget<'a> {
    decoded_samples_max: u64,
    sink: &'a mut dyn FnMut(StreamSpec, &[f32]),
    spec: Option<(u32, usize)>,
    samples: u64,
}

impl<'a> Budget<'a> {
    fn new(decoded_samples_max: u64, sink: &'a mut dyn FnMut(StreamSpec, &[f32])) -> Self {
        Budget {
            decoded_samples_max,
            sink,
            spec: None,
            samples: 0,
        }
    }

    fn too_many(&self, samples: u64, sample_rate: u32, channels: usize) -> ArtifactError {
        ArtifactError::TooManySamples {
            samples,
            sample_rate,
            channels,
            limit: self.decoded_samples_max,
        }
    }

    /// What a header declares, checked before anything is decoded.
    fn declared(
        &self,
        sample_rate: u32,
        channels: usize,
        frames: Option<u64>,
    ) -> Result<(), ArtifactError> {
        check_header(sample_rate, channels, frames)?;
        match frames.map(|f| f.saturating_mul(channels as u64)) {
            Some(samples) if samples > self.decoded_samples_max => {
                Err(self.too_many(samples, sample_rate, channels))
            }
            _ => Ok(()),
        }
    }

    /// Interleaved whole frames just decoded.
    fn frames(
        &mut self,
        sample_rate: u32,
        channels: usize,
        samples: &[f32],
    ) -> Result<(), ArtifactError> {
        if samples.is_empty() {
            return Ok(());
        }
        let first = match self.spec {
            None => {
                check_header(sample_rate, channels, None)?;
                self.spec = Some((sample_rate, channels));
                true
            }
            Some(spec) if spec == (sample_rate, channels) => false,
            Some((rate, count)) => {
                return Err(ArtifactError::Undecodable {
                    reason: format!(
                        "the stream changes from {count} channels at {rate} Hz to {channels} channels at {sample_rate} Hz"
                    ),
                })
            }
        };
        let total = self.samples + samples.len() as u64;
        if total > self.decoded_samples_max {
            return Err(self.too_many(total, sample_rate, channels));
        }
        let frames = total / channels as u64;
        if frames > DURATION_S_MAX * u64::from(sample_rate) {
            return Err(ArtifactError::TooLong {
                frames,
                sample_rate,
            });
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(ArtifactError::NonFinite {
                index: (self.samples + i as u64) as usize,
            });
        }
        self.samples = total;
        let spec = StreamSpec {
            sample_rate,
            channels,
            first,
        };
        (self.sink)(spec, samples);
        Ok(())
    }

    /// The frames decoded, or why there were none.
    fn finish(self) -> Result<u64, ArtifactError> {
        match self.spec {
            Some((_, channels)) => Ok(self.samples / channels as u64),
            None => Err(ArtifactError::Empty),
        }
    }
}

/// Interleaved samples read from a WAV file per call of the sink.
const WAV_CHUNK_SAMPLES: usize = 1 << 16;

fn decode_source(
    mut source: Box<dyn MediaSource>,
    extension: Option<&str>,
    budget: &mut Budget,
) -> Result<(), ArtifactError> {
    let mut magic = [0u8; 4];
    let is_wav = source.read_exact(&mut magic).is_ok() && &magic == b"RIFF";
    let rewound = source.seek(SeekFrom::Start(0));
    rewound.map_err(|e| ArtifactError::Undecodable {
        reason: e.to_string(),
    })?;
    if is_wav {
        decode_wav(source, budget)
    } else {
        decode_with_symphonia(source, extension, budget)
    }
}

fn decode_wav(source: Box<dyn MediaSource>, budget: &mut Budget) -> Result<(), ArtifactError> {
    let undecodable = |e: hound::Error| ArtifactError::Undecodable {
        reason: e.to_string(),
    };
    let reader = hound::WavReader::new(BufReader::new(source)).map_err(undecodable)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    budget.declared(
        spec.sample_rate,
        channels,
        Some(u64::from(reader.duration())),
    )?;
    // Whole frames per chunk; a trailing partial frame is dropped.
    let chunk_samples = WAV_CHUNK_SAMPLES - WAV_CHUNK_SAMPLES % channels;
    let mut chunk = Vec::with_capacity(chunk_samples);
    let flush = |chunk: &mut Vec<f32>, budget: &mut Budget| {
        let whole = chunk.len() - chunk.len() % channels;
        let result = budget.frames(spec.sample_rate, channels, &chunk[..whole]);
        chunk.clear();
        result
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for sample in reader.into_samples::<f32>() {
                chunk.push(sample.map_err(undecodable)?);
                if chunk.len() == chunk_samples {
                    flush(&mut chunk, budget)?;
                }
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for sample in reader.into_samples::<i32>() {
                chunk.push(sample.map_err(undecodable)? as f32 * scale);
                if chunk.len() == chunk_samples {
                    flush(&mut chunk, budget)?;
                }
            }
        }
    }
    flush(&mut chunk, budget)
}

fn decode_with_symphonia(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    budget: &mut Budget,
) -> Result<(), ArtifactError> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let undecodable = |e: Error| ArtifactError::Undecodable {
        reason: e.to_string(),
    };
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = extension {
        hint.with_extension(extension);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(undecodable)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| ArtifactError::Undecodable {
            reason: "no audio track".into(),
        })?;
    let track_id = track.id;
    let sample_rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| ArtifactError::Undecodable {
            reason: "unknown sample rate".into(),
        })?;
    let channels = track.codec_params.channels.map(|c| c.count()).unwrap_or(0);
    budget.declared(sample_rate, channels.max(1), track.codec_params.n_frames)?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(undecodable)?;
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => return Err(undecodable(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(undecodable)?;
        let spec = *decoded.spec();
        let capacity = decoded.capacity() as u64;
        let buffer = match &mut buffer {
            Some(buffer) if buffer.capacity() as u64 >= capacity * spec.channels.count() as u64 => {
                buffer
            }
            slot => slot.insert(SampleBuffer::<f32>::new(capacity, spec)),
        };
        buffer.copy_interleaved_ref(decoded);
        budget.frames(sample_rate, spec.channels.count(), buffer.samples())?;
    }
    Ok(())
}

/// `audio` as a 32-bit float WAV file (lossless for the kernels' f32 output).
pub fn encode_wav(audio: &Audio) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: audio.channel_count() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut cursor = Cursor::new(Vec::new());
    {
        let mut writer =
            hound::WavWriter::new(&mut cursor, spec).expect("a WAV header fits in memory");
        for sample in audio.interleaved() {
            writer
                .write_sample(sample)
                .expect("writing to memory succeeds");
        }
        writer.finalize().expect("finalising in memory succeeds");
    }
    cursor.into_inner()
}

/// Writes `audio` to `path` as a 32-bit float WAV file.
pub fn write_wav_file(path: &Path, audio: &Audio) -> Result<(), ArtifactError> {
    let io = |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::create(path).map_err(io)?;
    file.write_all(&encode_wav(audio)).map_err(io)?;
    file.sync_all().map_err(io)
}

/// The Content Credentials issued for a published output, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// `sha256:<hex>` of the published output.
    pub output: String,
    /// `sha256:<hex>` of the distributed file: the output with `manifest`
    /// embedded.
    pub file: String,
    /// `sha256:<hex>` of the manifest store; `None` in a store that kept
    /// the whole distributed file instead.
    pub manifest: Option<String>,
}

/// The store in one data directory.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    root: PathBuf,
}

fn hex_of(hash: &str) -> Option<&str> {
    let hex = hash.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

impl ArtifactStore {
    /// Opens the store in `data_dir`, creating `artifacts/` on first use.
    pub fn open(data_dir: &Path) -> Result<ArtifactStore, ArtifactError> {
        let root = data_dir.join("artifacts");
        for dir in [
            root.join("sha256"),
            root.join("pcm"),
            root.join("credentialed"),
            root.join("distributed"),
        ] {
            fs::create_dir_all(&dir).map_err(|source| ArtifactError::Io { path: dir, source })?;
        }
        Ok(ArtifactStore { root })
    }

    fn file_path(&self, hex: &str) -> PathBuf {
        self.root.join("sha256").join(hex)
    }

    /// Writes `bytes` under `path` unless present, via a temporary file and a rename.
    fn put(&self, path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
        if path.exists() {
            return Ok(());
        }
        let io = |source| ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        };
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = fs::File::create(&temporary).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temporary, path).map_err(io)
    }

    fn store(&self, bytes: &[u8], audio: &Audio) -> Result<Artifact, ArtifactError> {
        let file_hash = file_hash(bytes);
        let pcm_hash = pcm_hash(audio);
        let path = self.file_path(hex_of(&file_hash).expect("own hash"));
        self.put(&path, bytes)?;
        let index = self
            .root
            .join("pcm")
            .join(hex_of(&pcm_hash).expect("own hash"));
        self.put(&index, file_hash.as_bytes())?;
        Ok(Artifact {
            file_hash,
            pcm_hash,
            sample_rate: audio.sample_rate,
            channels: audio.channel_count() as u16,
            frames: audio.frames() as u64,
            path,
        })
    }

    /// Validates and stores an input file; nothing is written if it is refused.
    pub fn ingest_file(&self, path: &Path) -> Result<Artifact, ArtifactError> {
        let bytes = fs::read(path).map_err(|e| ArtifactError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let audio = decode_bytes(&bytes, path.extension().and_then(|e| e.to_str()))?;
        self.store(&bytes, &audio)
    }

    /// Stores `audio` as a 32-bit float WAV.
    pub fn write_wav(&self, audio: &Audio) -> Result<Artifact, ArtifactError> {
        validate(audio)?;
        self.store(&encode_wav(audio), audio)
    }

    /// Stores bytes that are not audio (a trained voice model) by the
    /// SHA-256 of their bytes, and returns that `sha256:<hex>` hash.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, ArtifactError> {
        let hash = file_hash(bytes);
        self.put(&self.file_path(hex_of(&hash).expect("own hash")), bytes)?;
        Ok(hash)
    }

    /// Stores the Content Credentials issued for the published output
    /// `output_hash`: its manifest store (by its own hash), and indexes
    /// under `credentialed/<output hex>` the distributed file's hash and the
    /// manifest's, and under `distributed/<file hex>` the output's. The
    /// distributed file is the output with the manifest embedded
    /// ([`crate::credentials::embed`]); it is assembled when read, so the
    /// audio is stored once. A later issue replaces an earlier one: the
    /// newest is served. Returns the manifest store's hash.
    pub fn put_credentials(
        &self,
        output_hash: &str,
        manifest: &[u8],
        distributed_hash: &str,
    ) -> Result<String, ArtifactError> {
        self.path_of(output_hash)?;
        let output_hex = hex_of(output_hash).expect("path_of checked it");
        let distributed_hex = hex_of(distributed_hash)
            .ok_or_else(|| ArtifactError::NotFound(distributed_hash.to_string()))?;
        let manifest_hash = self.put_bytes(manifest)?;
        let index = self.root.join("credentialed").join(output_hex);
        if index.exists() {
            let _ = fs::remove_file(&index);
        }
        self.put(
            &index,
            format!("{distributed_hash}\n{manifest_hash}\n").as_bytes(),
        )?;
        let reverse = self.root.join("distributed").join(distributed_hex);
        self.put(&reverse, format!("{output_hash}\n").as_bytes())?;
        Ok(manifest_hash)
    }

    /// The credentials issued for a published output, looked up by the
    /// output's hash or by the distributed file's.
    pub fn credentials_of(&self, hash: &str) -> Option<IssuedCredentials> {
        let hex = hex_of(hash)?;
        let output = match fs::read_to_string(self.root.join("distributed").join(hex)) {
            Ok(text) => text.trim().to_string(),
            Err(_) => hash.to_string(),
        };
        let text =
            fs::read_to_string(self.root.join("credentialed").join(hex_of(&output)?)).ok()?;
        let mut lines = text.lines().map(str::trim);
        let file = lines.next().filter(|h| hex_of(h).is_some())?.to_string();
        // A store written before manifests were kept apart holds the whole
        // distributed file under its hash, and no manifest line.
        let manifest = lines
            .next()
            .filter(|h| hex_of(h).is_some())
            .map(str::to_string);
        Some(IssuedCredentials {
            output,
            file,
            manifest,
        })
    }

    /// The distributed file (the output with its Content Credentials) for
    /// a published output's hash or the distributed file's, or `None` when
    /// no credentials were issued for `hash`. Assembled from the output and
    /// its manifest store, each checked against its hash, and the result
    /// checked against the distributed file's logged hash.
    pub fn load_distributed(&self, hash: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        self.credentials_of(hash)
            .map(|issued| self.assemble(&issued))
            .transpose()
    }

    /// The distributed file of `issued`, checked against its hash.
    fn assemble(&self, issued: &IssuedCredentials) -> Result<Vec<u8>, ArtifactError> {
        let Some(manifest_hash) = &issued.manifest else {
            return self.load_bytes(&issued.file);
        };
        let output = self.load_bytes(&issued.output)?;
        let manifest = self.load_bytes(manifest_hash)?;
        let unreadable = |reason: String| ArtifactError::Unreadable {
            path: self.root.join("credentialed"),
            reason,
        };
        let file = crate::credentials::embed(&output, &manifest)
            .map_err(|e| unreadable(format!("the output {}: {e}", issued.output)))?;
        if file_hash(&file) != issued.file {
            return Err(unreadable(format!(
                "the output {} with its manifest {manifest_hash} is not the distributed file {}",
                issued.output, issued.file
            )));
        }
        Ok(file)
    }

    /// Writes the distributed file for `hash` (see [`Self::load_distributed`])
    /// into the store under its own hash, for a caller that wants it as a
    /// file, and returns where it is.
    pub fn write_distributed(&self, hash: &str) -> Result<PathBuf, ArtifactError> {
        let issued = self
            .credentials_of(hash)
            .ok_or_else(|| ArtifactError::NotFound(hash.to_string()))?;
        if let Ok(path) = self.path_of(&issued.file) {
            return Ok(path);
        }
        let bytes = self.assemble(&issued)?;
        let path = self.file_path(hex_of(&issued.file).expect("checked when read"));
        self.put(&path, &bytes)?;
        Ok(path)
    }

    /// Where the file with hash `hash` is stored; an error if it is not.
    pub fn path_of(&self, hash: &str) -> Result<PathBuf, ArtifactError> {
        let not_found = || ArtifactError::NotFound(hash.to_string());
        let path = self.file_path(hex_of(hash).ok_or_else(not_found)?);
        if path.exists() {
            Ok(path)
        } else {
            Err(not_found())
        }
    }

    /// The bytes stored under a file hash, checked against that hash.
    pub fn load_bytes(&self, hash: &str) -> Result<Vec<u8>, ArtifactError> {
        let not_found = || ArtifactError::NotFound(hash.to_string());
        let path = self.file_path(hex_of(hash).ok_or_else(not_found)?);
        let bytes = fs::read(&path).map_err(|_| not_found())?;
        if file_hash(&bytes) != hash {
            return Err(ArtifactError::Unreadable {
                path,
                reason: "the stored bytes no longer match their hash".into(),
            });
        }
        Ok(bytes)
    }

    /// Loads an artifact by its file hash or its PCM hash.
    pub fn load(&self, hash: &str) -> Result<(Artifact, Audio), ArtifactError> {
        let not_found = || ArtifactError::NotFound(hash.to_string());
        let hex = hex_of(hash).ok_or_else(not_found)?;
        let mut path = self.file_path(hex);
        if !path.exists() {
            let index = self.root.join("pcm").join(hex);
            let target = fs::read_to_string(&index).map_err(|_| not_found())?;
            path = self.file_path(hex_of(target.trim()).ok_or_else(not_found)?);
        }
        let bytes = fs::read(&path).map_err(|e| ArtifactError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let audio = decode_bytes(&bytes, None)?;
        let artifact = Artifact {
            file_hash: file_hash(&bytes),
            pcm_hash: pcm_hash(&audio),
            sample_rate: audio.sample_rate,
            channels: audio.channel_count() as u16,
            frames: audio.frames() as u64,
            path,
        };
        Ok((artifact, audio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm16_wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        cursor.into_inner()
    }

    fn stored_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("artifacts/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    #[test]
    fn a_rewrapped_file_keeps_its_pcm_hash_and_both_hashes_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let samples: Vec<i16> = (0..2000).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
        let input = dir.path().join("in.wav");
        fs::write(&input, pcm16_wav(44_100, 2, &samples)).unwrap();
        let first = store.ingest_file(&input).unwrap();
        assert_eq!(
            (first.sample_rate, first.channels, first.frames),
            (44_100, 2, 1000)
        );
        assert_eq!(first.file_hash, file_hash(&fs::read(&input).unwrap()));

        // The same PCM as a float WAV: new file hash, same PCM hash.
        let (_, audio) = store.load(&first.file_hash).unwrap();
        let second = store.write_wav(&audio).unwrap();
        assert_ne!(first.file_hash, second.file_hash);
        assert_eq!(first.pcm_hash, second.pcm_hash);
        let (by_pcm, _) = store.load(&first.pcm_hash).unwrap();
        assert_eq!(by_pcm.pcm_hash, first.pcm_hash);
        assert!(matches!(
            store.load("sha256:00"),
            Err(ArtifactError::NotFound(_))
        ));
    }

    #[test]
    fn the_pcm_hash_covers_rate_channels_and_samples() {
        let a = Audio::new(44_100, vec![vec![0.5, -0.5]]);
        let mut expected = Sha256::new();
        expected.update(44_100u32.to_le_bytes());
        expected.update(1u16.to_le_bytes());
        expected.update(0.5f32.to_le_bytes());
        expected.update((-0.5f32).to_le_bytes());
        assert_eq!(
            pcm_hash(&a),
            format!("sha256:{}", hex::encode(expected.finalize()))
        );
        assert_ne!(
            pcm_hash(&a),
            pcm_hash(&Audio::new(48_000, vec![vec![0.5, -0.5]]))
        );
    }

    #[test]
    fn bad_inputs_are_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage.wav", b"RIFF not really a wave file".to_vec()),
            ("garbage.mp3", vec![0x42; 4096]),
            ("empty.wav", pcm16_wav(44_100, 1, &[])),
            ("slow.wav", pcm16_wav(4_000, 1, &[1, 2, 3])),
            ("fast.wav", pcm16_wav(384_000, 1, &[1, 2, 3])),
            (
                "nan.wav",
                encode_wav(&Audio::new(44_100, vec![vec![0.0, f32::NAN]])),
            ),
            (
                "inf.wav",
                encode_wav(&Audio::new(44_100, vec![vec![f32::INFINITY]])),
            ),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            fs::write(&path, bytes).unwrap();
            let error = store.ingest_file(&path).expect_err(name);
            assert!(!error.to_string().is_empty());
        }
        assert!(matches!(
            store.ingest_file(&dir.path().join("missing.wav")),
            Err(ArtifactError::Unreadable { .. })
        ));
        assert_eq!(stored_files(dir.path()), 0);
    }

    #[test]
    fn bytes_are_stored_by_hash_and_checked_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let hash = store.put_bytes(b"LLVOICE\0 model").unwrap();
        assert_eq!(hash, file_hash(b"LLVOICE\0 model"));
        assert_eq!(store.load_bytes(&hash).unwrap(), b"LLVOICE\0 model");
        fs::write(store.file_path(hex_of(&hash).unwrap()), b"other").unwrap();
        assert!(matches!(
            store.load_bytes(&hash),
            Err(ArtifactError::Unreadable { .. })
        ));
        assert!(matches!(
            store.load_bytes(&file_hash(b"never stored")),
            Err(ArtifactError::NotFound(_))
        ));
    }

    #[test]
    fn a_distributed_file_is_assembled_from_its_output_and_manifest_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let output = store
            .write_wav(&Audio::new(8_000, vec![vec![0.25; 800]]))
            .unwrap();
        let wav = store.load_bytes(&output.file_hash).unwrap();
        let manifest = b"a manifest store".to_vec();
        let distributed = crate::credentials::embed(&wav, &manifest).unwrap();
        let distributed_hash = file_hash(&distributed);
        assert_eq!(store.load_distributed(&output.file_hash).unwrap(), None);
        let manifest_hash = store
            .put_credentials(&output.file_hash, &manifest, &distributed_hash)
            .unwrap();
        assert_eq!(manifest_hash, file_hash(&manifest));

        // Found by either hash; the audio is stored once.
        for hash in [&output.file_hash, &distributed_hash] {
            let issued = store.credentials_of(hash).unwrap();
            assert_eq!(issued.file, distributed_hash);
            assert_eq!(issued.manifest.as_deref(), Some(manifest_hash.as_str()));
            assert_eq!(store.load_distributed(hash).unwrap().unwrap(), distributed);
        }
        assert!(store.path_of(&distributed_hash).is_err());
        let path = store.write_distributed(&output.file_hash).unwrap();
        assert_eq!(fs::read(&path).unwrap(), distributed);

        // A stored manifest that no longer matches its hash is refused, not
        // served.
        fs::write(store.file_path(hex_of(&manifest_hash).unwrap()), b"forged").unwrap();
        assert!(matches!(
            store.load_distributed(&output.file_hash),
            Err(ArtifactError::Unreadable { .. })
        ));
        // An output with a recorded file hash it does not assemble to is
        // refused too.
        let other = store.put_bytes(b"another manifest").unwrap();
        let index = dir
            .path()
            .join("artifacts/credentialed")
            .join(hex_of(&output.file_hash).unwrap());
        fs::write(&index, format!("{distributed_hash}\n{other}\n")).unwrap();
        let error = store.load_distributed(&output.file_hash).unwrap_err();
        assert!(
            error.to_string().contains("is not the distributed file"),
            "{error}"
        );
    }

    #[test]
    fn over_twenty_minutes_is_refused_from_the_header() {
        // 8 kHz mono, 20 min + 1 s of 16-bit silence: 19.2 MB, refused before decoding.
        let frames = (DURATION_S_MAX + 1) as usize * 8_000;
        let bytes = pcm16_wav(8_000, 1, &vec![0; frames]);
        assert!(matches!(
            decode_bytes(&bytes, Some("wav")),
            Err(ArtifactError::TooLong { .. })
        ));
    }
}
