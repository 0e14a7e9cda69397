//! The notes' worked examples, as presets, with the figures the notes state.
//!
//! Each preset pairs the example's assumptions with the figures the notes
//! wrote down ([`NotesFigure`]), so `hyperscale estimate --preset twitter`
//! prints our exact arithmetic next to the notes' rounded answer, and the
//! tests check that every exact figure lands within the stated rounding of
//! the notes. Where the notes round loosely (ad clicks: 11,574 QPS written as
//! "about 10,000"), the tolerance says so instead of hiding it.

use serde::Serialize;

use crate::capacity::{Assumptions, Mix, Population, Volume};
use crate::explain::Metric;

/// A figure as the notes state it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotesFigure {
    /// Which output it is.
    pub metric: Metric,
    /// How the notes write it, in English ("≈3,500").
    pub text: &'static str,
    /// Its value in plain units (per second, bytes, count).
    pub value: f64,
    /// How far (% of the notes' value) our exact figure may be from it: the
    /// notes' own rounding. 0 where the notes compute exactly.
    pub tolerance_pct: f64,
    /// The line of the notes it comes from, verbatim.
    pub quote: &'static str,
}

/// One worked example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    /// Name on the command line.
    pub name: &'static str,
    /// The chapter the example comes from.
    pub chapter: &'static str,
    /// One line on what is being sized, and any liberty taken.
    pub description: &'static str,
    /// The example's assumptions.
    pub assumptions: Assumptions,
    /// The figures the notes give.
    pub notes: Vec<NotesFigure>,
}

/// The names of all presets, in chapter order.
pub const NAMES: [&str; 5] = ["twitter", "shortener", "crawler", "adclick", "autocomplete"];

/// Every preset, in chapter order.
pub fn all() -> Vec<Preset> {
    NAMES.iter().filter_map(|name| preset(name)).collect()
}

/// The preset called `name`, if any.
pub fn preset(name: &str) -> Option<Preset> {
    match name {
        "twitter" => Some(twitter()),
        "shortener" => Some(shortener()),
        "crawler" => Some(crawler()),
        "adclick" => Some(adclick()),
        "autocomplete" => Some(autocomplete()),
        _ => None,
    }
}

const fn figure(
    metric: Metric,
    text: &'static str,
    value: f64,
    tolerance_pct: f64,
    quote: &'static str,
) -> NotesFigure {
    NotesFigure {
        metric,
        text,
        value,
        tolerance_pct,
        quote,
    }
}

fn twitter() -> Preset {
    let mut a = Assumptions::new(Volume::PerUser {
        population: Population::Mau {
            mau: 300e6,
            daily_active_ratio: 0.5,
        },
        actions_per_user_per_day: 2.0,
    });
    a.action_name = "tweets".to_owned();
    a.media_share = 0.1;
    a.media_size_bytes = 1e6;
    a.retention_years = Some(5.0);
    Preset {
        name: "twitter",
        chapter: "ch. 2, back-of-the-envelope estimation (개략적인 규모 추정)",
        description: "Twitter QPS and media storage. Like the notes, only media is sized \
                      (add --object-size 204B for the 64 B id and 140 B text).",
        assumptions: a,
        notes: vec![
            figure(
                Metric::Dau,
                "150M",
                150e6,
                0.0,
                "일간 능동 사용자(Daily Active User, DAU) = 3억 X 50% = 1.5억",
            ),
            figure(
                Metric::Qps,
                "≈3,500",
                3_500.0,
                1.0,
                "QPS = 1.5억 X 2 트윗 / 24시간 / 3600초 = 약 3500",
            ),
            figure(
                Metric::PeakQps,
                "≈7,000",
                7_000.0,
                1.0,
                "최대 QPS(Peek QPS) = 2 X QPS = 약 7000",
            ),
            figure(
                Metric::StoragePerDay,
                "30 TB/day",
                30e12,
                0.0,
                "미디어 저장소 요구량: 1.5억 X 2 X 10% X 1MB = 30TB/일",
            ),
            figure(
                Metric::StorageRetained,
                "≈55 PB",
                55e15,
                1.0,
                "5년간 미디어를 보관하기 위한 저장소 요구량 = 30TB X 365 X 5 = 약 55PB",
            ),
        ],
    }
}

