//! The bench's picture, `target/netloop-bench/loadgen.svg`: HTTP requests/s and p99
//! latency against connections for both servers, keep-alive and pipelined, drawn as
//! plain SVG text from the summarized rows that `loadgen.rs` measures and prints.

use super::{Kind, Run, SERVERS, Scenario};
use std::fmt::Write as _;

/// One line of a chart: a server in a mode, one point per connection count.
struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(usize, f64)>,
}

const NETLOOP_COLOR: &str = "#1f77b4";
const THREADED_COLOR: &str = "#d62728";

/// `1k`, `10M`, `100 µs`, `1 ms`: a decade's label.
fn decade_label(v: f64, latency: bool) -> String {
    if latency {
        match v {
            v if v >= 1e6 => format!("{} s", v / 1e6),
            v if v >= 1e3 => format!("{} ms", v / 1e3),
            v => format!("{v} µs"),
        }
    } else {
        match v {
            v if v >= 1e6 => format!("{}M", v / 1e6),
            v if v >= 1e3 => format!("{}k", v / 1e3),
            v => format!("{v}"),
        }
    }
}

/// Draws one chart at (`x0`, `y0`): log-scale y, connection counts evenly spaced on x.
fn chart(
    svg: &mut String,
    x0: f64,
    y0: f64,
    title: &str,
    y_title: &str,
    latency: bool,
    series: &[Series],
) {
    let (w, h) = (360.0, 240.0);
    let (left, top) = (x0 + 60.0, y0 + 30.0);
    let mut conns: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    conns.sort_unstable();
    conns.dedup();
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 10.0) };
    let (d0, d1) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let y_of = |v: f64| top + h - (v.max(10f64.powf(d0)).log10() - d0) / (d1 - d0) * h;
    let x_of = |c: usize| {
        let i = conns.iter().position(|&x| x == c).unwrap_or(0) as f64;
        let n = (conns.len().max(2) - 1) as f64;
        left + 20.0 + i / n * (w - 40.0)
    };
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" font-size="15" font-weight="bold" text-anchor="middle">{title}</text>"#,
        left + w / 2.0,
        y0 + 18.0
    );
    // Gridlines and labels at each decade.
    let mut d = d0;
    while d <= d1 {
        let y = y_of(10f64.powf(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.0}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + w,
            left - 6.0,
            y + 4.0,
            decade_label(10f64.powf(d), latency)
        );
        d += 1.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.0}" y="{top:.0}" width="{w:.0}" height="{h:.0}" fill="none" stroke="#333"/>"##
    );
    for &c in &conns {
        let x = x_of(c);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.0}" x2="{x:.1}" y2="{:.0}" stroke="#333"/><text x="{x:.1}" y="{:.0}" font-size="11" text-anchor="middle">{c}</text>"##,
            top + h,
            top + h + 5.0,
            top + h + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" font-size="12" text-anchor="middle">connections</text>"#,
        left + w / 2.0,
        top + h + 36.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate({:.0},{:.0}) rotate(-90)" font-size="12" text-anchor="middle">{y_title}</text>"#,
        x0 + 14.0,
        top + h / 2.0
    );
    for s in series {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .map(|&(c, v)| format!("{:.1},{:.1}", x_of(c), y_of(v)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            pts.join(" "),
            s.color
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                s.color
            );
        }
    }
}

/// `target/netloop-bench/loadgen.svg`: HTTP requests/s and p99 against connections.
pub(super) fn write_svg(rows: &[(Scenario, Run, Run)]) {
    let mut depths: Vec<usize> = rows
        .iter()
        .filter_map(|(s, ..)| match s.kind {
            Kind::Http(d) => Some(d),
            Kind::Time | Kind::Open(_) | Kind::Udp(_) | Kind::Chat(_) => None,
        })
        .collect();
    depths.dedup();
    let series_of = |value: fn(&Run) -> f64| -> Vec<Series> {
        let mut out = Vec::new();
        for &depth in &depths {
            for (i, server) in SERVERS.iter().enumerate() {
                let points = rows
                    .iter()
                    .filter(|(s, ..)| s.kind == Kind::Http(depth))
                    .map(|(s, ours, theirs)| (s.conns, value(if i == 0 { ours } else { theirs })))
                    .collect();
                let mode = if depth == 1 {
                    "keep-alive".to_string()
                } else {
                    format!("pipelined {depth}")
                };
                out.push(Series {
                    name: format!("{server}, {mode}"),
                    color: if i == 0 {
                        NETLOOP_COLOR
                    } else {
                        THREADED_COLOR
                    },
                    dashed: depth != 1,
                    points,
                });
            }
        }
        out
    };
    let throughput = series_of(|r| r.rps);
    let p99 = series_of(|r| r.p99);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="880" height="380" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="880" height="380" fill="white"/>"#);
    chart(
        &mut svg,
        0.0,
        0.0,
        "HTTP requests/s (higher is better)",
        "requests/s",
        false,
        &throughput,
    );
    chart(
        &mut svg,
        440.0,
        0.0,
        "HTTP p99 latency (lower is better)",
        "p99 latency",
        true,
        &p99,
    );
    // Legend under the charts.
    for (i, s) in throughput.iter().enumerate() {
        let x = 60.0 + (i % 4) as f64 * 205.0;
        let y = 345.0 + (i / 4) as f64 * 18.0;
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{}" stroke-width="2"{dash}/><text x="{:.0}" y="{:.0}" font-size="12">{}</text>"#,
            x + 28.0,
            s.color,
            x + 34.0,
            y + 4.0,
            s.name
        );
    }
    let _ = writeln!(svg, "</svg>");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench/loadgen.svg");
    std::fs::write(&path, svg).expect("write the SVG");
    println!("wrote {}", path.display());
}
