//! `hyperscale estimate`: back-of-the-envelope estimation (chapter 2).
//!
//! - `hyperscale estimate --preset twitter` (or your own numbers: `--dau`,
//!   `--mau` with `--daily-active-ratio`, `--per-day`, `--per-month`, and
//!   the flags below) prints every step of the estimate with its formula,
//!   next to the notes' figure where a preset has one.
//! - `availability` prints the nines table, `latency` the latency numbers,
//!   `presets` the worked examples. Every verb takes `--json`.

use anyhow::Context;
use clap::Subcommand;
use estimate::availability::{self, Availability};
use estimate::capacity::{Assumptions, Mix, Population, Volume};
use estimate::explain::{Line, Unit};
use estimate::units::{parse_bytes, parse_count, parse_ratio, parse_share};
use estimate::{EstimateError, NotesFigure, Report, latency, presets};

use crate::output::{emit, emit_json};
use crate::table;

/// Arguments of `hyperscale estimate`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    verb: Option<Verb>,
    #[command(flatten)]
    capacity: CapacityArgs,
}

#[derive(Subcommand)]
enum Verb {
    /// The nines: downtime an availability level allows per day, week, month, year.
    Availability(AvailabilityArgs),
    /// Latency numbers every programmer should know, and their lessons.
    Latency(JsonArgs),
    /// The notes' worked examples usable with --preset.
    Presets(JsonArgs),
}

#[derive(clap::Args)]
struct JsonArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AvailabilityArgs {
    /// Availability levels in percent (default: the notes' 99 .. 99.9999).
    #[arg(long, value_delimiter = ',', value_name = "PERCENT")]
    levels: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// QPS and storage inputs. Counts take K/M/B suffixes (`300M`), sizes
/// decimal units (`1MB`, `0.1KB`), shares `50%` or `0.5`.
#[derive(clap::Args)]
struct CapacityArgs {
    /// Start from a worked example of the notes (see `hyperscale estimate presets`).
    #[arg(long, value_parser = presets::NAMES)]
    preset: Option<String>,
    /// Daily active users.
    #[arg(long, value_parser = parse_count, value_name = "COUNT", conflicts_with_all = ["mau", "per_day", "per_month"])]
    dau: Option<f64>,
    /// Monthly active users (with --daily-active-ratio).
    #[arg(long, value_parser = parse_count, value_name = "COUNT", requires = "daily_active_ratio", conflicts_with_all = ["per_day", "per_month"])]
    mau: Option<f64>,
    /// Share of monthly users active each day.
    #[arg(long, value_parser = parse_share, value_name = "SHARE", requires = "mau")]
    daily_active_ratio: Option<f64>,
    /// Actions per day in total, instead of users.
    #[arg(long, value_parser = parse_count, value_name = "COUNT", conflicts_with = "per_month")]
    per_day: Option<f64>,
    /// Actions per month in total, instead of users.
    #[arg(long, value_parser = parse_count, value_name = "COUNT")]
    per_month: Option<f64>,
    /// Actions (tweets, clicks, searches) per user per day.
    #[arg(long, alias = "requests-per-user", value_parser = parse_count, value_name = "COUNT")]
    actions_per_user: Option<f64>,
    /// Backend requests per action (autocomplete: one per keystroke).
    #[arg(long, value_parser = parse_count, value_name = "COUNT")]
    requests_per_action: Option<f64>,
    /// Peak QPS over average QPS.
    #[arg(long, value_name = "NUMBER")]
    peak_factor: Option<f64>,
    /// Reads per write, `10:1` or `10`: actions are writes, reads come on top.
    #[arg(long, value_parser = parse_ratio, value_name = "RATIO", conflicts_with = "reads")]
    read_write_ratio: Option<f64>,
    /// Actions are reads (queries), not writes.
    #[arg(long)]
    reads: bool,
    /// Bytes stored per stored action.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    object_size: Option<f64>,
    /// Share of actions that store an object.
    #[arg(long, value_parser = parse_share, value_name = "SHARE")]
    stored_share: Option<f64>,
    /// Share of stored actions that carry media.
    #[arg(long, value_parser = parse_share, value_name = "SHARE")]
    media_share: Option<f64>,
    /// Bytes of media per media-carrying action.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    media_size: Option<f64>,
    /// Years data is kept.
    #[arg(long, value_name = "NUMBER")]
    retention_years: Option<f64>,
    /// Days in a month.
    #[arg(long, value_name = "NUMBER")]
    days_per_month: Option<f64>,
    /// Days in a year.
    #[arg(long, value_name = "NUMBER")]
    days_per_year: Option<f64>,
    /// What an action is called in the formulas.
    #[arg(long)]
    action_name: Option<String>,
    /// Print JSON instead of the formula lines.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        None => run_capacity(args.capacity),
        Some(Verb::Availability(args)) => run_availability(args),
        Some(Verb::Latency(args)) => run_latency(args),
        Some(Verb::Presets(args)) => run_presets(args),
    }
}

