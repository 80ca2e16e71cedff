//! `--plot`: an SVG bar chart of the per-stage p50 and p99 time per frame.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::report::BenchReport;

const P99_COLOUR: RGBColor = RGBColor(244, 165, 130);
const P50_COLOUR: RGBColor = RGBColor(33, 102, 172);

/// Powers of ten around the values, so the log axis starts and ends on round numbers. Stage
/// times span four orders of magnitude (inference in ms, analytics in µs): a linear axis would
/// show only inference.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let positive: Vec<f64> = values.filter(|v| *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    if positive.is_empty() {
        return (1e-3, 1.0);
    }
    let lo = 10f64.powf(lo.max(1e-4).log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// Writes the chart to `path` (SVG).
pub fn write_stage_chart(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    draw(report, path).with_context(|| format!("writing the chart {}", path.display()))
}

fn draw(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    let p = &report.pipeline;
    let mut bars: Vec<(String, f64, f64)> =
        p.stages.iter().map(|s| (s.stage.clone(), s.latency.p50_ms, s.latency.p99_ms)).collect();
    bars.push(("frame → events".into(), p.frame_to_event.p50_ms, p.frame_to_event.p99_ms));
    let (lo, hi) = log_range(bars.iter().flat_map(|b| [b.1, b.2]));
    let n = bars.len() as u32;
    let plot_err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");

    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let caption = format!(
        "{} · {} · {} stream(s): {:.1} fps total (bound {:.1}, ratio {:.2})",
        Path::new(&report.clip).file_name().map_or(report.clip.clone(), |f| f.to_string_lossy().into_owned()),
        report.model,
        report.streams,
        p.fps_total,
        report.bound.fps_total,
        report.bound.ratio
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // A segmented range covers both ends: 0..n-1 gives n segments.
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), (lo..hi).log_scale())
        .map_err(|e| plot_err(&e))?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n as usize)
        .x_label_formatter(&label)
        .y_desc("ms per frame (log scale)")
        .y_label_formatter(&|v| format!("{v}"))
        .draw()
        .map_err(|e| plot_err(&e))?;
    // p99 drawn wide and light, p50 narrow and dark in front of it (p99 ≥ p50 always).
    for (colour, margin, pick, name) in
        [(P99_COLOUR, 10u32, 2usize, "p99"), (P50_COLOUR, 26, 1, "p50")]
    {
        let series = bars.iter().enumerate().map(|(i, b)| {
            let v = if pick == 1 { b.1 } else { b.2 };
            let mut r = Rectangle::new(
                [(SegmentValue::Exact(i as u32), lo), (SegmentValue::Exact(i as u32 + 1), v.max(lo))],
                colour.filled(),
            );
            r.set_margin(0, 0, margin, margin);
            r
        });
        chart
            .draw_series(series)
            .map_err(|e| plot_err(&e))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(&e))?;
    root.present().map_err(|e| plot_err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::log_range;

    #[test]
    fn log_range_spans_powers_of_ten() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        let (lo, hi) = log_range([0.0, 0.02, 35.0].into_iter());
        assert!(close(lo, 0.01) && close(hi, 100.0), "{lo} {hi}");
        assert_eq!(log_range([0.0].into_iter()), (1e-3, 1.0));
        let (lo, hi) = log_range([5.0, 5.0].into_iter());
        assert!(close(lo, 1.0) && close(hi, 10.0), "{lo} {hi}");
    }
}
