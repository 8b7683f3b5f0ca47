//! SVG charts for the comparison report (plotters, SVG backend).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

const COLORS: [RGBColor; 4] = [
    RGBColor(0xd9, 0x5f, 0x02),
    RGBColor(0x1b, 0x9e, 0x77),
    RGBColor(0x75, 0x70, 0xb3),
    RGBColor(0xe7, 0x29, 0x8a),
];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart: {e:?}")
}

/// Lines of (x, y) points, one per server.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let pts = series.iter().flat_map(|(_, v)| v.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (name, v)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(v.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(v.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Grouped bars: for each category (e.g. a percentile), one bar per server,
/// on a log scale (latencies span orders of magnitude).
pub fn grouped_bars_log(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[&str],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let vals = series.iter().flat_map(|(_, v)| v.iter().copied());
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for v in vals.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0.01, 1.0);
    }
    let (lo, hi) = (lo / 2.0, hi * 2.0);
    let n = categories.len();
    let k = series.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, (lo..hi).log_scale())
        .map_err(err)?;
    let cats: Vec<String> = categories.iter().map(|s| s.to_string()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            // Label only the middle of each group.
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < cats.len() {
                cats[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    let w = 0.8 / k as f64;
    for (si, (name, v)) in series.iter().enumerate() {
        let c = COLORS[si % COLORS.len()];
        chart
            .draw_series(
                v.iter()
                    .enumerate()
                    .filter(|(_, y)| **y > 0.0)
                    .map(|(ci, &y)| {
                        let x = ci as f64 + 0.1 + si as f64 * w;
                        Rectangle::new([(x, lo), (x + w * 0.9, y)], c.filled())
                    }),
            )
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_svg() {
        let dir = std::env::temp_dir().join(format!("bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.svg");
        lines(
            &a,
            "throughput",
            "read %",
            "ops/s",
            &[
                ("x".into(), vec![(0.0, 10.0), (50.0, 20.0), (100.0, 40.0)]),
                ("y".into(), vec![(0.0, 5.0), (50.0, 15.0), (100.0, 30.0)]),
            ],
        )
        .unwrap();
        let b = dir.join("b.svg");
        grouped_bars_log(
            &b,
            "latency",
            "ms",
            &["p50", "p99", "p99.9", "max"],
            &[
                ("x".into(), vec![0.5, 2.0, 9.0, 30.0]),
                ("y".into(), vec![0.7, 3.0, 12.0, 0.0]),
            ],
        )
        .unwrap();
        for f in [&a, &b] {
            let s = std::fs::read_to_string(f).unwrap();
            assert!(s.starts_with("<svg"), "{s:.80}");
            assert!(s.contains("<text"), "labels are drawn");
        }
        let s = std::fs::read_to_string(&a).unwrap();
        assert!(s.contains("throughput") && s.contains("polyline"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
