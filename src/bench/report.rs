//! Renders a benchmark [`Report`] for people: a plain-text table for the
//! terminal and an SVG bar chart of start latency for a README or an issue.
//!
//! Both are built with `std::fmt::Write` into a `String`; that never fails,
//! so the internal writers return `fmt::Result` only to use `?`, and the
//! public functions unwrap it once.

use std::fmt::{self, Write};

use super::model::{Group, Latency, Machine, Report};

/// Plain-text table of the whole report, sections without data left out.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    write_table(&mut out, report).expect("writing to a String cannot fail");
    out
}

/// Self-contained SVG chart of the start-to-exit latency medians.
pub fn svg(report: &Report) -> String {
    let mut out = String::new();
    write_svg(&mut out, report).expect("writing to a String cannot fail");
    out
}

// ---------------------------------------------------------------------------
// Shared helpers

/// Whether a start-latency row has numbers worth showing.
fn measured(lat: &Latency) -> bool {
    lat.failed.is_none() && lat.ms.n > 0 && lat.ms.median.is_finite()
}

/// For each start row, the median of the layer it adds to: the last measured
/// Layer row before it. A failed layer is skipped rather than breaking the
/// chain, because the row above still shows what the next layer builds on.
fn previous_layers(start: &[Latency]) -> Vec<Option<f64>> {
    let mut last = None;
    start
        .iter()
        .map(|lat| {
            if lat.group != Group::Layer || !measured(lat) {
                return None;
            }
            let base = last;
            last = Some(lat.ms.median);
            base
        })
        .collect()
}

fn group_name(group: Group) -> &'static str {
    match group {
        Group::Baseline => "baseline",
        Group::Layer => "layer",
        Group::Oci => "oci",
        Group::Peer => "peer",
    }
}

/// A number with two decimals under 100 and one above, where the second
/// decimal stops meaning anything.
fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".to_string()
    } else if v.abs() < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Like [`num`], always with a sign, for differences.
fn signed(v: f64) -> String {
    if !v.is_finite() {
        "-".to_string()
    } else if v.abs() < 100.0 {
        format!("{v:+.2}")
    } else {
        format!("{v:+.1}")
    }
}

