//! Decoded audio as the kernels see it: planar f32 channels at one rate.

/// Planar PCM: `channels[c][i]` is sample `i` of channel `c`, nominally in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Builds planar audio; every channel must have the same length.
    pub fn new(sample_rate: u32, channels: Vec<Vec<f32>>) -> Audio {
        assert!(!channels.is_empty(), "audio has at least one channel");
        let frames = channels[0].len();
        assert!(
            channels.iter().all(|c| c.len() == frames),
            "all channels have the same length"
        );
        Audio {
            sample_rate,
            channels,
        }
    }

    /// De-interleaves `samples` (frame-major, as WAV stores them).
    pub fn from_interleaved(sample_rate: u32, channel_count: usize, samples: &[f32]) -> Audio {
        assert!(channel_count > 0 && samples.len() % channel_count == 0);
        let channels = (0..channel_count)
            .map(|c| {
                samples
                    .iter()
                    .skip(c)
                    .step_by(channel_count)
                    .copied()
                    .collect()
            })
            .collect();
        Audio::new(sample_rate, channels)
    }

    pub fn interleaved(&self) -> Vec<f32> {
        let count = self.channel_count();
        let mut out = vec![0.0; self.frames() * count];
        // One strided pass per channel: a per-frame iterator over the
        // channels costs more than the copy itself on minutes of audio.
        for (c, channel) in self.channels.iter().enumerate() {
            for (slot, &sample) in out[c..].iter_mut().step_by(count).zip(channel) {
                *slot = sample;
            }
        }
        out
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.channels[0].len()
    }

    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}
