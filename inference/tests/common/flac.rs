//! A minimal FLAC encoder (RFC 9639) for tests: every frame holds one
//! CONSTANT subframe per channel (section 9.2.2), so a file of a few
//! kilobytes can decode to as many samples as a test needs, and its
//! STREAMINFO may declare the true total or none at all (0, "unknown").

#![allow(dead_code)]

/// What the file decodes to.
pub struct ConstantFlac {
    pub sample_rate: u32,
    /// 1 to 8.
    pub channels: u8,
    /// Frames per FLAC frame (block), 16 to 65535.
    pub block_frames: u16,
    /// FLAC frames (blocks) in the file.
    pub blocks: u64,
    /// The 16-bit value every sample holds.
    pub value: i16,
    /// Whether STREAMINFO states the total frames (else 0, "unknown").
    pub declares_total: bool,
}

impl ConstantFlac {
    /// Total frames (samples per channel) the file decodes to.
    pub fn frames(&self) -> u64 {
        self.blocks * u64::from(self.block_frames)
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        // METADATA_BLOCK_HEADER: last block, type 0 (STREAMINFO), 34 bytes.
        out.extend_from_slice(&[0x80, 0, 0, 34]);
        let mut info = Bits::default();
        info.put(u64::from(self.block_frames), 16);
        info.put(u64::from(self.block_frames), 16);
        info.put(0, 24); // minimum frame size: unknown
        info.put(0, 24); // maximum frame size: unknown
        info.put(u64::from(self.sample_rate), 20);
        info.put(u64::from(self.channels - 1), 3);
        info.put(15, 5); // 16 bits per sample
        let total = if self.declares_total {
            self.frames()
        } else {
            0
        };
        info.put(total, 36);
        out.extend_from_slice(&info.into_bytes());
        out.extend_from_slice(&[0; 16]); // MD5 of the audio: unknown
        for block in 0..self.blocks {
            out.extend_from_slice(&self.frame(block));
        }
        out
    }

    /// FLAC frame number `block` (fixed block size), CRCs included.
    fn frame(&self, block: u64) -> Vec<u8> {
        let mut header = Bits::default();
        header.put(0b11_1111_1111_1110, 14); // sync code
        header.put(0, 1); // reserved
        header.put(0, 1); // fixed block size
        header.put(0b0111, 4); // block size: 16 bits after the frame number
        header.put(0b0000, 4); // sample rate: from STREAMINFO
        header.put(u64::from(self.channels - 1), 4); // independent channels
        header.put(0b100, 3); // 16 bits per sample
        header.put(0, 1); // reserved
        let mut bytes = header.into_bytes();
        coded_number(block, &mut bytes);
        bytes.extend_from_slice(&(self.block_frames - 1).to_be_bytes());
        bytes.push(crc8(&bytes));
        let mut subframes = Bits::default();
        for _ in 0..self.channels {
            subframes.put(0, 1); // padding
            subframes.put(0, 6); // CONSTANT
            subframes.put(0, 1); // no wasted bits
            subframes.put(u64::from(self.value as u16), 16);
        }
        bytes.extend_from_slice(&subframes.into_bytes());
        let crc = crc16(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }
}

/// A big-endian bit writer, zero-padded to a byte boundary at the end.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    pending: u64,
    pending_bits: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        for i in (0..bits).rev() {
            self.pending = (self.pending << 1) | ((value >> i) & 1);
            self.pending_bits += 1;
            if self.pending_bits == 8 {
                self.bytes.push(self.pending as u8);
                self.pending = 0;
                self.pending_bits = 0;
            }
        }
    }

    fn into_bytes(mut self) -> Vec<u8> {
        if self.pending_bits > 0 {
            let pad = 8 - self.pending_bits;
            self.put(0, pad);
        }
        self.bytes
    }
}

/// The frame number in FLAC's UTF-8-like coding (RFC 9639 section 9.1.5).
fn coded_number(n: u64, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    let mut continuation = 1u32;
    while n >= 1u64 << (6 * continuation + (6 - continuation)) {
        continuation += 1;
    }
    let lead = !(0xffu8 >> (continuation + 1));
    let payload_bits = 6 - continuation;
    let high = (n >> (6 * continuation)) as u8 & ((1u16 << payload_bits) - 1) as u8;
    out.push(lead | high);
    for i in (0..continuation).rev() {
        out.push(0x80 | ((n >> (6 * i)) & 0x3f) as u8);
    }
}

/// CRC-8, polynomial x^8 + x^2 + x + 1, initial 0 (the frame header's).
fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// CRC-16, polynomial x^16 + x^15 + x^2 + 1, initial 0 (the frame's).
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
    }
    crc
}