/// A factor with two decimals, or with two significant digits when it is
/// smaller than 0.1, so that 0.0026 (gVisor's getppid against the agent's)
/// does not read as zero.
fn factor(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v > 0.0 && v < 0.1 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // -log10 of a number in (0, 0.1) is positive; finite floats keep it
        // below 330.
        let decimals = (-v.log10()).ceil() as usize + 1;
        return format!("{v:.decimals$}x");
    }
    format!("{v:.2}x")
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn known(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// Table

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// One table line: cells that line up with the columns, then free text
/// (a failure reason) that should not widen any column.
struct Row {
    cells: Vec<String>,
    rest: Option<String>,
}

impl Row {
    fn full(cells: Vec<String>) -> Row {
        Row { cells, rest: None }
    }
}

/// Columns sized to their widest cell.
struct Grid {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Row>,
}

impl Grid {
    fn new(columns: &[(&'static str, Align)]) -> Grid {
        Grid {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Widths in characters, not bytes: headers such as "p10–p90" hold
    /// multi-byte characters that take one terminal cell.
    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.0.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(&row.cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    fn render(&self, out: &mut String) -> fmt::Result {
        let widths = self.widths();
        let headers: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        self.line(out, &widths, &headers, None)?;
        let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        self.line(out, &widths, &rules, None)?;
        for row in &self.rows {
            let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
            self.line(out, &widths, &cells, row.rest.as_deref())?;
        }
        Ok(())
    }

    fn line(
        &self,
        out: &mut String,
        widths: &[usize],
        cells: &[&str],
        rest: Option<&str>,
    ) -> fmt::Result {
        let mut line = String::new();
        for ((cell, width), (_, align)) in cells.iter().zip(widths).zip(&self.columns) {
            let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
            line.push_str("  ");
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        if let Some(rest) = rest {
            line.push_str("  ");
            line.push_str(rest);
        }
        writeln!(out, "{}", line.trim_end())
    }
}

fn section(out: &mut String, title: &str, grid: &Grid) -> fmt::Result {
    if grid.rows.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{title}")?;
    grid.render(out)
}

fn write_table(out: &mut String, report: &Report) -> fmt::Result {
    machine_lines(out, &report.machine)?;
    start_section(out, report)?;
    steady_section(out, report)?;
    memory_section(out, report)?;
    scale_section(out, report)?;
    teardown_line(out, report)?;
    throughput_section(out, report)?;
    ratios_section(out, report)?;
    if !report.notes.is_empty() {
        writeln!(out)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

fn machine_lines(out: &mut String, m: &Machine) -> fmt::Result {
    // u64 to f64 only loses precision far beyond any real memory size.
    let memory = if m.memory_mib >= 1024 {
        format!("{:.1} GiB", m.memory_mib as f64 / 1024.0)
    } else {
        format!("{} MiB", m.memory_mib)
    };
    writeln!(
        out,
        "machine: kernel {}, {} cpus, {memory} memory, cgroups {}",
        known(&m.kernel),
        m.cpus,
        known(&m.cgroups)
    )?;
    let peers = if m.peers.is_empty() {
        "none".to_string()
    } else {
        let list: Vec<String> = m.peers.iter().map(|(n, v)| format!("{n} {v}")).collect();
        list.join(", ")
    };
    writeln!(out, "sunaba {}; peers: {peers}", known(&m.sunaba))
}

fn start_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[
        ("name", Align::Left),
        ("group", Align::Left),
        ("median ms", Align::Right),
        ("p10–p90 ms", Align::Right),
        ("peak RSS MiB", Align::Right),
        ("over previous layer", Align::Right),
    ]);
    let bases = previous_layers(&report.start);
    for (lat, base) in report.start.iter().zip(bases) {
        grid.rows.push(latency_row(lat, base));
    }
    let mut title = String::from("start-to-exit latency of /bin/true");
    if report.iterations > 0 {
        write!(title, " ({} runs each)", report.iterations)?;
    }
    section(out, &title, &grid)
}

fn latency_row(lat: &Latency, base: Option<f64>) -> Row {
    let head = vec![lat.name.clone(), group_name(lat.group).to_string()];
    if let Some(reason) = &lat.failed {
        return Row {
            cells: head,
            rest: Some(format!("failed: {reason}")),
        };
    }
    if !measured(lat) {
        return Row {
            cells: head,
            rest: Some("no samples".to_string()),
        };
    }
    let rss = lat
        .peak_rss_kib
        .as_ref()
        .filter(|s| s.n > 0)
        .map_or_else(|| "-".to_string(), |s| format!("{:.1}", mib(s.median)));
    let increment = base.map_or_else(String::new, |b| format!("{} ms", signed(lat.ms.median - b)));
    let mut cells = head;
    cells.extend([
        num(lat.ms.median),
        format!("{}–{}", num(lat.ms.p10), num(lat.ms.p90)),
        rss,
        increment,
    ]);
    Row::full(cells)
}

fn steady_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[
        ("workload", Align::Left),
        ("inside", Align::Left),
        ("median", Align::Right),
        ("compared with", Align::Left),
        ("median", Align::Right),
        ("factor", Align::Right),
    ]);
    for s in &report.steady {
        grid.rows.push(Row::full(vec![
            s.name.clone(),
            s.inside_what.clone(),
            format!("{} {}", num(s.inside.median), s.unit),
            s.outside_what.clone(),
            format!("{} {}", num(s.outside.median), s.unit),
            factor(s.factor),
        ]));
    }
    section(out, "steady state", &grid)
}

fn memory_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[("name", Align::Left), ("median MiB", Align::Right)]);
    for m in &report.memory {
        grid.rows.push(Row::full(vec![
            m.name.clone(),
            format!("{:.2}", mib(m.kib.median)),
        ]));
    }
    section(out, "memory", &grid)
}

fn scale_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[
        ("running", Align::Right),
        ("median ms", Align::Right),
        ("factor", Align::Right),
    ]);
    for p in &report.scale {
        grid.rows.push(Row::full(vec![
            p.running.to_string(),
            num(p.ms.median),
            factor(p.factor),
        ]));
    }
    section(out, "scale", &grid)
}

fn teardown_line(out: &mut String, report: &Report) -> fmt::Result {
    let Some(t) = &report.teardown else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(
        out,
        "teardown: {} sandboxes stopped in {} batches, {} ms in all, {} ms each",
        t.sandboxes,
        t.batches,
        num(t.total_ms),
        num(t.per_sandbox_ms)
    )
}

fn throughput_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[
        ("cores", Align::Right),
        ("sandboxes", Align::Right),
        ("per second", Align::Right),
    ]);
    for t in &report.throughput {
        grid.rows.push(Row::full(vec![
            t.cores.to_string(),
            t.sandboxes.to_string(),
            format!("{:.1}", t.per_second),
        ]));
    }
    section(out, "throughput", &grid)
}

