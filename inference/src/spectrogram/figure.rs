//! The figure around a spectrogram plot: a title, a time axis in seconds
//! and a frequency axis in Hz (log scale) with ticks and labels, and a
//! colour scale in dB. Text is drawn from the public-domain 8×8 bitmap font
//! of the `font8x8` crate, so the image needs no font files.

use super::{magma, position_of, DYNAMIC_RANGE_DB, LOWEST_HZ};
use crate::audio::Audio;

/// Margins around the plot, pixels.
const LEFT: usize = 40;
const RIGHT: usize = 64;
const TOP: usize = 22;
const BOTTOM: usize = 26;
/// How much wider and taller the figure is than its plot.
pub const MARGIN_PX: (u32, u32) = ((LEFT + RIGHT) as u32, (TOP + BOTTOM) as u32);

const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [34, 34, 34];
const GLYPH_PX: usize = 8;
const TICK_PX: usize = 4;
/// The colour bar: its gap from the plot and its width.
const BAR_GAP: usize = 8;
const BAR_WIDTH: usize = 12;

/// Frequencies that get a tick, with their labels.
const FREQUENCY_TICKS: [(f64, &str); 10] = [
    (20.0, "20"),
    (50.0, "50"),
    (100.0, "100"),
    (200.0, "200"),
    (500.0, "500"),
    (1_000.0, "1k"),
    (2_000.0, "2k"),
    (5_000.0, "5k"),
    (10_000.0, "10k"),
    (20_000.0, "20k"),
];

/// An RGB canvas, row-major, top row first.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// `text` with its top-left corner at (`x`, `y`); characters outside
    /// printable ASCII are drawn as `?`.
    fn text(&mut self, x: usize, y: usize, text: &str) {
        for (i, c) in text.chars().enumerate() {
            let code = if c.is_ascii_graphic() || c == ' ' {
                c as usize
            } else {
                usize::from(b'?')
            };
            let glyph = font8x8::legacy::BASIC_LEGACY[code];
            for (row, bits) in glyph.iter().enumerate() {
                for column in 0..GLYPH_PX {
                    if bits & (1 << column) != 0 {
                        self.set(x + i * GLYPH_PX + column, y + row, INK);
                    }
                }
            }
        }
    }

    /// `text` ending at `right`, its middle at `middle_y`.
    fn text_right(&mut self, right: usize, middle_y: usize, text: &str) {
        let width = text.chars().count() * GLYPH_PX;
        self.text(
            right.saturating_sub(width),
            middle_y.saturating_sub(GLYPH_PX / 2),
            text,
        );
    }
}