/// The volume the flags describe, if they describe one; `current` supplies
/// actions per user when only the population changes.
fn volume_from_flags(args: &CapacityArgs, current: Option<&Volume>) -> Option<Volume> {
    let actions_per_user = args.actions_per_user.unwrap_or(match current {
        Some(Volume::PerUser {
            actions_per_user_per_day,
            ..
        }) => *actions_per_user_per_day,
        _ => 1.0,
    });
    let population = match (args.dau, args.mau, args.daily_active_ratio) {
        (Some(dau), _, _) => Some(Population::Dau { dau }),
        (None, Some(mau), Some(daily_active_ratio)) => Some(Population::Mau {
            mau,
            daily_active_ratio,
        }),
        _ => None,
    };
    match (population, args.per_day, args.per_month, current) {
        (Some(population), ..) => Some(Volume::PerUser {
            population,
            actions_per_user_per_day: actions_per_user,
        }),
        (None, Some(actions), ..) => Some(Volume::PerDay { actions }),
        (None, None, Some(actions), _) => Some(Volume::PerMonth { actions }),
        (None, None, None, Some(Volume::PerUser { population, .. }))
            if args.actions_per_user.is_some() =>
        {
            Some(Volume::PerUser {
                population: *population,
                actions_per_user_per_day: actions_per_user,
            })
        }
        _ => None,
    }
}

/// Applies every flag given; returns whether anything changed.
fn apply_overrides(args: &CapacityArgs, a: &mut Assumptions) -> bool {
    let before = a.clone();
    if let Some(volume) = volume_from_flags(args, Some(&a.volume)) {
        a.volume = volume;
    }
    let set = |field: &mut f64, flag: Option<f64>| *field = flag.unwrap_or(*field);
    set(&mut a.requests_per_action, args.requests_per_action);
    set(&mut a.peak_factor, args.peak_factor);
    set(&mut a.object_size_bytes, args.object_size);
    set(&mut a.stored_share, args.stored_share);
    set(&mut a.media_share, args.media_share);
    set(&mut a.media_size_bytes, args.media_size);
    set(&mut a.days_per_month, args.days_per_month);
    set(&mut a.days_per_year, args.days_per_year);
    if let Some(ratio) = args.read_write_ratio {
        a.mix = Mix::ReadsPerWrite(ratio);
    }
    if args.reads {
        a.mix = Mix::AllReads;
    }
    if args.retention_years.is_some() {
        a.retention_years = args.retention_years;
    }
    if let Some(name) = &args.action_name {
        a.action_name = name.clone();
    }
    *a != before
}

fn run_capacity(args: CapacityArgs) -> anyhow::Result<()> {
    let (name, mut assumptions, mut notes): (_, _, Vec<NotesFigure>) = match &args.preset {
        Some(name) => {
            let preset =
                presets::preset(name).ok_or_else(|| EstimateError::UnknownPreset(name.clone()))?;
            (Some(preset.name), preset.assumptions, preset.notes)
        }
        None => {
            let volume = volume_from_flags(&args, None).context(
                "give --preset NAME, or a volume: --dau, --mau with --daily-active-ratio, --per-day or --per-month",
            )?;
            (None, Assumptions::new(volume), Vec::new())
        }
    };
    let changed = apply_overrides(&args, &mut assumptions);
    if changed && name.is_some() {
        // The notes' figures belong to the notes' assumptions only.
        notes.clear();
    }
    let report = estimate::report(name, assumptions, &notes)?;
    if args.json {
        emit_json(&report)?;
    } else {
        emit(&capacity_text(&report, changed))?;
    }
    Ok(())
}

fn capacity_text(report: &Report, changed: bool) -> String {
    let mut out = String::new();
    if let Some(preset) = report.preset.and_then(presets::preset) {
        out.push_str(&format!(
            "{} — {}\n{}\n",
            preset.name, preset.chapter, preset.description
        ));
        if changed {
            out.push_str("(assumptions changed by flags: the notes' figures are not shown)\n");
        }
        out.push('\n');
    }
    let rows: Vec<[String; 5]> = report.lines.iter().map(line_row).collect();
    out.push_str(&table::render(&rows));
    out
}

fn line_row(line: &Line) -> [String; 5] {
    let per_second = if line.unit == Unit::PerSecond {
        "/s"
    } else {
        ""
    };
    let human = if line.human == line.exact {
        String::new()
    } else {
        format!("(≈{}{per_second})", line.human)
    };
    let notes = line.notes.as_ref().map_or_else(String::new, |n| {
        let off_pct = (n.value - line.value) / line.value * 100.0;
        if off_pct.abs() >= 0.5 {
            format!("notes: {} (rounded {off_pct:+.1}%)", n.text)
        } else {
            format!("notes: {}", n.text)
        }
    });
    [
        line.label.clone(),
        format!("= {}", line.formula),
        format!("= {}{per_second}", line.exact),
        human,
        notes,
    ]
}