fn ratios_section(out: &mut String, report: &Report) -> fmt::Result {
    let mut grid = Grid::new(&[
        ("name", Align::Left),
        ("ratio", Align::Right),
        ("target", Align::Right),
        ("verdict", Align::Left),
    ]);
    for r in &report.ratios {
        let (target, verdict) = match r.target {
            // A NaN ratio compares false and so counts as missed.
            Some(t) if r.ratio <= t => (format!("<= {t:.2}x"), "met"),
            Some(t) => (format!("<= {t:.2}x"), "missed"),
            None => (String::new(), ""),
        };
        grid.rows.push(Row::full(vec![
            r.name.clone(),
            factor(r.ratio),
            target,
            verdict.to_string(),
        ]));
    }
    section(out, "ratios", &grid)
}

// ---------------------------------------------------------------------------
// SVG

const WIDTH: f64 = 900.0;
const TITLE: &str = "sunaba bench: start-to-exit latency of /bin/true";
/// Where the first bar row starts, below title, subtitle and legend.
const TOP: f64 = 96.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 16.0;
/// Room right of the plot for the value labels past the longest bar.
const RIGHT: f64 = 150.0;
/// Below the last row: tick labels and the axis title.
const BOTTOM: f64 = 56.0;

const BASELINE: &str = "#8c8c8c";
const LAYER: &str = "#1f5fa8";
const LAYER_LIGHT: &str = "#b7cde9";
const OCI: &str = "#2a9d8f";
const PEER: &str = "#e07b39";
const INK: &str = "#222222";
const MUTED: &str = "#666666";
const GRID: &str = "#e6e6e6";

fn colour(group: Group) -> &'static str {
    match group {
        Group::Baseline => BASELINE,
        Group::Layer => LAYER,
        Group::Oci => OCI,
        Group::Peer => PEER,
    }
}

/// Escapes text for both element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds for a chart label: three significant digits are all a
/// glance can use.
fn short_ms(v: f64) -> String {
    if v.abs() < 10.0 {
        format!("{v:.2}")
    } else if v.abs() < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A tick spacing of 1, 2, 2.5 or 5 times a power of ten that gives
/// about five ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Decimals a tick label needs so that steps such as 2.5 or 0.25 show.
fn tick_decimals(step: f64) -> usize {
    let mut scaled = step;
    for decimals in 0..4 {
        if (scaled - scaled.round()).abs() < 1e-6 {
            return decimals;
        }
        scaled *= 10.0;
    }
    4
}

/// A measured row and the median of the layer it adds to.
struct Bar<'a> {
    lat: &'a Latency,
    base: Option<f64>,
}

/// Positions shared by every part of the chart.
struct Layout {
    left: f64,
    plot_w: f64,
    axis_max: f64,
    step: f64,
    bottom: f64,
    height: f64,
}

