//! Differential tests of GEO commands against a real `redis-server` (see
//! `common/diff.rs`): random points around Sicily plus the encodable
//! limits, random searches (radius and box, every unit, sorted, counted,
//! `ANY`, stored), every reply compared byte for byte — scores, coordinates
//! and distances to the last digit, in RESP2 and RESP3, on both engines.

use crate::common;

use common::diff::{Pair, stream_of};

const MEMBERS: [&str; 12] = [
    "Palermo",
    "Catania",
    "Messina",
    "Siracusa",
    "Trapani",
    "Agrigento",
    "Enna",
    "Ragusa",
    "a",
    "b",
    "c",
    "12",
];
const FIXED: [(&str, &str); 8] = [
    ("180", "85.05112878"),
    ("-180", "-85.05112878"),
    ("0", "0"),
    ("13.361389", "38.115556"),
    ("15.087269", "37.502669"),
    ("-0.1278", "51.5074"),
    ("179.9999", "-85"),
    ("139.6917", "35.6895"),
];
const BAD: [(&str, &str); 5] = [
    ("181", "0"),
    ("0", "85.06"),
    ("x", "1"),
    ("1", "nan"),
    ("-180.000001", "0"),
];
const UNITS: [&str; 5] = ["m", "km", "mi", "ft", "KM"];
const RADII: [&str; 9] = ["0", "1", "10", "50", "100", "200", "500", "5000", "20000"];

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn point(&mut self) -> (String, String) {
        match self.rng.u8(..10) {
            0 => {
                let (lon, lat) = FIXED[self.rng.usize(..FIXED.len())];
                (lon.into(), lat.into())
            }
            1 if self.rng.u8(..4) == 0 => {
                let (lon, lat) = BAD[self.rng.usize(..BAD.len())];
                (lon.into(), lat.into())
            }
            _ => (
                format!("{:.6}", 12.0 + self.rng.f64() * 4.0),
                format!("{:.6}", 36.0 + self.rng.f64() * 4.0),
            ),
        }
    }

    fn key(&mut self) -> &'static str {
        self.pick(&["g", "g", "g", "h"])
    }

    fn options(&mut self, w: &mut Vec<String>, store: bool) {
        if !store {
            for opt in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
                if self.rng.u8(..3) == 0 {
                    w.push(opt.into());
                }
            }
        }
        match self.rng.u8(..4) {
            0 => w.push("ASC".into()),
            1 => w.push("DESC".into()),
            _ => {}
        }
        if self.rng.u8(..3) == 0 {
            w.push("COUNT".into());
            w.push(self.rng.i64(0..5).to_string());
            if self.rng.u8(..3) == 0 {
                w.push("ANY".into());
            }
        }
    }

    fn from(&mut self, w: &mut Vec<String>) {
        if self.rng.bool() {
            w.push("FROMMEMBER".into());
            w.push(self.pick(&MEMBERS).into());
        } else {
            let (lon, lat) = self.point();
            w.extend(["FROMLONLAT".into(), lon, lat]);
        }
    }

    fn by(&mut self, w: &mut Vec<String>) {
        if self.rng.bool() {
            w.push("BYRADIUS".into());
            w.push(self.pick(&RADII).into());
        } else {
            w.push("BYBOX".into());
            w.push(self.pick(&RADII).into());
            w.push(self.pick(&RADII).into());
        }
        w.push(self.pick(&UNITS).into());
    }

    fn command(&mut self) -> Vec<String> {
        let k = self.key().to_string();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        let mut w;
        match self.rng.u8(..14) {
            0..=3 => {
                w = s(&["GEOADD", &k]);
                if self.rng.u8(..4) == 0 {
                    w.push(self.pick(&["NX", "XX", "CH"]).into());
                }
                for _ in 0..self.rng.usize(1..4) {
                    let (lon, lat) = self.point();
                    w.extend([lon, lat, self.pick(&MEMBERS).into()]);
                }
            }
            4 => w = s(&["GEOPOS", &k, self.pick(&MEMBERS), self.pick(&MEMBERS), "zz"]),
            5 => {
                w = s(&["GEODIST", &k, self.pick(&MEMBERS), self.pick(&MEMBERS)]);
                if self.rng.bool() {
                    w.push(self.pick(&UNITS).into());
                }
            }
            6 => w = s(&["GEOHASH", &k, self.pick(&MEMBERS), "zz"]),
            7..=9 => {
                w = s(&["GEOSEARCH", &k]);
                self.from(&mut w);
                self.by(&mut w);
                self.options(&mut w, false);
            }
            10 => {
                w = s(&["GEOSEARCHSTORE", "dst", &k]);
                self.from(&mut w);
                self.by(&mut w);
                self.options(&mut w, true);
                if self.rng.bool() {
                    w.push("STOREDIST".into());
                }
            }
            11 => {
                let name = self.pick(&["GEORADIUS", "GEORADIUS_RO"]);
                let (lon, lat) = self.point();
                w = s(&[name, &k, &lon, &lat, self.pick(&RADII), self.pick(&UNITS)]);
                self.options(&mut w, false);
            }
            12 => {
                let name = self.pick(&["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]);
                w = s(&[
                    name,
                    &k,
                    self.pick(&MEMBERS),
                    self.pick(&RADII),
                    self.pick(&UNITS),
                ]);
                self.options(&mut w, false);
            }
            _ => {
                w = match self.rng.u8(..3) {
                    0 => s(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
                    1 => s(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
                    _ => s(&["ZREM", &k, self.pick(&MEMBERS)]),
                };
            }
        }
        w
    }
}

fn stream(seed: u64) -> Vec<Vec<Vec<u8>>> {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    stream_of(250, || g.command())
}

#[test]
fn geo_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        // RESP2, then RESP3 (scores as doubles, pairs nested).
        Pair::start(engine).run_seeds(0..40, 100..115, &stream);
    }
}

#[test]
fn geo_errors_match_redis() {
    let mut pair = Pair::start(kv::config::EngineKind::Memory);
    pair.check(
        &[b"GEOADD", b"g", b"13.361389", b"38.115556", b"Palermo"],
        "",
    );
    pair.check(&[b"SET", b"s", b"x"], "");
    for words in [
        &["GEOADD", "g", "200", "10", "x"][..],
        &["GEOADD", "g", "NX", "XX", "1", "2", "x"],
        &["GEOADD", "g", "CH", "CH", "CH"],
        &["GEOADD", "g", "1", "x", "y"],
        &["GEOADD", "s", "1", "2", "y"],
        &[
            "GEOSEARCH",
            "g",
            "FROMMEMBER",
            "nope",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "-1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "parsec",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "x",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYBOX",
            "1",
            "x",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYBOX",
            "x",
            "1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYBOX",
            "-1",
            "1",
            "km",
        ],
        &["GEOSEARCH", "g", "FROMLONLAT", "1", "2", "WITHDIST", "ASC"],
        &["geosearch", "g", "BYRADIUS", "1", "km", "ASC"],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "ANY",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "COUNT",
            "0",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "COUNT",
            "x",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "STORE",
            "d",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMMEMBER",
            "Palermo",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "BYBOX",
            "1",
            "1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "s",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEOSEARCH",
            "nope",
            "FROMMEMBER",
            "x",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "g",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
            "WITHDIST",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "nope",
            "FROMLONLAT",
            "1",
            "2",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEORADIUS",
            "g",
            "1",
            "2",
            "1",
            "km",
            "WITHDIST",
            "STORE",
            "d",
        ],
        &["GEORADIUS_RO", "g", "1", "2", "1", "km", "STORE", "d"],
        &["GEORADIUS", "g", "13", "38", "100", "km", "STOREDIST", "d"],
        &["GEORADIUSBYMEMBER", "g", "nope", "1", "km"],
        &["GEORADIUSBYMEMBER", "nope", "nope", "1", "km", "STORE", "d"],
        &["GEODIST", "g", "a", "b", "c", "d"],
        &["GEODIST", "g", "Palermo", "Palermo", "x"],
        &["GEODIST", "nope", "a", "b"],
        &["GEOPOS", "s", "a"],
        &["GEOHASH", "nope", "a"],
    ] {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        pair.check(&args, "error case");
    }
}