/// A tick step for `span` seconds giving about six ticks: 1, 2 or 5 times
/// a power of ten.
fn time_step(span: f64) -> f64 {
    let rough = (span / 6.0).max(1e-3);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// A time label with as many decimals as the step needs.
fn time_label(t: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{t:.decimals$}")
}

/// The figure around `plot` (`width × height` RGB, as
/// [`super::render_rgb`] draws it) for `audio`, as RGB bytes with its
/// width and height.
pub fn compose(
    plot: &[u8],
    width: u32,
    height: u32,
    audio: &Audio,
    title: &str,
) -> (Vec<u8>, u32, u32) {
    let (w, h) = (width as usize, height as usize);
    let mut canvas = Canvas {
        width: LEFT + w + RIGHT,
        height: TOP + h + BOTTOM,
        pixels: BACKGROUND.repeat((LEFT + w + RIGHT) * (TOP + h + BOTTOM)),
    };
    for y in 0..h {
        let row = &plot[y * w * 3..(y + 1) * w * 3];
        let start = ((TOP + y) * canvas.width + LEFT) * 3;
        canvas.pixels[start..start + w * 3].copy_from_slice(row);
    }
    // The title, cut short of the colour scale's unit, and the axes' units.
    let room = (w + BAR_GAP).saturating_sub(GLYPH_PX) / GLYPH_PX;
    canvas.text(LEFT, 7, &title.chars().take(room).collect::<String>());
    canvas.text(4, 7, "Hz");
    // Axis lines along the plot's left and bottom edges.
    for y in TOP..TOP + h {
        canvas.set(LEFT - 1, y, INK);
    }
    for x in LEFT - 1..LEFT + w {
        canvas.set(x, TOP + h, INK);
    }

    // Frequency ticks, from the bottom; a label that would overlap the one
    // below it is left out.
    let mut last_label_y = usize::MAX;
    for (hz, label) in FREQUENCY_TICKS {
        if hz < LOWEST_HZ || hz > f64::from(audio.sample_rate) / 2.0 {
            continue;
        }
        let from_bottom = position_of(hz, audio.sample_rate) * (h as f64 - 1.0);
        let y = TOP + h - 1 - (from_bottom.round() as usize).min(h - 1);
        for x in LEFT - 1 - TICK_PX..LEFT - 1 {
            canvas.set(x, y, INK);
        }
        if last_label_y >= y + GLYPH_PX + 2 {
            canvas.text_right(LEFT - 2 - TICK_PX, y, label);
            last_label_y = y;
        }
    }

    // Time ticks along the bottom, in seconds.
    let seconds = audio.frames() as f64 / f64::from(audio.sample_rate);
    let step = time_step(seconds);
    let mut last_label_end = 0;
    let mut tick = 0;
    loop {
        let t = tick as f64 * step;
        if t > seconds + 1e-9 {
            break;
        }
        let x = LEFT + ((t / seconds) * (w as f64 - 1.0)).round() as usize;
        for y in TOP + h + 1..TOP + h + 1 + TICK_PX {
            canvas.set(x, y, INK);
        }
        let label = time_label(t, step);
        let label_width = label.len() * GLYPH_PX;
        let left = x.saturating_sub(label_width / 2);
        if tick == 0 || left >= last_label_end + GLYPH_PX {
            canvas.text(left, TOP + h + 2 + TICK_PX, &label);
            last_label_end = left + label_width;
        }
        tick += 1;
    }
    // The unit after the last label, clear of it.
    let unit_x = (LEFT + w + 4).max(last_label_end + 4);
    canvas.text(unit_x, TOP + h + 2 + TICK_PX, "s");

    // The colour scale: 0 dB at the top, the bottom of the range below.
    let bar = LEFT + w + BAR_GAP;
    for y in 0..h {
        let t = 1.0 - y as f32 / (h.max(2) - 1) as f32;
        for x in bar..bar + BAR_WIDTH {
            canvas.set(x, TOP + y, magma(t));
        }
    }
    canvas.text(bar, 7, "dB");
    let mut last_label_y = None;
    for db in (0..=DYNAMIC_RANGE_DB as i32).step_by(20) {
        let y = TOP + (db as f32 / DYNAMIC_RANGE_DB * (h.max(2) - 1) as f32).round() as usize;
        if last_label_y.is_none_or(|last| y >= last + GLYPH_PX + 2) {
            let label = if db == 0 {
                "0".to_string()
            } else {
                format!("-{db}")
            };
            canvas.text(bar + BAR_WIDTH + 4, y.saturating_sub(GLYPH_PX / 2), &label);
            last_label_y = Some(y);
        }
    }
    let (width, height) = (canvas.width as u32, canvas.height as u32);
    (canvas.pixels, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_steps_are_one_two_or_five_times_a_power_of_ten() {
        for (span, step) in [
            (180.0, 50.0),
            (1.5, 0.5),
            (10.0, 2.0),
            (0.1, 0.02),
            (60.0, 10.0),
        ] {
            assert!(
                (time_step(span) - step).abs() < 1e-9,
                "{span} s: {}",
                time_step(span)
            );
        }
        assert_eq!(time_label(1.5, 0.5), "1.5");
        assert_eq!(time_label(100.0, 50.0), "100");
        assert_eq!(time_label(0.04, 0.02), "0.04");
    }

    #[test]
    fn the_figure_carries_the_plot_labels_and_the_colour_scale() {
        let (w, h) = (200usize, 120usize);
        let plot = [10u8, 20, 30].repeat(w * h);
        let audio = Audio::new(44_100, vec![vec![0.0; 44_100 * 3]]);
        let (pixels, width, height) = compose(&plot, w as u32, h as u32, &audio, "tone");
        assert_eq!(
            (width, height),
            (w as u32 + MARGIN_PX.0, h as u32 + MARGIN_PX.1)
        );
        let at = |x: usize, y: usize| {
            let i = (y * width as usize + x) * 3;
            [pixels[i], pixels[i + 1], pixels[i + 2]]
        };
        // The plot sits inside the margins, untouched.
        assert_eq!(at(LEFT, TOP), [10, 20, 30]);
        assert_eq!(at(LEFT + w - 1, TOP + h - 1), [10, 20, 30]);
        // The colour bar runs from magma's top at 0 dB to its bottom.
        let bar = LEFT + w + BAR_GAP + 1;
        assert_eq!(at(bar, TOP), [252, 253, 191]);
        assert_eq!(at(bar, TOP + h - 1), [0, 0, 4]);
        // Ink where the labels go: the title, the frequency labels left of
        // the axis, the time labels below it.
        let inked = |x0: usize, x1: usize, y0: usize, y1: usize| {
            (y0..y1).any(|y| (x0..x1).any(|x| at(x, y) == INK))
        };
        assert!(inked(LEFT, LEFT + 32, 7, 15), "title");
        assert!(
            inked(0, LEFT - 2 - TICK_PX, TOP, TOP + h),
            "frequency labels"
        );
        assert!(
            inked(
                LEFT,
                LEFT + w,
                TOP + h + 2 + TICK_PX,
                TOP + h + 2 + TICK_PX + 8
            ),
            "time labels"
        );
        // The 1 kHz tick sits where the log scale puts 1 kHz.
        let y = TOP + h - 1 - (position_of(1_000.0, 44_100) * (h as f64 - 1.0)).round() as usize;
        assert_eq!(at(LEFT - 2, y), INK);
    }
}