impl Layout {
    fn new(bars: &[Bar]) -> Layout {
        // usize to f64 is exact for any count of characters or rows.
        let longest = bars
            .iter()
            .map(|b| b.lat.name.chars().count())
            .max()
            .unwrap_or(0);
        let left = (longest as f64 * 7.0 + 28.0).clamp(90.0, 280.0);
        // A runtime ten times slower than the typical row (gVisor) would
        // squeeze every other bar into a sliver: the axis stops short of it
        // and its bar is drawn broken, with its value written out.
        let mut medians: Vec<f64> = bars
            .iter()
            .map(|b| b.lat.ms.median)
            .filter(|v| v.is_finite())
            .collect();
        medians.sort_by(f64::total_cmp);
        let typical = medians.get(medians.len() / 2).copied().unwrap_or(0.0);
        let max = bars
            .iter()
            .filter(|b| typical <= 0.0 || b.lat.ms.median <= 10.0 * typical)
            .map(|b| b.lat.ms.median.max(b.lat.ms.p90))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let max = if max > 0.0 { max } else { 1.0 };
        let step = nice_step(max);
        let bottom = TOP + bars.len() as f64 * ROW_H;
        Layout {
            left,
            plot_w: WIDTH - left - RIGHT,
            axis_max: (max / step).ceil() * step,
            step,
            bottom,
            height: bottom + BOTTOM,
        }
    }

    fn x(&self, ms: f64) -> f64 {
        let ms = if ms.is_finite() {
            ms.clamp(0.0, self.axis_max)
        } else {
            0.0
        };
        self.left + ms / self.axis_max * self.plot_w
    }
}

fn write_svg(out: &mut String, report: &Report) -> fmt::Result {
    let bases = previous_layers(&report.start);
    let bars: Vec<Bar> = report
        .start
        .iter()
        .zip(bases)
        .filter(|(lat, _)| measured(lat))
        .map(|(lat, base)| Bar { lat, base })
        .collect();
    if bars.is_empty() {
        return empty_svg(out, report);
    }
    let lay = Layout::new(&bars);
    svg_head(out, report, lay.height)?;
    legend(out, &bars)?;
    axis(out, &lay)?;
    let mut y = TOP;
    let mut previous_group = None;
    for bar in &bars {
        if previous_group.is_some_and(|g| g != bar.lat.group) {
            // A faint rule where the group changes keeps layers, OCI and
            // peers apart without a heading per group.
            writeln!(
                out,
                r#"<line x1="12" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/>"#,
                WIDTH - 12.0
            )?;
        }
        previous_group = Some(bar.lat.group);
        bar_row(out, &lay, y, bar)?;
        y += ROW_H;
    }
    writeln!(out, "</svg>")
}

fn subtitle(report: &Report) -> String {
    let m = &report.machine;
    let mut s = format!(
        "kernel {} · {} cpus · cgroups {}",
        known(&m.kernel),
        m.cpus,
        known(&m.cgroups)
    );
    if report.iterations > 0 {
        // Writing to a String cannot fail.
        let _ = write!(s, " · {} runs per row", report.iterations);
    }
    s
}

fn svg_head(out: &mut String, report: &Report, height: f64) -> fmt::Result {
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">"#
    )?;
    writeln!(out, "<title>{}</title>", esc(TITLE))?;
    // An explicit background keeps the chart readable in dark viewers.
    writeln!(
        out,
        r#"<rect class="bg" x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    )?;
    writeln!(
        out,
        r#"<text x="20" y="30" font-size="18" font-weight="bold" fill="{INK}">{}</text>"#,
        esc(TITLE)
    )?;
    writeln!(
        out,
        r#"<text x="20" y="50" fill="{MUTED}">{}</text>"#,
        esc(&subtitle(report))
    )
}

fn empty_svg(out: &mut String, report: &Report) -> fmt::Result {
    let height = 140.0;
    svg_head(out, report, height)?;
    writeln!(
        out,
        r#"<text x="{:.1}" y="100" text-anchor="middle" font-size="16" fill="{MUTED}">no data</text>"#,
        WIDTH / 2.0
    )?;
    writeln!(out, "</svg>")
}