/// Many points (a skiplist in Redis), searched from many centres with
/// every shape and option: results, their order (unsorted ones follow the
/// cells), distances and coordinates to the last digit.
#[test]
fn dense_searches_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        let mut rng = fastrand::Rng::with_seed(5);
        let mut words: Vec<String> = vec!["GEOADD".into(), "g".into()];
        for i in 0..800 {
            words.push(format!("{:.6}", 13.0 + rng.f64() * 2.0));
            words.push(format!("{:.6}", 37.0 + rng.f64() * 1.5));
            words.push(format!("p{i}"));
        }
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        pair.check(&args, "fill");
        for round in 0..150 {
            let lon = format!("{:.5}", 12.8 + rng.f64() * 2.4);
            let lat = format!("{:.5}", 36.8 + rng.f64() * 1.9);
            let r = ["0.5", "3", "10", "25", "60", "150"][rng.usize(..6)];
            let mut w: Vec<String> = ["GEOSEARCH", "g"].map(String::from).to_vec();
            if round % 3 == 0 {
                w.extend(["FROMMEMBER".into(), format!("p{}", rng.u32(..800))]);
            } else {
                w.extend(["FROMLONLAT".into(), lon, lat]);
            }
            if rng.bool() {
                w.extend(["BYRADIUS".into(), r.into(), "km".into()]);
            } else {
                let h = ["1", "8", "40", "120"][rng.usize(..4)];
                w.extend(["BYBOX".into(), r.into(), h.into(), "km".into()]);
            }
            match rng.u8(..4) {
                0 => w.push("ASC".into()),
                1 => w.push("DESC".into()),
                _ => {}
            }
            if rng.bool() {
                w.extend(["COUNT".into(), rng.u32(1..30).to_string()]);
                if rng.u8(..3) == 0 {
                    w.push("ANY".into());
                }
            }
            w.extend(["WITHDIST", "WITHCOORD", "WITHHASH"].map(String::from));
            let args: Vec<&[u8]> = w.iter().map(|x| x.as_bytes()).collect();
            pair.check(&args, &format!("round {round}"));
        }
    }
}
