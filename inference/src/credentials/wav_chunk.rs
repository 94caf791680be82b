//! Where a manifest store sits in a WAV file, and the bytes around it.
//!
//! C2PA embeds a manifest store in a RIFF file as a top-level chunk with
//! the id `C2PA` (C2PA 2.x, "Embedding manifests into RIFF-based
//! formats"). We append that chunk after the file's last chunk and patch
//! the RIFF size, exactly as the `c2pa` crate's own RIFF writer lays it
//! out, but without copying the audio: the distributed file is
//!
//! ```text
//! "RIFF" <new size> <the WAV from byte 8 on> "C2PA" <manifest length> <manifest> [pad]
//! ```
//!
//! so it is fully determined by the stored output and its manifest store.
//! The hard binding excludes the chunk (header and manifest, not the pad
//! byte RIFF puts after an odd-length chunk), as the crate's reader expects.

use super::CredentialsError;

/// The id of the chunk that holds a C2PA manifest store.
const CHUNK_ID: &[u8; 4] = b"C2PA";
/// A RIFF chunk header: four-byte id, then the data's length (u32, LE).
const CHUNK_HEADER_LEN: u64 = 8;

/// The layout of a WAV of `wav_len` bytes with a manifest store of
/// `manifest_len` bytes appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    wav_len: u64,
    manifest_len: u64,
}

impl Layout {
    /// Checks that `wav` is a whole RIFF `WAVE` file (its chunks tile it
    /// exactly, as its RIFF size says) with no manifest store yet, and that
    /// the file with a manifest of `manifest_len` bytes still fits RIFF's
    /// 32-bit sizes.
    pub fn new(wav: &[u8], manifest_len: usize) -> Result<Layout, CredentialsError> {
        let malformed =
            |why: &str| CredentialsError::Unsupported(format!("not a whole WAV file: {why}"));
        if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
            return Err(malformed("no RIFF WAVE header"));
        }
        let riff_size = u64::from(u32::from_le_bytes(wav[4..8].try_into().expect("4 bytes")));
        if riff_size + 8 != wav.len() as u64 {
            return Err(malformed(&format!(
                "its RIFF size says {} bytes, it holds {}",
                riff_size + 8,
                wav.len()
            )));
        }
        let mut offset = 12u64;
        while offset < wav.len() as u64 {
            let at = offset as usize;
            if wav.len() - at < CHUNK_HEADER_LEN as usize {
                return Err(malformed(&format!("a truncated chunk header at byte {at}")));
            }
            if &wav[at..at + 4] == CHUNK_ID {
                return Err(CredentialsError::Unsupported(
                    "the file already carries a C2PA manifest store".into(),
                ));
            }
            let len = u64::from(u32::from_le_bytes(
                wav[at + 4..at + 8].try_into().expect("4 bytes"),
            ));
            offset += CHUNK_HEADER_LEN + len + (len & 1);
        }
        if offset != wav.len() as u64 {
            return Err(malformed("its last chunk runs past the end of the file"));
        }
        let layout = Layout {
            wav_len: wav.len() as u64,
            manifest_len: manifest_len as u64,
        };
        if layout.file_len() - 8 > u64::from(u32::MAX) {
            return Err(CredentialsError::Unsupported(
                "the file with its manifest would exceed RIFF's 4 GiB".into(),
            ));
        }
        Ok(layout)
    }

    /// Length of the distributed file.
    pub fn file_len(&self) -> u64 {
        self.wav_len + CHUNK_HEADER_LEN + self.manifest_len + (self.manifest_len & 1)
    }

    /// The distributed file's first 8 bytes: `RIFF` and its new size. The
    /// file goes on with the WAV from byte 8.
    pub fn riff_header(&self) -> [u8; 8] {
        let size = u32::try_from(self.file_len() - 8).expect("checked in new");
        chunk_header(b"RIFF", size)
    }

    /// The manifest chunk's header, at the end of the WAV.
    pub fn manifest_chunk_header(&self) -> [u8; 8] {
        let len = u32::try_from(self.manifest_len).expect("checked in new");
        chunk_header(CHUNK_ID, len)
    }

    /// The pad byte RIFF puts after a chunk of odd length: the file's last
    /// byte, if any. The hard binding covers it.
    pub fn pad(&self) -> &'static [u8] {
        if self.manifest_len & 1 == 1 {
            &[0]
        } else {
            &[]
        }
    }

    /// The bytes the hard binding leaves out, as (start, length): the
    /// manifest chunk's header and data.
    pub fn exclusion(&self) -> (u64, u64) {
        (self.wav_len, CHUNK_HEADER_LEN + self.manifest_len)
    }

    /// The distributed file, whole.
    pub fn assemble(&self, wav: &[u8], manifest: &[u8]) -> Vec<u8> {
        assert_eq!(
            manifest.len() as u64,
            self.manifest_len,
            "the manifest laid out"
        );
        let mut file = Vec::with_capacity(self.file_len() as usize);
        file.extend_from_slice(&self.riff_header());
        file.extend_from_slice(&wav[8..]);
        file.extend_from_slice(&self.manifest_chunk_header());
        file.extend_from_slice(manifest);
        file.extend_from_slice(self.pad());
        file
    }
}

fn chunk_header(id: &[u8; 4], len: u32) -> [u8; 8] {
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(id);
    header[4..].copy_from_slice(&len.to_le_bytes());
    header
}

/// `wav` with `manifest` embedded: the distributed file.
pub fn embed(wav: &[u8], manifest: &[u8]) -> Result<Vec<u8>, CredentialsError> {
    Ok(Layout::new(wav, manifest.len())?.assemble(wav, manifest))
}