/// Legend entries for the groups present, so it never explains a colour
/// the chart does not use.
fn legend(out: &mut String, bars: &[Bar]) -> fmt::Result {
    let has = |g: Group| bars.iter().any(|b| b.lat.group == g);
    let mut items: Vec<(&str, &str)> = Vec::new();
    if has(Group::Baseline) {
        items.push(("baseline (no runtime)", BASELINE));
    }
    if has(Group::Layer) {
        items.push(("previous layer", LAYER_LIGHT));
        items.push(("added by this layer", LAYER));
    }
    if has(Group::Oci) {
        items.push(("sunaba as OCI runtime", OCI));
    }
    if has(Group::Peer) {
        items.push(("peer runtime", PEER));
    }
    let y = 66.0;
    let mut x = 20.0;
    writeln!(out, r#"<g class="legend">"#)?;
    for (label, fill) in items {
        writeln!(
            out,
            r#"<rect class="key" x="{x:.1}" y="{y:.1}" width="12" height="12" fill="{fill}"/>"#
        )?;
        writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{INK}">{}</text>"#,
            x + 17.0,
            y + 10.0,
            esc(label)
        )?;
        // About 6.5 px per character at 12 px sans-serif.
        x += 17.0 + label.chars().count() as f64 * 6.5 + 18.0;
    }
    let yc = y + 6.0;
    writeln!(
        out,
        r#"<path d="M{x:.1} {:.1}v8M{x:.1} {yc:.1}h18M{:.1} {:.1}v8" stroke="{INK}" fill="none"/>"#,
        yc - 4.0,
        x + 18.0,
        yc - 4.0
    )?;
    writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" fill="{INK}">p10–p90</text>"#,
        x + 23.0,
        y + 10.0
    )?;
    writeln!(out, "</g>")
}

fn axis(out: &mut String, lay: &Layout) -> fmt::Result {
    let decimals = tick_decimals(lay.step);
    writeln!(out, r#"<g class="axis">"#)?;
    // Counting ticks by index rather than adding the step keeps rounding
    // errors from dropping or doubling the last tick.
    let mut i = 0.0;
    while i * lay.step <= lay.axis_max * (1.0 + 1e-9) {
        let t = i * lay.step;
        let x = lay.x(t);
        writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/>"#,
            TOP - 4.0,
            lay.bottom
        )?;
        writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">{t:.decimals$}</text>"#,
            lay.bottom + 16.0
        )?;
        i += 1.0;
    }
    writeln!(
        out,
        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{MUTED}"/>"#,
        lay.left,
        lay.bottom,
        lay.left + lay.plot_w,
        lay.bottom
    )?;
    writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">ms from spawn to reaped exit (bar: median, whisker: p10–p90)</text>"#,
        lay.left + lay.plot_w / 2.0,
        lay.bottom + 38.0
    )?;
    writeln!(out, "</g>")
}

