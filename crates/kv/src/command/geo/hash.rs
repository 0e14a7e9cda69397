//! The geohash: a point on the map as one integer whose prefixes are
//! areas, so "points near here" becomes "scores in a few ranges".
//!
//! The proximity-service chapter's idea, exactly as Redis implements it
//! (so scores, distances and search results equal Redis's to the bit):
//!
//! 1. Longitude in [-180, 180] and latitude in [-85.05112878, 85.05112878]
//!    (the Web Mercator limits: the poles cannot be encoded) are each
//!    scaled to a 26-bit integer: the offset within the range, times 2^26,
//!    truncated.
//! 2. The two integers are *interleaved* bit by bit (latitude in the even
//!    bits, longitude in the odd ones) into a 52-bit number. Each pair of
//!    bits halves the cell in both directions, so the first 2k bits name a
//!    cell of the k-th subdivision, and points in one cell share a prefix.
//!    52 bits fit a double's mantissa exactly: that number is the point's
//!    score in the sorted set (`ZSCORE` of a `GEOADD`ed member shows it).
//! 3. Decoding reverses the interleave and returns the centre of the
//!    26-level cell (its corners are ~0.6 m apart), which is why `GEOPOS`
//!    answers a coordinate slightly off the one that was added.
//!
//! A radius (or box) search ([`areas`]) picks the subdivision level whose
//! cells are about as large as the radius, takes the cell of the centre and
//! its 8 neighbours, and turns each cell into a score range
//! `[prefix << rest, (prefix + 1) << rest)`: up to 9 range scans of the
//! score index, whose candidates are then filtered by their exact distance
//! (haversine, [`distance`]).
//!
//! Plain geohash strings (`GEOHASH`) use latitude [-90, 90] instead, so the
//! point is decoded and re-encoded for them ([`standard_string`]).

use std::f64::consts::PI;

/// Levels of subdivision in a stored score (2 bits each: 52 bits).
pub(super) const STEP_MAX: u8 = 26;
/// Longitude limits.
pub(super) const LONG_MIN: f64 = -180.0;
/// Longitude limits.
pub(super) const LONG_MAX: f64 = 180.0;
/// Latitude limits (Web Mercator's).
pub(super) const LAT_MIN: f64 = -85.05112878;
/// Latitude limits (Web Mercator's).
pub(super) const LAT_MAX: f64 = 85.05112878;

const D_R: f64 = PI / 180.0;
/// The Earth's quadratic mean radius for WGS-84, as Redis uses it.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// A cell: its interleaved bits and its level (0 bits and level 0 is "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A `[min, max]` interval.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Range {
    pub min: f64,
    pub max: f64,
}

