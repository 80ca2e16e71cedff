//! Traffic-signal phase from a lamp head's pixels: pure, on the decoded RGB frame, with
//! hysteresis on stream time so one glare-washed or half-lit frame does not flip the phase.
//!
//! A lit lamp is bright and saturated; glare and sky are bright but washed out (low
//! saturation), the dark housing is neither. So the classifier counts, inside the lamp's
//! region, the bright saturated pixels of each lamp colour (red, amber, green by hue) and
//! calls the colour that dominates — by colour, not by position, so a countdown display of
//! the same colour beside the lamp agrees with it and the head's layout does not matter.

use std::time::Duration;

use crate::analytics::signals::SignalPhase;
use crate::frame::{FrameView, PixelFormat};

/// A lamp head in the image.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSpec {
    pub id: String,
    /// `[x0, y0, x1, y1]`, normalised.
    pub region: [f32; 4],
}

/// Thresholds of the pixel test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampThresholds {
    /// A lit pixel: value (max channel) at least this…
    pub min_value: u8,
    /// …and saturation (1 − min/max) at least this.
    pub min_saturation: f32,
    /// A phase needs this share of the region's pixels lit in its colour…
    pub min_lit_fraction: f32,
    /// …and this many times the next colour's.
    pub dominance: f32,
}

impl Default for LampThresholds {
    fn default() -> Self {
        // Tuned on the shared clips' hand-labelled lamps (samples/*.signals.toml): small,
        // distant lamps wash out towards white, so saturation 0.2 (not 0.45) and 0.2 % of the
        // region lit; red blooms towards orange, so red runs to 25° of hue.
        LampThresholds { min_value: 150, min_saturation: 0.2, min_lit_fraction: 0.002, dominance: 2.0 }
    }
}

/// Lit pixels of each colour in one look at the lamp.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LampReading {
    pub red: u32,
    pub amber: u32,
    pub green: u32,
    pub pixels: u32,
}

impl LampReading {
    pub fn phase(&self, t: &LampThresholds) -> SignalPhase {
        let mut colours = [(self.red, SignalPhase::Red), (self.amber, SignalPhase::Amber), (self.green, SignalPhase::Green)];
        colours.sort_by_key(|c| std::cmp::Reverse(c.0));
        let (best, phase) = colours[0];
        let second = colours[1].0;
        let enough = best > 0 && best as f32 >= t.min_lit_fraction * self.pixels as f32;
        if enough && best as f32 >= t.dominance * second as f32 {
            phase
        } else {
            SignalPhase::Unknown
        }
    }
}

/// Hue in degrees of an RGB pixel (only meaningful when saturated).
fn hue(r: f32, g: f32, b: f32, max: f32, min: f32) -> f32 {
    let d = (max - min).max(1e-6);
    let h = if max == r {
        60.0 * ((g - b) / d)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    if h < 0.0 {
        h + 360.0
    } else {
        h
    }
}

/// Counts the lit pixels of each colour in `region` of `frame`.
pub fn read_lamp(frame: &FrameView<'_>, region: [f32; 4], t: &LampThresholds) -> LampReading {
    let PixelFormat::Rgb = frame.format;
    let (w, h) = (frame.width as f32, frame.height as f32);
    let x0 = (region[0].clamp(0.0, 1.0) * w) as u32;
    let y0 = (region[1].clamp(0.0, 1.0) * h) as u32;
    let x1 = ((region[2].clamp(0.0, 1.0) * w).ceil() as u32).min(frame.width);
    let y1 = ((region[3].clamp(0.0, 1.0) * h).ceil() as u32).min(frame.height);
    let Some(view) = frame.crop(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)) else {
        return LampReading::default();
    };
    let mut out = LampReading { pixels: view.width * view.height, ..Default::default() };
    for y in 0..view.height {
        for px in view.row(y).chunks_exact(3) {
            let (r, g, b) = (px[0], px[1], px[2]);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            if max < t.min_value || (1.0 - min as f32 / max as f32) < t.min_saturation {
                continue;
            }
            match hue(r as f32, g as f32, b as f32, max as f32, min as f32) {
                h if !(25.0..330.0).contains(&h) => out.red += 1,
                h if h < 70.0 => out.amber += 1,
                h if (75.0..210.0).contains(&h) => out.green += 1,
                _ => {}
            }
        }
    }
    out
}

/// One lamp's phase over time: a new phase is taken once it has been read for `hold` of
/// stream time without interruption; `Unknown` readings (glare, a blink, an LED lamp aliasing
/// with the camera's frame rate) keep the phase — until nothing has been read for
/// [`UNKNOWN_AFTER`] (a dark or hidden lamp), when the phase becomes `Unknown`.
#[derive(Debug, Clone)]
pub struct LampTracker {
    pub spec: SignalSpec,
    thresholds: LampThresholds,
    hold: Duration,
    phase: SignalPhase,
    candidate: Option<(SignalPhase, Duration)>,
    /// When a lamp colour was last read.
    last_read: Duration,
}