fn shortener() -> Preset {
    let mut a = Assumptions::new(Volume::PerDay { actions: 100e6 });
    a.action_name = "URLs".to_owned();
    a.mix = Mix::ReadsPerWrite(10.0);
    a.object_size_bytes = 100.0;
    a.retention_years = Some(10.0);
    Preset {
        name: "shortener",
        chapter: "ch. 8, URL shortener (URL 단축기)",
        description: "100 million new short URLs a day, read 10 times each, kept 10 years. \
                      The notes give no peak factor; the default 2x is shown.",
        assumptions: a,
        notes: vec![
            figure(
                Metric::WriteQps,
                "1,160",
                1_160.0,
                0.5,
                "초당 쓰기 연산: 1160",
            ),
            figure(
                Metric::ReadQps,
                "11,600",
                11_600.0,
                0.5,
                "읽기 연산과 쓰기 연산 비율을 10:1로 하면 초당 11,600회",
            ),
            figure(
                Metric::RecordsRetained,
                "365 billion",
                365e9,
                0.0,
                "10년간 운영한다고 하면 3650억개의 레코드를 보관",
            ),
            figure(
                Metric::StorageRetained,
                "36.5 TB",
                36.5e12,
                0.0,
                "10년동안 필요한 저장 용량은 3650억 X 100바이트 = 36.5TB",
            ),
        ],
    }
}

fn crawler() -> Preset {
    let mut a = Assumptions::new(Volume::PerMonth { actions: 1e9 });
    a.action_name = "pages".to_owned();
    a.object_size_bytes = 500e3;
    a.retention_years = Some(5.0);
    // The notes multiply 500 TB/month by 12 months: a year of 12 x 30 days.
    a.days_per_year = 360.0;
    Preset {
        name: "crawler",
        chapter: "ch. 9, web crawler (웹 크롤러)",
        description: "1 billion pages a month of 500 KB, kept 5 years. Like the notes, a month \
                      is 30 days and a year 12 such months.",
        assumptions: a,
        notes: vec![
            figure(
                Metric::Qps,
                "≈400 pages/s",
                400.0,
                4.0,
                "QPS=10억 / 30일 / 24시간 / 3600초 = 약 400페이지/초",
            ),
            figure(
                Metric::PeakQps,
                "800",
                800.0,
                4.0,
                "최대 QPS = 2 X QPS = 800",
            ),
            figure(
                Metric::StoragePerMonth,
                "500 TB/month",
                500e12,
                0.0,
                "10억 페이지 x 500k = 500TB/월",
            ),
            figure(
                Metric::StorageRetained,
                "30 PB",
                30e15,
                0.0,
                "500TB X 12개월 X 5년 = 30PB의 저장용량 필요",
            ),
        ],
    }
}

fn adclick() -> Preset {
    let mut a = Assumptions::new(Volume::PerUser {
        population: Population::Dau { dau: 1e9 },
        actions_per_user_per_day: 1.0,
    });
    a.action_name = "clicks".to_owned();
    a.peak_factor = 5.0;
    a.object_size_bytes = 100.0;
    Preset {
        name: "adclick",
        chapter: "vol. 2 ch. 6, ad click event aggregation (광고 클릭 이벤트 집계)",
        description: "1 billion ad clicks a day of 0.1 KB each, peaking at 5x. The notes round \
                      1e9 / 86,400 = 11,574 down to \"about 10,000\".",
        assumptions: a,
        notes: vec![
            figure(
                Metric::Qps,
                "≈10,000",
                10_000.0,
                16.0,
                "10억 건 ÷ 86,400초 ≈ 10,000 QPS",
            ),
            figure(
                Metric::PeakQps,
                "50,000",
                50_000.0,
                16.0,
                "최대 QPS = 10,000 × 5 = 50,000 QPS",
            ),
            figure(
                Metric::StoragePerDay,
                "100 GB/day",
                100e9,
                0.0,
                "0.1KB × 10억 건 = 100GB",
            ),
            figure(
                Metric::StoragePerMonth,
                "≈3 TB/month",
                3e12,
                0.0,
                "100GB × 30일 ≈ 3TB",
            ),
        ],
    }
}

fn autocomplete() -> Preset {
    let mut a = Assumptions::new(Volume::PerUser {
        population: Population::Dau { dau: 10e6 },
        actions_per_user_per_day: 10.0,
    });
    a.action_name = "searches".to_owned();
    a.requests_per_action = 20.0;
    a.mix = Mix::AllReads;
    a.object_size_bytes = 20.0;
    a.stored_share = 0.2;
    Preset {
        name: "autocomplete",
        chapter: "ch. 13, search autocomplete (검색어 자동완성)",
        description: "10 million users, 10 searches a day, one request per typed character \
                      (20 per search); 20% of searches are new 20-byte queries.",
        assumptions: a,
        notes: vec![
            figure(
                Metric::Qps,
                "≈24,000",
                24_000.0,
                4.0,
                "대략 초당 24,000건의 질의(QPS)가 발생",
            ),
            figure(
                Metric::PeakQps,
                "≈48,000",
                48_000.0,
                4.0,
                "최대 QPS=QPS x 2 = 대략 48,000",
            ),
            figure(
                Metric::StoragePerDay,
                "≈0.4 GB/day",
                0.4e9,
                0.0,
                "대략 0.4GB의 신규 데이터가 시스템에 추가",
            ),
        ],
    }
}