/// A cell's extent.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// Spreads the low 32 bits of `x` and `y` into alternate bits (`x` even).
fn interleave(x: u32, y: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(x), u64::from(y));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// The inverse of [`interleave`]: even bits in the low word, odd in the high.
fn deinterleave(bits: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (bits, bits >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// The cell of level `step` holding the point, within the given ranges;
/// `None` outside them (Redis's `geohashEncode`).
fn encode_in(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(Cell {
        bits: interleave(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// The cell of level `step` holding the point (Redis's coordinate ranges).
pub(super) fn encode(longitude: f64, latitude: f64, step: u8) -> Option<Cell> {
    encode_in(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// The score a point is stored with: its 26-level cell, 52 bits.
pub(super) fn score_of(longitude: f64, latitude: f64) -> Option<f64> {
    encode(longitude, latitude, STEP_MAX).map(|cell| align52(cell) as f64)
}

/// A cell's bits shifted to the top of 52 (a score prefix).
fn align52(cell: Cell) -> u64 {
    cell.bits << (52 - u32::from(cell.step) * 2)
}

/// The extent of a cell (Redis's `geohashDecode`).
fn decode_in(long_range: Range, lat_range: Range, cell: Cell) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let separated = deinterleave(cell.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = separated as u32;
    let ilono = (separated >> 32) as u32;
    let cells = (1u64 << cell.step) as f64;
    let at = |i: u32, r: Range, scale: f64| r.min + (f64::from(i) * 1.0 / cells) * scale;
    let next =
        |i: u32, r: Range, scale: f64| r.min + (f64::from(i.wrapping_add(1)) * 1.0 / cells) * scale;
    Some(Area {
        latitude: Range {
            min: at(ilato, lat_range, lat_scale),
            max: next(ilato, lat_range, lat_scale),
        },
        longitude: Range {
            min: at(ilono, long_range, long_scale),
            max: next(ilono, long_range, long_scale),
        },
    })
}

fn decode(cell: Cell) -> Option<Area> {
    decode_in(LONG_RANGE, LAT_RANGE, cell)
}

/// The point a stored score stands for: the centre of its cell, clamped
/// to the limits (`[longitude, latitude]`).
pub(super) fn point_of(score: f64) -> Option<[f64; 2]> {
    let area = decode(Cell {
        bits: score as u64,
        step: STEP_MAX,
    })?;
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some([lon, lat])
}

/// The 11-character standard geohash of a stored score (`GEOHASH`).
pub(super) fn standard_string(score: f64) -> Option<String> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = point_of(score)?;
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode_in(LONG_RANGE, standard_lat, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    Some(
        (0..11)
            .map(|i| {
                // 52 bits make 10 characters; the 11th is always '0'.
                let idx = if i == 10 {
                    0
                } else {
                    (bits >> (52 - (i + 1) * 5)) & 0x1f
                };
                ALPHABET[idx as usize] as char
            })
            .collect(),
    )
}

/// Moves a cell one step east (`d > 0`) or west along the longitude bits.
fn move_x(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = cell.bits & 0xaaaaaaaaaaaaaaaa;
    let y = cell.bits & 0x5555555555555555;
    let width = 64 - u32::from(cell.step) * 2;
    let zz = 0x5555555555555555u64.checked_shr(width).unwrap_or(0);
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaaaaaaaaaaaaaau64.checked_shr(width).unwrap_or(0);
    cell.bits = x | y;
}

/// Moves a cell one step north (`d > 0`) or south along the latitude bits.
fn move_y(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let x = cell.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = cell.bits & 0x5555555555555555;
    let width = 64 - u32::from(cell.step) * 2;
    let zz = 0xaaaaaaaaaaaaaaaau64.checked_shr(width).unwrap_or(0);
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555555555555555u64.checked_shr(width).unwrap_or(0);
    cell.bits = x | y;
}

fn neighbor(cell: Cell, dx: i8, dy: i8) -> Cell {
    let mut n = cell;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

/// A search shape around a centre, in the client's unit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// A circle of this radius.
    Radius(f64),
    /// A box this wide and high.
    Box { width: f64, height: f64 },
}

/// What is searched: the centre (`[longitude, latitude]`), the shape and
/// the unit's size in metres.
#[derive(Debug, Clone, Copy)]
pub(super) struct Search {
    pub center: [f64; 2],
    pub shape: Shape,
    pub conversion: f64,
}

impl Search {
    /// The distance of a point from the centre in metres, if the point is
    /// inside the shape (Redis's `geoWithinShape`).
    pub fn distance_if_within(&self, point: [f64; 2]) -> Option<f64> {
        let [x1, y1] = self.center;
        let [x2, y2] = point;
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(x1, y1, x2, y2);
                (d <= r * self.conversion).then_some(d)
            }
            Shape::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                if lat_distance(y2, y1) > height_m / 2.0 {
                    return None;
                }
                if distance(x2, y2, x1, y2) > width_m / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, x2, y2))
            }
        }
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` around the shape.
    fn bounds(&self) -> [f64; 4] {
        let [longitude, latitude] = self.center;
        let (height, width) = match self.shape {
            Shape::Radius(r) => (self.conversion * r, self.conversion * r),
            Shape::Box { width, height } => (
                self.conversion * (height / 2.0),
                self.conversion * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let southern = latitude < 0.0;
        let delta = if southern {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            longitude - delta,
            latitude - lat_delta,
            longitude + delta,
            latitude + lat_delta,
        ]
    }
}

/// The subdivision level whose cells are about `range_meters` wide.
fn steps_for_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// The cells to scan for a search, in Redis's order (the centre's cell,
/// then N, S, E, W, NE, NW, SE, SW), with "none" for cells the shape
/// cannot reach (Redis's `geohashCalculateAreasByShapeWGS84`).
pub(super) fn areas(search: &Search) -> [Cell; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = search.bounds();
    let [longitude, latitude] = search.center;
    let radius_meters = match search.shape {
        Shape::Radius(r) => r,
        Shape::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * search.conversion;
    let mut steps = steps_for_radius(radius_meters, latitude);
    let around = |steps: u8| {
        let cell = encode(longitude, latitude, steps).unwrap_or(Cell {
            bits: 0,
            step: steps,
        });
        let n = [
            neighbor(cell, 0, 1),   // north
            neighbor(cell, 0, -1),  // south
            neighbor(cell, 1, 0),   // east
            neighbor(cell, -1, 0),  // west
            neighbor(cell, 1, 1),   // north-east
            neighbor(cell, -1, 1),  // north-west
            neighbor(cell, 1, -1),  // south-east
            neighbor(cell, -1, -1), // south-west
        ];
        (cell, n)
    };
    let (mut cell, mut n) = around(steps);
    let area_of = |c: Cell| decode(c).unwrap_or_default();
    let too_coarse = area_of(n[0]).latitude.max < max_lat
        || area_of(n[1]).latitude.min > min_lat
        || area_of(n[2]).longitude.max < max_lon
        || area_of(n[3]).longitude.min > min_lon;
    if steps > 1 && too_coarse {
        steps -= 1;
        (cell, n) = around(steps);
    }
    let area = area_of(cell);
    if steps >= 2 {
        let none = Cell::default();
        if area.latitude.min < min_lat {
            for i in [1, 7, 6] {
                n[i] = none; // south, south-west, south-east
            }
        }
        if area.latitude.max > max_lat {
            for i in [0, 4, 5] {
                n[i] = none; // north, north-east, north-west
            }
        }
        if area.longitude.min < min_lon {
            for i in [3, 7, 5] {
                n[i] = none; // west, south-west, north-west
            }
        }
        if area.longitude.max > max_lon {
            for i in [2, 6, 4] {
                n[i] = none; // east, south-east, north-east
            }
        }
    }
    [cell, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]]
}

/// The score range `[min, max)` of the points inside a cell.
pub(super) fn score_range(cell: Cell) -> (f64, f64) {
    let min = align52(cell);
    let max = align52(Cell {
        bits: cell.bits.wrapping_add(1),
        step: cell.step,
    });
    (min as f64, max as f64)
}

/// Whether a cell is "none".
pub(super) fn is_none(cell: Cell) -> bool {
    cell.is_zero()
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// The haversine distance in metres between two points (degrees).
pub(super) fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// A distance as Redis prints it: 4 decimals, rounded half to even
/// (its `fixedpoint_d2string`).
pub(super) fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = (d * 10000.0).round_ties_even();
    let value = if scaled.is_finite() {
        scaled.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    } else {
        i64::MIN // llrint's answer for what it cannot represent
    };
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    format!("{sign}{}.{:04}", magnitude / 10000, magnitude % 10000)
}

/// A coordinate as Redis prints it: `%.17f` of the value with trailing
/// zeros (and a bare point) removed, `-0` as `0`.
pub(super) fn format_coordinate(d: f64) -> String {
    let text = format!("{d:.17}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_encodes_and_decodes_as_in_redis() {
        // Values from redis-server 7.0: GEOADD g 13.361389 38.115556 Palermo.
        let score = score_of(13.361389, 38.115556).unwrap();
        assert_eq!(score, 3479099956230698.0);
        let [lon, lat] = point_of(score).unwrap();
        assert_eq!(format_coordinate(lon), "13.36138933897018433");
        assert_eq!(format_coordinate(lat), "38.11555639549629859");
        let catania = point_of(score_of(15.087269, 37.502669).unwrap()).unwrap();
        assert_eq!(
            format_distance(distance(lon, lat, catania[0], catania[1]) / 1000.0),
            "166.2742"
        );
        assert_eq!(standard_string(score).unwrap(), "sqc8b49rny0");
        assert_eq!(score_of(180.0, 85.05112878), Some(13510798882111488.0));
        assert_eq!(
            format_coordinate(point_of(13510798882111488.0).unwrap()[1]),
            "85.0511287799999991"
        );
        assert_eq!(score_of(180.0, 85.05112879), None);
        assert_eq!(score_of(-180.1, 0.0), None);
    }

    #[test]
    fn distances_round_like_fixedpoint_d2string() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(-0.0), "0.0000");
        assert_eq!(format_distance(1.23456), "1.2346");
        assert_eq!(format_distance(0.00005), "0.0000", "ties go to even");
        assert_eq!(format_distance(-2.5), "-2.5000");
        assert_eq!(format_distance(123456.7), "123456.7000");
    }

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ffffff, 0x1234567),
            (u32::MAX, 7),
        ] {
            let d = deinterleave(interleave(x, y));
            assert_eq!((d as u32, (d >> 32) as u32), (x, y));
        }
    }
}