/// Nothing read for this long: the phase is unknown.
pub const UNKNOWN_AFTER: Duration = Duration::from_secs(5);

/// Default hysteresis: a phase must be read this long before it is believed.
pub const DEFAULT_HOLD: Duration = Duration::from_millis(300);

impl LampTracker {
    pub fn new(spec: SignalSpec) -> Self {
        LampTracker {
            spec,
            thresholds: LampThresholds::default(),
            hold: DEFAULT_HOLD,
            phase: SignalPhase::Unknown,
            candidate: None,
            last_read: Duration::ZERO,
        }
    }

    pub fn phase(&self) -> SignalPhase {
        self.phase
    }

    /// Reads the lamp on one frame at stream time `t`; `Some(phase)` when the phase changed.
    pub fn observe(&mut self, frame: &FrameView<'_>, t: Duration) -> Option<SignalPhase> {
        let reading = read_lamp(frame, self.spec.region, &self.thresholds).phase(&self.thresholds);
        self.step(reading, t)
    }

    /// The hysteresis on one reading.
    pub fn step(&mut self, reading: SignalPhase, t: Duration) -> Option<SignalPhase> {
        if reading == SignalPhase::Unknown {
            if self.phase != SignalPhase::Unknown && t.saturating_sub(self.last_read) >= UNKNOWN_AFTER {
                self.phase = SignalPhase::Unknown;
                self.candidate = None;
                return Some(SignalPhase::Unknown);
            }
            return None;
        }
        self.last_read = t;
        if reading == self.phase {
            self.candidate = None;
            return None;
        }
        let since = match self.candidate {
            Some((p, since)) if p == reading => since,
            _ => {
                self.candidate = Some((reading, t));
                t
            }
        };
        if t.saturating_sub(since) >= self.hold || self.phase == SignalPhase::Unknown && t.saturating_sub(since) >= self.hold / 2 {
            self.phase = reading;
            self.candidate = None;
            return Some(reading);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40 × 90 dark housing with three lamps; `lit` (0 red, 1 amber, 2 green) glows.
    fn lamp(lit: usize, glare: bool) -> Vec<u8> {
        let (w, h) = (40usize, 90usize);
        let mut px = vec![20u8; w * h * 3];
        let colours = [[230u8, 40, 30], [240, 170, 20], [40, 220, 120]];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) * 3;
                let (cx, cy) = (20.0, 15.0 + 30.0 * lit as f32);
                if ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() < 10.0 {
                    px[i..i + 3].copy_from_slice(&colours[lit]);
                }
                if glare && y < 30 && x > 25 {
                    px[i..i + 3].copy_from_slice(&[250, 250, 245]);
                }
            }
        }
        px
    }

    #[test]
    fn each_lit_lamp_reads_as_its_colour_and_glare_does_not_count() {
        for (lit, want) in [(0, SignalPhase::Red), (1, SignalPhase::Amber), (2, SignalPhase::Green)] {
            for glare in [false, true] {
                let px = lamp(lit, glare);
                let f = FrameView::rgb(40, 90, 120, &px).expect("view");
                let r = read_lamp(&f, [0.0, 0.0, 1.0, 1.0], &LampThresholds::default());
                assert_eq!(r.phase(&LampThresholds::default()), want, "lamp {lit} glare {glare}: {r:?}");
            }
        }
        let dark = vec![20u8; 40 * 90 * 3];
        let f = FrameView::rgb(40, 90, 120, &dark).expect("view");
        assert_eq!(read_lamp(&f, [0.0, 0.0, 1.0, 1.0], &LampThresholds::default()).phase(&LampThresholds::default()), SignalPhase::Unknown);
    }

    #[test]
    fn hysteresis_needs_a_steady_reading_and_ignores_unknown() {
        let spec = SignalSpec { id: "s".into(), region: [0.0, 0.0, 1.0, 1.0] };
        let mut l = LampTracker::new(spec);
        let ms = Duration::from_millis;
        assert_eq!(l.step(SignalPhase::Red, ms(0)), None);
        assert_eq!(l.step(SignalPhase::Red, ms(160)), Some(SignalPhase::Red), "the first phase needs half the hold");
        // One green frame, unknowns, then red again: still red.
        assert_eq!(l.step(SignalPhase::Green, ms(200)), None);
        assert_eq!(l.step(SignalPhase::Unknown, ms(240)), None);
        assert_eq!(l.step(SignalPhase::Red, ms(280)), None);
        assert_eq!(l.step(SignalPhase::Green, ms(600)), None);
        assert_eq!(l.step(SignalPhase::Green, ms(800)), None);
        assert_eq!(l.step(SignalPhase::Green, ms(900)), Some(SignalPhase::Green));
        assert_eq!(l.phase(), SignalPhase::Green);
        // A lamp gone dark for 5 s is unknown.
        assert_eq!(l.step(SignalPhase::Unknown, ms(5800)), None);
        assert_eq!(l.step(SignalPhase::Unknown, ms(5900)), Some(SignalPhase::Unknown));
    }
}
