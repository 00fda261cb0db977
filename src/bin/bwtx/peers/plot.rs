//! `--plot FILE.svg`: the comparison as a grouped bar chart, one group per
//! workload and one bar per engine, transactions per second on a log scale
//! (the engines span three orders of magnitude), with bwtx's ratio over the
//! best transactional peer under each group.
//!
//! The SVG is written directly: a bar chart is a few dozen rectangles, and a
//! plotting crate would add font handling and a long dependency tree to a
//! build that already compiles five storage engines.

use std::fmt::Write as _;
use std::path::Path;

use super::compare::{engines_in, is_index, short, CompareReport};

/// Bar colours by engine, bwtx first: the colour-blind-safe Okabe–Ito
/// palette with two greys, then Okabe–Ito's yellow and black and a brown, so
/// that the 11 engines of a build with every optional peer differ.
const COLOURS: [&str; 11] = [
    "#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#999999", "#bbbbbb", "#f0e442", "#000000",
    "#8c510a",
];

const BAR: f64 = 16.0;
const GAP: f64 = 28.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 60.0;
const PLOT_H: f64 = 300.0;
/// Room right of the bars for the legend.
const LEGEND: f64 = 220.0;

/// A grid label: `10k`, `1M`.
fn decade(t: f64) -> String {
    match t {
        t if t >= 1e6 => format!("{:.0}M", t / 1e6),
        t if t >= 1e3 => format!("{:.0}k", t / 1e3),
        t => format!("{t:.0}"),
    }
}

/// Escape text for an SVG text node or attribute.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `reports` as an SVG document.
pub fn svg(reports: &[CompareReport]) -> String {
    let engines = engines_in(reports);
    let tputs = reports.iter().flat_map(|r| r.rows.iter().map(|row| row.m.tput()));
    let max = tputs.clone().fold(1.0f64, f64::max);
    let min = tputs.filter(|t| *t > 0.0).fold(max, f64::min);
    // Whole decades around the data.
    let (lo, hi) = (min.log10().floor().min(max.log10().ceil() - 1.0), max.log10().ceil());
    let y = |t: f64| TOP + PLOT_H * (1.0 - ((t.max(10f64.powf(lo))).log10() - lo) / (hi - lo));
    let group_w = engines.len() as f64 * BAR + GAP;
    let width = (LEFT + reports.len() as f64 * group_w + LEGEND).max(720.0);
    let height = TOP + PLOT_H + 70.0;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    if let Some(r) = reports.first() {
        let title = format!(
            "bwtx bench --compare: {} keys x {} B, {} threads, {} ops/txn, durability {}",
            r.header.keys, r.header.value_size, r.header.threads, r.header.ops_per_txn, r.durability
        );
        let _ = writeln!(o, r#"<text x="{LEFT}" y="24" font-size="15">{}</text>"#, esc(&title));
        let _ = writeln!(
            o,
            r##"<text x="{LEFT}" y="44" fill="#555">transactions per second (log scale); under each group: bwtx over the best transactional peer</text>"##
        );
    }
    // Decade grid lines and labels.
    let mut d = lo;
    while d <= hi + 1e-9 {
        let t = 10f64.powf(d);
        let yy = y(t);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - LEGEND,
            LEFT - 6.0,
            yy + 4.0,
            decade(t)
        );
        d += 1.0;
    }
    for (g, r) in reports.iter().enumerate() {
        let x0 = LEFT + GAP / 2.0 + g as f64 * group_w;
        for (i, e) in engines.iter().enumerate() {
            let Some(row) = r.rows.iter().find(|row| row.name == *e) else {
                continue;
            };
            let t = row.m.tput();
            let (x, top) = (x0 + i as f64 * BAR, y(t));
            let _ = writeln!(
                o,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"{}><title>{}: {} txns/s</title></rect>"#,
                BAR - 2.0,
                TOP + PLOT_H - top,
                COLOURS[i % COLOURS.len()],
                if is_index(e) { r#" fill-opacity="0.45""# } else { "" },
                esc(e),
                short(t)
            );
        }
        let cx = x0 + engines.len() as f64 * BAR / 2.0;
        let _ = writeln!(
            o,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="14">{}</text>"#,
            TOP + PLOT_H + 20.0,
            esc(&r.header.workload)
        );
        // No ratio where bwtx did not run (or failed): not "NaNx".
        if let Some((_, x)) = r.best_peer().filter(|(_, x)| x.is_finite()) {
            let _ = writeln!(
                o,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="{}">{x:.1}x</text>"#,
                TOP + PLOT_H + 38.0,
                COLOURS[0]
            );
        }
    }
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        TOP + PLOT_H,
        width - LEGEND,
        TOP + PLOT_H,
        TOP + PLOT_H
    );
    // Legend.
    let lx = width - LEGEND + 20.0;
    for (i, e) in engines.iter().enumerate() {
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let label = if is_index(e) {
            format!("{e} (no txns)")
        } else {
            (*e).to_owned()
        };
        let _ = writeln!(
            o,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"{}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 10.0,
            COLOURS[i % COLOURS.len()],
            if is_index(e) { r#" fill-opacity="0.45""# } else { "" },
            lx + 18.0,
            ly,
            esc(&label)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Write the chart of `reports` to `path`.
pub fn plot(reports: &[CompareReport], path: &Path) -> Result<(), String> {
    if reports.is_empty() {
        return Err("nothing to plot: no workload completed".into());
    }
    std::fs::write(path, svg(reports)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