fn run_availability(args: AvailabilityArgs) -> anyhow::Result<()> {
    let levels = if args.levels.is_empty() {
        availability::standard_levels()
    } else {
        args.levels
            .iter()
            .map(|level| Availability::parse_percent(level))
            .collect::<Result<Vec<_>, _>>()
            .context("bad --levels")?
    };
    let rows = availability::table(&levels);
    if args.json {
        emit_json(&rows)?;
        return Ok(());
    }
    let mut cells = vec![
        [
            "availability",
            "per day",
            "per week",
            "per month",
            "per year",
        ]
        .map(String::from),
    ];
    for row in &rows {
        cells.push([
            format!("{}%", row.availability_pct),
            row.per_day.text(),
            row.per_week.text(),
            row.per_month.text(),
            row.per_year.text(),
        ]);
    }
    let mut out = table::render(&cells);
    out.push_str("\n(downtime allowed; a month is 365.25/12 days, a year 365.25 days)\n");
    emit(&out)?;
    Ok(())
}

fn run_latency(args: JsonArgs) -> anyhow::Result<()> {
    let lessons = latency::lessons();
    if args.json {
        #[derive(serde::Serialize)]
        struct Latency {
            table: &'static [latency::LatencyRow],
            lessons: Vec<latency::Lesson>,
        }
        let out = Latency {
            table: &latency::TABLE,
            lessons,
        };
        emit_json(&out)?;
        return Ok(());
    }
    let mut cells = vec![["operation", "latency", "if an L1 hit took 1 s"].map(String::from)];
    for row in &latency::TABLE {
        cells.push([row.operation.to_owned(), row.text(), row.human_scale_text()]);
    }
    let mut out = table::render(&cells);
    out.push_str("\nLessons:\n");
    for lesson in &lessons {
        out.push_str(&format!("- {} ({})\n", lesson.lesson, lesson.evidence));
    }
    emit(&out)?;
    Ok(())
}

fn run_presets(args: JsonArgs) -> anyhow::Result<()> {
    let all = presets::all();
    if args.json {
        emit_json(&all)?;
        return Ok(());
    }
    let mut cells = vec![["preset", "chapter"].map(String::from)];
    for preset in &all {
        cells.push([preset.name.to_owned(), preset.chapter.to_owned()]);
    }
    emit(&table::render(&cells))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("estimate").chain(line.split_whitespace()))
            .map(|cli| cli.args)
    }

    fn text(line: &str) -> String {
        let args = parse(line).unwrap().capacity;
        let preset = args.preset.as_deref().and_then(presets::preset).unwrap();
        let mut assumptions = preset.assumptions;
        let changed = apply_overrides(&args, &mut assumptions);
        let notes = if changed { Vec::new() } else { preset.notes };
        capacity_text(
            &estimate::report(Some(preset.name), assumptions, &notes).unwrap(),
            changed,
        )
    }

    #[test]
    fn twitter_preset_prints_formulas_and_the_notes_figures() {
        let out = text("--preset twitter");
        let qps = out.lines().find(|l| l.starts_with("QPS")).unwrap();
        assert!(qps.contains("= 300M tweets / 86,400 s"), "{qps}");
        assert!(qps.contains("= 3,472/s"), "{qps}");
        assert!(qps.contains("(≈3.47K/s)"), "{qps}");
        assert!(qps.contains("notes: ≈3,500 (rounded +0.8%)"), "{qps}");
        let retained = out
            .lines()
            .find(|l| l.starts_with("Storage over 5 years"))
            .unwrap();
        assert!(
            retained.contains("= 54.75 PB") && retained.contains("notes: ≈55 PB"),
            "{retained}"
        );
    }

    #[test]
    fn changed_assumptions_hide_the_notes_figures() {
        let out = text("--preset twitter --dau 1B");
        assert!(out.contains("assumptions changed"), "{out}");
        assert!(!out.contains("notes:"), "{out}");
        assert!(out.contains("1B DAU × 2"), "keeps 2 tweets per user: {out}");
        assert!(!text("--preset twitter --peak-factor 2").contains("assumptions changed"));
    }

    #[test]
    fn custom_estimates_need_a_volume() {
        let error = format!(
            "{:#}",
            run(parse("--object-size 1KB").unwrap()).unwrap_err()
        );
        assert!(error.contains("give --preset NAME, or a volume"), "{error}");
        assert!(run(parse("--dau 10M --actions-per-user 3 --object-size 1KB").unwrap()).is_ok());
    }

    #[test]
    fn flags_are_validated() {
        assert!(
            parse("--mau 300M").is_err(),
            "--mau needs --daily-active-ratio"
        );
        assert!(
            parse("--dau 1M --per-day 5").is_err(),
            "one volume at a time"
        );
        assert!(parse("--dau lots").is_err());
        assert!(parse("--preset myspace").is_err());
        assert!(parse("--dau 1M --media-share 120%").is_err());
        let error = format!(
            "{:#}",
            run(parse("--dau 1M --peak-factor 0.5").unwrap()).unwrap_err()
        );
        assert!(error.contains("peak-factor"), "{error}");
        assert!(parse("availability --levels 99.95 --json").is_ok());
        assert!(run(parse("availability --levels 101").unwrap()).is_err());
    }
}