fn bar_row(out: &mut String, lay: &Layout, y: f64, bar: &Bar) -> fmt::Result {
    let lat = bar.lat;
    let ms = &lat.ms;
    let mid = y + (ROW_H - BAR_H) / 2.0;
    let text_y = y + ROW_H / 2.0 + 4.0;
    writeln!(out, r#"<g class="row">"#)?;
    // A hover tooltip carries what the row measures without cluttering it.
    writeln!(
        out,
        "<title>{}</title>",
        esc(&format!(
            "{} ({}): {}; median {} ms, p10–p90 {}–{} ms, n={}",
            lat.name,
            group_name(lat.group),
            lat.what,
            num(ms.median),
            num(ms.p10),
            num(ms.p90),
            ms.n
        ))
    )?;
    writeln!(
        out,
        r#"<text x="{:.1}" y="{text_y:.1}" text-anchor="end" fill="{INK}">{}</text>"#,
        lay.left - 8.0,
        esc(&lat.name)
    )?;
    bar_rects(out, lay, mid, bar)?;
    whisker(out, lay, mid + BAR_H / 2.0, ms.p10, ms.p90)?;
    value_label(out, lay, text_y, bar)?;
    writeln!(out, "</g>")
}

/// The bar, drawn as a waterfall for a layer: what the previous layer
/// already cost in a light shade, what this layer adds in the strong one.
fn bar_rects(out: &mut String, lay: &Layout, y: f64, bar: &Bar) -> fmt::Result {
    let median = bar.lat.ms.median;
    let fill = colour(bar.lat.group);
    let x0 = lay.left;
    let xm = lay.x(median);
    match bar.base {
        Some(base) if base <= median => {
            let xb = lay.x(base);
            writeln!(
                out,
                r#"<rect class="base" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{LAYER_LIGHT}"/>"#,
                xb - x0
            )?;
            writeln!(
                out,
                r#"<rect class="bar" x="{xb:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{fill}"/>"#,
                xm - xb
            )
        }
        Some(base) => {
            // Faster than the layer before: the whole bar is this layer, and
            // a dashed outline shows how far the previous one reached.
            writeln!(
                out,
                r#"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{fill}"/>"#,
                xm - x0
            )?;
            writeln!(
                out,
                r#"<rect class="base" x="{xm:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="none" stroke="{LAYER}" stroke-opacity="0.6" stroke-dasharray="3 2"/>"#,
                lay.x(base) - xm
            )
        }
        None => {
            writeln!(
                out,
                r#"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{fill}"/>"#,
                xm - x0
            )?;
            if median > lay.axis_max {
                // Two white slashes: the bar goes on past the axis.
                writeln!(
                    out,
                    r#"<path class="break" d="M{:.1} {:.1}l6 -{BAR_H}M{:.1} {:.1}l6 -{BAR_H}" stroke="white" stroke-width="2"/>"#,
                    xm - 22.0,
                    y + BAR_H,
                    xm - 15.0,
                    y + BAR_H
                )?;
            }
            Ok(())
        }
    }
}

fn whisker(out: &mut String, lay: &Layout, yc: f64, p10: f64, p90: f64) -> fmt::Result {
    if !(p10.is_finite() && p90.is_finite()) {
        return Ok(());
    }
    let (a, b) = (lay.x(p10), lay.x(p90));
    writeln!(
        out,
        r#"<path class="whisker" d="M{a:.1} {:.1}v8M{a:.1} {yc:.1}H{b:.1}M{b:.1} {:.1}v8" stroke="{INK}" stroke-width="1.2" fill="none"/>"#,
        yc - 4.0,
        yc - 4.0
    )
}

fn value_label(out: &mut String, lay: &Layout, y: f64, bar: &Bar) -> fmt::Result {
    let ms = &bar.lat.ms;
    let end = if ms.p90.is_finite() {
        ms.median.max(ms.p90)
    } else {
        ms.median
    };
    write!(
        out,
        r#"<text x="{:.1}" y="{y:.1}" fill="{INK}">{} ms"#,
        lay.x(end) + 6.0,
        short_ms(ms.median)
    )?;
    if let Some(base) = bar.base {
        let inc = ms.median - base;
        let sign = if inc < 0.0 { "" } else { "+" };
        write!(
            out,
            r#"<tspan dx="5" fill="{MUTED}">({sign}{} ms)</tspan>"#,
            short_ms(inc)
        )?;
    }
    writeln!(out, "</text>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::model::{Machine, Ratio, Stats, Steady};

    fn stats(median: f64) -> Stats {
        Stats {
            n: 20,
            median,
            p10: median * 0.9,
            p90: median * 1.2,
            min: median * 0.8,
        }
    }

    fn latency(name: &str, group: Group, median: f64) -> Latency {
        Latency {
            name: name.to_string(),
            group,
            what: format!("{name} runs /bin/true"),
            ms: stats(median),
            peak_rss_kib: Some(stats(2048.0)),
            failed: None,
        }
    }

    fn sample() -> Report {
        let mut failed = latency("crun run", Group::Peer, 0.0);
        failed.ms = Stats::default();
        failed.peak_rss_kib = None;
        failed.failed = Some("crun not installed".to_string());
        Report {
            machine: Machine {
                kernel: "6.8.0-test".to_string(),
                cpus: 8,
                memory_mib: 16384,
                cgroups: "v2".to_string(),
                sunaba: "0.1.0".to_string(),
                peers: vec![("bwrap".to_string(), "0.9.0".to_string())],
            },
            iterations: 20,
            start: vec![
                latency("fork+exec", Group::Baseline, 0.5),
                latency("agent", Group::Layer, 1.0),
                latency("namespaces", Group::Layer, 1.8),
                latency("rootfs <ro> & tmpfs", Group::Layer, 3.25),
                failed,
            ],
            steady: vec![Steady {
                name: "getppid".to_string(),
                unit: "ns/call".to_string(),
                inside_what: "agent".to_string(),
                inside: stats(51.5),
                outside_what: "host".to_string(),
                outside: stats(50.0),
                factor: 1.03,
            }],
            ratios: vec![Ratio {
                name: "agent vs bwrap".to_string(),
                sunaba: "agent".to_string(),
                peer: "bwrap".to_string(),
                ratio: 0.85,
                target: Some(1.0),
            }],
            notes: vec!["peer crun skipped".to_string()],
            ..Report::default()
        }
    }

    /// Checks that every opened tag is closed in order and that every `&`
    /// starts an entity: enough of XML well-formedness to catch what a
    /// string-built SVG gets wrong.
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("empty tag");
                stack.push(name);
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        for (i, _) in xml.match_indices('&') {
            let entity = &xml[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "bare & at {i}"
            );
        }
    }

    #[test]
    fn table_lists_machine_and_every_name() {
        let t = table(&sample());
        assert!(t.starts_with("machine: kernel 6.8.0-test, 8 cpus, 16.0 GiB memory, cgroups v2\n"));
        assert!(t.contains("sunaba 0.1.0; peers: bwrap 0.9.0"));
        for name in [
            "fork+exec",
            "agent",
            "namespaces",
            "rootfs <ro> & tmpfs",
            "crun run",
            "getppid",
        ] {
            assert!(t.contains(name), "{name} missing from\n{t}");
        }
        assert!(t.contains("start-to-exit latency of /bin/true"));
        assert!(t.contains("note: peer crun skipped"));
        // Empty sections are left out.
        assert!(!t.contains("throughput"));
        assert!(!t.contains("memory\n"));
    }

    #[test]
    fn table_shows_layer_increment() {
        let t = table(&sample());
        let line = |name: &str| t.lines().find(|l| l.contains(name)).unwrap().to_string();
        assert!(line("rootfs").ends_with("+1.45 ms"), "{}", line("rootfs"));
        assert!(line("namespaces").ends_with("+0.80 ms"));
        // The first layer has nothing to add to; the baseline is no layer.
        assert!(!line("agent  ").ends_with(" ms"));
        assert!(!line("fork+exec").ends_with(" ms"));
    }

    #[test]
    fn table_shows_failure_reason() {
        let t = table(&sample());
        let line = t.lines().find(|l| l.contains("crun run")).unwrap();
        assert!(line.ends_with("failed: crun not installed"), "{line}");
        assert!(line.contains("peer"));
    }

    #[test]
    fn table_aligns_columns_and_formats_steady_and_ratios() {
        let t = table(&sample());
        let lines: Vec<Vec<char>> = t.lines().map(|l| l.chars().collect()).collect();
        let header = t.lines().position(|l| l.contains("median ms")).unwrap();
        let at = t.lines().nth(header).unwrap().find("median ms").unwrap();
        let last = at + "median ms".len() - 1;
        // Right-aligned medians end in the same column as their header.
        for row in &lines[header + 1..header + 6] {
            assert_ne!(row[last], ' ', "{row:?}");
            assert_eq!(row[last + 1], ' ', "{row:?}");
        }
        let steady = t.lines().find(|l| l.contains("getppid")).unwrap();
        assert!(
            steady.contains("51.50 ns/call") && steady.ends_with("1.03x"),
            "{steady}"
        );
        let ratio = t.lines().find(|l| l.contains("agent vs bwrap")).unwrap();
        assert!(ratio.contains("0.85x") && ratio.contains("<= 1.00x") && ratio.ends_with("met"));
    }

    #[test]
    fn small_factors_keep_two_significant_digits() {
        assert_eq!(factor(1.234), "1.23x");
        assert_eq!(factor(480.27), "480.27x");
        assert_eq!(factor(0.35), "0.35x");
        assert_eq!(factor(0.0315), "0.032x");
        assert_eq!(factor(0.002_64), "0.0026x");
        assert_eq!(factor(0.0), "0.00x");
        assert_eq!(factor(f64::NAN), "-");
    }

    #[test]
    fn ratio_over_target_is_missed_and_no_target_is_blank() {
        let mut r = sample();
        r.ratios[0].ratio = 1.2;
        r.ratios.push(Ratio {
            target: None,
            name: "oci vs crun".to_string(),
            ..r.ratios[0].clone()
        });
        let t = table(&r);
        assert!(t
            .lines()
            .any(|l| l.contains("agent vs bwrap") && l.ends_with("missed")));
        assert!(t
            .lines()
            .any(|l| l.contains("oci vs crun") && l.ends_with("1.20x")));
    }

    #[test]
    fn numbers_drop_a_decimal_above_100() {
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(123.45), "123.5");
        assert_eq!(signed(0.5), "+0.50");
        assert_eq!(signed(-150.0), "-150.0");
    }

    #[test]
    fn svg_is_well_formed() {
        let s = svg(&sample());
        assert!(s.starts_with("<svg"));
        assert!(s.ends_with("</svg>\n"));
        assert!(s.contains(r#"font-family="sans-serif""#));
        assert!(!s.contains("<script"));
        assert_well_formed(&s);
    }

    #[test]
    fn svg_has_one_bar_per_measured_row() {
        let s = svg(&sample());
        // The failed peer has no samples and gets no bar.
        assert_eq!(s.matches(r#"<rect class="bar""#).count(), 4);
        assert_eq!(s.matches(r#"<g class="row">"#).count(), 4);
        // The second and third layers each stack on the one before.
        assert_eq!(s.matches(r#"<rect class="base""#).count(), 2);
        assert_eq!(s.matches(r#"class="whisker""#).count(), 4);
        assert!(s.contains("3.25 ms"));
        assert!(s.contains("(+1.45 ms)"));
        assert!(s.contains(TITLE));
        assert!(s.contains("kernel 6.8.0-test · 8 cpus · cgroups v2"));
        assert!(!s.contains("crun run"));
    }

    #[test]
    fn svg_escapes_labels() {
        let s = svg(&sample());
        assert!(s.contains("rootfs &lt;ro&gt; &amp; tmpfs"));
        assert!(!s.contains("<ro>"));
    }

    #[test]
    fn empty_report_gives_valid_svg_with_no_data() {
        let s = svg(&Report::default());
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("no data"));
        assert!(s.contains(TITLE));
        assert_well_formed(&s);
        let t = table(&Report::default());
        assert_eq!(t.lines().count(), 2, "{t}");
    }

    #[test]
    fn axis_ticks_are_round_numbers() {
        assert_eq!(nice_step(3.9).to_string(), "1");
        assert_eq!(nice_step(12.0).to_string(), "2.5");
        assert_eq!(nice_step(0.9).to_string(), "0.2");
        assert_eq!(tick_decimals(2.5), 1);
        assert_eq!(tick_decimals(0.25), 2);
        assert_eq!(tick_decimals(50.0), 0);
    }
}
