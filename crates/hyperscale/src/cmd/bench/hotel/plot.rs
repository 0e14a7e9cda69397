//! The PNG of `hyperscale bench hotel --plot`: bookings per second and the
//! share of bookings that failed, against contention (how many hotels the
//! same-night bookings are spread over; one hotel is the notes' "many users
//! racing for the last rooms"), one line per concurrency mode. Drawn with
//! `plotters`' bitmap backend; its text needs a TrueType font, read from
//! Debian's `fonts-dejavu-core` (or `HYPERSCALE_PLOT_FONT`).

use std::path::Path;

use anyhow::Context;
use hotel::Mode;
use hotel::bench::Outcome;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Where the font is looked for when `HYPERSCALE_PLOT_FONT` is unset.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> anyhow::Result<()> {
    let candidates: Vec<String> = match std::env::var("HYPERSCALE_PLOT_FONT") {
        Ok(path) => vec![path],
        Err(_) => FONT_PATHS.iter().map(|path| path.to_string()).collect(),
    };
    let bytes = candidates
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .with_context(|| {
            format!(
                "no font for the plot's text at {}: install fonts-dejavu-core \
                 (apt-get install fonts-dejavu-core) or set HYPERSCALE_PLOT_FONT=FILE.ttf",
                candidates.join(" or ")
            )
        })?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("the plot font is not a TrueType font"))
}

fn color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Pessimistic => RGBColor(200, 40, 40),
        Mode::Optimistic => RGBColor(26, 95, 180),
        Mode::Constraint => RGBColor(15, 123, 62),
    }
}

/// One panel: `value` of each outcome against its hotel count, per mode.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_label: &str,
    outcomes: &[Outcome],
    modes: &[Mode],
    value: impl Fn(&Outcome) -> f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // A little room past the last point on the log axis.
    let x_max = outcomes.iter().map(|o| o.hotels).max().unwrap_or(1).max(2) as f64 * 1.25;
    let y_max = outcomes.iter().map(&value).fold(0.0, f64::max).max(1.0) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.9..x_max).log_scale(), 0.0..y_max)
        .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    chart
        .configure_mesh()
        .x_desc("hotels the same-night bookings spread over (1 = all race for one)")
        .y_desc(y_label)
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    for &mode in modes {
        let mut points: Vec<(f64, f64)> = outcomes
            .iter()
            .filter(|o| o.mode == mode)
            .map(|o| (o.hotels as f64, value(o)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let style = color(mode).stroke_width(3);
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(|err| anyhow::anyhow!("plot: {err}"))?
            .label(mode.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 4, color(mode).filled())),
            )
            .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    Ok(())
}

/// Draws the two panels (throughput, failures) of a sweep into `path`.
pub fn draw(path: &Path, title: &str, outcomes: &[Outcome], modes: &[Mode]) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|err| anyhow::anyhow!("plot: {err}"))?;
    let (left, right) = root.split_horizontally(700);
    panel(&left, "Throughput", "bookings/s", outcomes, modes, |o| {
        o.bookings_per_sec
    })?;
    panel(
        &right,
        "Failures (gave up after the retry bound)",
        "% of bookings failed",
        outcomes,
        modes,
        |o| 100.0 * (o.failed + o.sold_out) as f64 / o.attempted.max(1) as f64,
    )?;
    root.present()
        .map_err(|err| anyhow::anyhow!("cannot write the plot to {}: {err}", path.display()))?;
    Ok(())
}
