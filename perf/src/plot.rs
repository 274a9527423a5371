//! SVG charts: the latency percentile distribution and throughput by message size.
//!
//! Owns: drawing with `plotters` (SVG backend only, no fonts to ship). Must never: draw a
//! series it was not given.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::report::{LatRow, ThrRow};
use crate::subject::Subject;

fn color(s: Subject) -> RGBColor {
    match s {
        Subject::Zeroring => RGBColor(200, 40, 40),
        Subject::Libzmq => RGBColor(40, 90, 200),
        Subject::Raw => RGBColor(90, 90, 90),
        Subject::Zmqrs => RGBColor(40, 150, 70),
        Subject::Rzmq => RGBColor(170, 110, 20),
        Subject::Omq => RGBColor(130, 50, 160),
    }
}

/// One line of the throughput chart: a subject on a transport.
type SeriesKey = (Subject, String);

fn err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Latency percentile distribution: x = percentile on the "nines" scale (−log10(1 − p)),
/// y = round trip in µs (log scale). One file per transport/size.
pub fn latency(dir: &Path, rows: &[LatRow]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut groups: Vec<(String, Vec<&LatRow>)> = Vec::new();
    for r in rows {
        let key = format!("{:?}-{}", r.transport, r.size).to_lowercase();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    let mut files = Vec::new();
    for (key, group) in groups {
        let path = dir.join(format!("latency-{key}.svg"));
        let max_us = group.iter().map(|r| r.max_us).fold(1.0, f64::max);
        let min_us = group
            .iter()
            .map(|r| r.hist.min() as f64 / 1000.0)
            .fold(f64::INFINITY, f64::min)
            .max(0.1);
        {
            let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(format!("REQ/REP round trip, {key}"), ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..5f64, (min_us * 0.8..max_us * 1.2).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("percentile")
                .y_desc("µs")
                .x_label_formatter(&|x| format!("{:.3}%", 100.0 * (1.0 - 10f64.powf(-x))))
                .draw()
                .map_err(err)?;
            for r in group {
                let pts: Vec<(f64, f64)> = (0..=500)
                    .map(|i| {
                        let nines = i as f64 / 100.0;
                        let q = 1.0 - 10f64.powf(-nines);
                        (nines, r.hist.value_at_quantile(q) as f64 / 1000.0)
                    })
                    .collect();
                let c = color(r.subject);
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("{:?}", r.subject).to_lowercase())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(err)?;
            root.present().map_err(err)?;
        }
        files.push(path);
    }
    Ok(files)
}

/// Throughput by message size, one line per subject and transport (log–log).
pub fn throughput(dir: &Path, rows: &[ThrRow]) -> std::io::Result<Option<PathBuf>> {
    if rows.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join("throughput-by-size.svg");
    let max_size = rows.iter().map(|r| r.size).max().unwrap_or(1).max(2) as f64;
    let max_rate = rows.iter().map(|r| r.msgs_per_sec).fold(1.0, f64::max);
    let min_rate = rows
        .iter()
        .map(|r| r.msgs_per_sec)
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    {
        let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("PUSH→PULL throughput by message size", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (1f64..max_size * 1.5).log_scale(),
                (min_rate * 0.5..max_rate * 2.0).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("message size (bytes)")
            .y_desc("messages/s")
            .draw()
            .map_err(err)?;
        let mut series: Vec<(SeriesKey, Vec<(f64, f64)>)> = Vec::new();
        for r in rows {
            let key = (r.subject, format!("{:?}", r.transport).to_lowercase());
            let pt = ((r.size.max(1)) as f64, r.msgs_per_sec);
            match series.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(pt),
                None => series.push((key, vec![pt])),
            }
        }
        for ((subject, transport), mut pts) in series {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let c = color(subject);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(format!("{subject:?} {transport}").to_lowercase())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(path))
}
