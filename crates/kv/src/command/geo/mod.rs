//! GEO: points as 52-bit geohash scores in a sorted set (`GEOADD`,
//! `GEOSEARCH`...), the proximity service's index.
//!
//! A GEO key *is* a sorted set: `GEOADD` stores each point with its
//! geohash as the score (see [`hash`] for how a coordinate becomes 52
//! interleaved bits, and why nearby points get nearby scores), so
//! `ZSCORE`, `ZRANGE` and `ZREM` work on it and a radius search is a few
//! score-range scans over [`super::zset::store`]'s index. Everything is
//! computed as Redis computes it, so scores, `GEOPOS` coordinates,
//! distances (4 decimals) and search results, in order, equal Redis's.
//!
//! - this module: `GEOADD GEOPOS GEODIST GEOHASH` and the argument parsers;
//! - [`search`]: `GEOSEARCH GEOSEARCHSTORE GEORADIUS GEORADIUSBYMEMBER` (and `_RO`).

mod hash;
mod search;
mod sort;

use bytes::Bytes;

use super::zset::parse::{not_float, score_arg};
use super::zset::store;
use super::zset::write::{AddFlags, add_all};
use super::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, is, key_error, reply, syntax_error,
};
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::Kind;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("geo");
    let w = WRITE | DENYOOM;
    let one = (1, 1, 1);
    vec![
        s(
            "geoadd",
            -5,
            w,
            one,
            "Adds points (longitude, latitude, member).",
            geoadd,
        ),
        s(
            "geopos",
            -2,
            READONLY,
            one,
            "Returns the coordinates of members.",
            geopos,
        ),
        s(
            "geodist",
            -4,
            READONLY,
            one,
            "Returns the distance between two members.",
            geodist,
        ),
        s(
            "geohash",
            -2,
            READONLY,
            one,
            "Returns members' standard geohash strings.",
            geohash,
        ),
        s(
            "geosearch",
            -7,
            READONLY,
            one,
            "Finds members within a radius or box.",
            search::geosearch,
        ),
        s(
            "geosearchstore",
            -8,
            w,
            (1, 2, 1),
            "Stores the members within a radius or box.",
            search::geosearchstore,
        ),
        s(
            "georadius",
            -6,
            w,
            one,
            "Finds members within a radius of a point (legacy).",
            search::georadius,
        ),
        s(
            "georadius_ro",
            -6,
            READONLY,
            one,
            "Finds members within a radius of a point (legacy, read-only).",
            search::georadius_ro,
        ),
        s(
            "georadiusbymember",
            -5,
            w,
            one,
            "Finds members within a radius of a member (legacy).",
            search::georadiusbymember,
        ),
        s(
            "georadiusbymember_ro",
            -5,
            READONLY,
            one,
            "Finds members within a radius of a member (legacy, read-only).",
            search::georadiusbymember_ro,
        ),
    ]
}

/// Reads a `longitude latitude` pair, with Redis's checks and errors.
fn lon_lat(args: &[Bytes]) -> Result<[f64; 2], Frame> {
    let lon = score_arg(&args[0]).ok_or_else(not_float)?;
    let lat = score_arg(&args[1]).ok_or_else(not_float)?;
    if !(hash::LONG_MIN..=hash::LONG_MAX).contains(&lon)
        || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&lat)
    {
        return Err(Frame::error(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

/// A unit's size in metres.
fn unit(arg: &[u8]) -> Result<f64, Frame> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .into_iter()
        .find(|(name, _)| is(arg, name))
        .map(|(_, metres)| metres)
        .ok_or_else(|| Frame::error("ERR unsupported unit provided. please use M, KM, FT, MI"))
}

/// The sorted set at `key` for a read.
fn read_geo(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .read_collection(key, Kind::ZSet, now)
        .map_err(key_error)
}

/// The point a member stands at, if it is in the set.
fn member_point(
    ctx: &mut Ctx<'_>,
    c: &Collection,
    member: &[u8],
) -> Result<Option<[f64; 2]>, Frame> {
    let score = store::score(ctx.ks(), c, member).map_err(engine_error)?;
    Ok(score.and_then(hash::point_of))
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`.
fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (mut f, mut ch) = (AddFlags::default(), false);
        let mut at = 2;
        while let Some(word) = args.get(at) {
            if is(word, "nx") {
                f.nx = true;
            } else if is(word, "xx") {
                f.xx = true;
            } else if is(word, "ch") {
                ch = true;
            } else {
                break;
            }
            at += 1;
        }
        let triples = &args[at..];
        if !triples.len().is_multiple_of(3) || (f.xx && f.nx) || triples.is_empty() {
            return Err(syntax_error());
        }
        let mut scores = Vec::with_capacity(triples.len() / 3);
        for t in triples.chunks_exact(3) {
            let [lon, lat] = lon_lat(&t[..2])?;
            scores.push(hash::score_of(lon, lat).unwrap_or(0.0));
        }
        let members = triples.chunks_exact(3).map(|t| &t[2]);
        add_all(ctx, &args[1], f, ch, scores.into_iter().zip(members))
    })())
}

/// `GEOPOS key member [...]`: `[longitude, latitude]` or a null per member.
fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let c = read_geo(ctx, &args[1])?;
        let mut out = Vec::with_capacity(args.len() - 2);
        for member in &args[2..] {
            let point = match &c {
                Some(c) => member_point(ctx, c, member)?,
                None => None,
            };
            out.push(match point {
                Some(p) => coordinates(p),
                None => Frame::NullArray,
            });
        }
        Ok(Frame::Array(out))
    })())
}

/// A point as Redis replies it.
fn coordinates([lon, lat]: [f64; 2]) -> Frame {
    Frame::Array(vec![
        Frame::DoubleText(hash::format_coordinate(lon)),
        Frame::DoubleText(hash::format_coordinate(lat)),
    ])
}

/// `GEODIST key member1 member2 [M|KM|FT|MI]`.
fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let to_meter = match args.len() {
            4 => 1.0,
            5 => unit(&args[4])?,
            _ => return Err(syntax_error()),
        };
        let Some(c) = read_geo(ctx, &args[1])? else {
            return Ok(Frame::Null);
        };
        let a = store::score(ctx.ks(), &c, &args[2]).map_err(engine_error)?;
        let b = store::score(ctx.ks(), &c, &args[3]).map_err(engine_error)?;
        let (Some(a), Some(b)) = (a.and_then(hash::point_of), b.and_then(hash::point_of)) else {
            return Ok(Frame::Null);
        };
        let d = hash::distance(a[0], a[1], b[0], b[1]) / to_meter;
        Ok(Frame::bulk(hash::format_distance(d)))
    })())
}

/// `GEOHASH key member [...]`: 11-character standard geohashes.
fn geohash(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let c = read_geo(ctx, &args[1])?;
        let mut out = Vec::with_capacity(args.len() - 2);
        for member in &args[2..] {
            let score = match &c {
                Some(c) => store::score(ctx.ks(), c, member).map_err(engine_error)?,
                None => None,
            };
            out.push(
                score
                    .and_then(hash::standard_string)
                    .map_or(Frame::Null, Frame::bulk),
            );
        }
        Ok(Frame::Array(out))
    })())
}

#[cfg(test)]
mod tests;
