//! Proximity search: `GEOSEARCH`, `GEOSEARCHSTORE` and the legacy
//! `GEORADIUS` / `GEORADIUSBYMEMBER` (and their `_RO` forms), one parser
//! and one search following Redis's `georadiusGeneric`: the same options,
//! errors in the same order, the same cells scanned in the same order
//! ([`hash::areas`]), so unsorted results, `ANY` results and ties come out
//! as Redis's do.

use std::collections::HashSet;

use bytes::Bytes;

use super::hash::{self, Search, Shape};
use super::sort;
use super::{coordinates, lon_lat, member_point, read_geo, unit};
use crate::command::zset::parse::{ScoreBound, ScoreRange, score_arg};
use crate::command::zset::store::{self, Item, Span};
use crate::command::zset::store_items;
use crate::command::{Ctx, engine_error, int_arg, is, reply, syntax_error};
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;

/// Which command form is parsing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `GEORADIUS key lon lat radius unit ...` (`store`: STORE allowed).
    Radius { store: bool },
    /// `GEORADIUSBYMEMBER key member radius unit ...`.
    RadiusByMember { store: bool },
    /// `GEOSEARCH key ...`.
    Search,
    /// `GEOSEARCHSTORE dst key ...`.
    SearchStore,
}

/// One point found.
struct Found {
    member: Bytes,
    score: f64,
    point: [f64; 2],
    dist: f64,
}

/// A radius or box as an argument triple/quadruple, checked as Redis does.
fn radius(args: &[Bytes]) -> Result<(f64, f64), Frame> {
    let r = score_arg(&args[0]).ok_or_else(|| Frame::error("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(Frame::error("ERR radius cannot be negative"));
    }
    Ok((r, unit(&args[1])?))
}

fn boxed(args: &[Bytes]) -> Result<(f64, f64, f64), Frame> {
    let w = score_arg(&args[0]).ok_or_else(|| Frame::error("ERR need numeric width"))?;
    let h = score_arg(&args[1]).ok_or_else(|| Frame::error("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(Frame::error("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(&args[2])?))
}

fn could_not_decode() -> Frame {
    Frame::error("ERR could not decode requested zset member")
}

fn generic(ctx: &mut Ctx<'_>, args: &[Bytes], form: Form) -> Frame {
    reply((|| {
        let src = if form == Form::SearchStore { 2 } else { 1 };
        let zset = read_geo(ctx, &args[src])?;
        let mut center = None;
        let mut shape = None;
        let mut conversion = 1.0;
        let mut store_key: Option<Bytes> = None;
        let mut storedist = false;
        let base = match form {
            Form::Radius { .. } => {
                center = Some(lon_lat(&args[2..4])?);
                let (r, c) = radius(&args[4..6])?;
                (shape, conversion) = (Some(Shape::Radius(r)), c);
                6
            }
            Form::RadiusByMember { .. } => {
                if let Some(z) = &zset {
                    center = Some(member_point(ctx, z, &args[2])?.ok_or_else(could_not_decode)?);
                    let (r, c) = radius(&args[3..5])?;
                    (shape, conversion) = (Some(Shape::Radius(r)), c);
                }
                5
            }
            Form::Search => 2,
            Form::SearchStore => {
                store_key = Some(args[1].clone());
                3
            }
        };
        let searching = matches!(form, Form::Search | Form::SearchStore);
        let may_store = matches!(
            form,
            Form::Radius { store: true } | Form::RadiusByMember { store: true }
        );
        let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
        let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
        let mut sort: Option<bool> = None; // Some(true) = descending
        let mut count: i64 = 0;
        let rest = &args[base.min(args.len())..];
        let mut i = 0;
        while i < rest.len() {
            let arg = &rest[i];
            let left = rest.len() - i - 1;
            if is(arg, "withdist") {
                withdist = true;
            } else if is(arg, "withhash") {
                withhash = true;
            } else if is(arg, "withcoord") {
                withcoord = true;
            } else if is(arg, "any") {
                any = true;
            } else if is(arg, "asc") {
                sort = Some(false);
            } else if is(arg, "desc") {
                sort = Some(true);
            } else if is(arg, "count") && left >= 1 {
                count = int_arg(&rest[i + 1])?;
                if count <= 0 {
                    return Err(Frame::error("ERR COUNT must be > 0"));
                }
                i += 1;
            } else if (is(arg, "store") || is(arg, "storedist")) && left >= 1 && may_store {
                store_key = Some(rest[i + 1].clone());
                storedist = is(arg, "storedist");
                i += 1;
            } else if is(arg, "storedist") && form == Form::SearchStore {
                storedist = true;
            } else if is(arg, "frommember") && left >= 1 && searching && !fromloc {
                if let Some(z) = &zset {
                    center =
                        Some(member_point(ctx, z, &rest[i + 1])?.ok_or_else(could_not_decode)?);
                }
                frommember = true;
                i += 1;
            } else if is(arg, "fromlonlat") && left >= 2 && searching && !frommember {
                center = Some(lon_lat(&rest[i + 1..i + 3])?);
                fromloc = true;
                i += 2;
            } else if is(arg, "byradius") && left >= 2 && searching && !bybox {
                let (r, c) = radius(&rest[i + 1..i + 3])?;
                (shape, conversion) = (Some(Shape::Radius(r)), c);
                byradius = true;
                i += 2;
            } else if is(arg, "bybox") && left >= 3 && searching && !byradius {
                let (width, height, c) = boxed(&rest[i + 1..i + 4])?;
                (shape, conversion) = (Some(Shape::Box { width, height }), c);
                bybox = true;
                i += 3;
            } else {
                return Err(syntax_error());
            }
            i += 1;
        }
        if store_key.is_some() && (withdist || withhash || withcoord) {
            return Err(Frame::error(format!(
                "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
                if form == Form::SearchStore {
                    "GEOSEARCHSTORE"
                } else {
                    "STORE option in GEORADIUS"
                }
            )));
        }
        let name = String::from_utf8_lossy(&args[0]);
        if searching && !(frommember || fromloc) {
            return Err(Frame::error(format!(
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
            )));
        }
        if searching && !(byradius || bybox) {
            return Err(Frame::error(format!(
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
            )));
        }
        if any && count == 0 {
            return Err(Frame::error("ERR the ANY argument requires COUNT argument"));
        }
        let (Some(z), Some(center), Some(shape)) = (zset, center, shape) else {
            return match store_key {
                Some(dst) => {
                    store_items(ctx, &dst, &[])?;
                    Ok(Frame::Integer(0))
                }
                None => Ok(Frame::Array(Vec::new())),
            };
        };
        if count != 0 && sort.is_none() && !any {
            sort = Some(false);
        }
        let search = Search {
            center,
            shape,
            conversion,
        };
        let limit = if any { count as u64 } else { 0 };
        let mut found = find(ctx, &z, &search, limit)?;
        let returned = if count > 0 {
            found.len().min(count as usize)
        } else {
            found.len()
        };
        if let Some(descending) = sort {
            sort::redis_sort(&mut found, returned, &|a: &Found, b: &Found| {
                let order = a
                    .dist
                    .partial_cmp(&b.dist)
                    .unwrap_or(std::cmp::Ordering::Equal);
                if descending { order.reverse() } else { order }
            });
        }
        found.truncate(returned);
        for f in &mut found {
            f.dist /= conversion;
        }
        if let Some(dst) = store_key {
            let mut seen = HashSet::with_capacity(found.len());
            let items: Vec<Item> = found
                .into_iter()
                .filter(|f| seen.insert(f.member.clone()))
                .map(|f| Item {
                    score: if storedist { f.dist } else { f.score },
                    member: f.member,
                })
                .collect();
            store_items(ctx, &dst, &items)?;
            return Ok(Frame::Integer(seen.len() as i64));
        }
        let extras = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        let replies = found
            .into_iter()
            .map(|f| {
                if extras == 0 {
                    return Frame::Bulk(f.member);
                }
                let mut entry = Vec::with_capacity(extras + 1);
                entry.push(Frame::Bulk(f.member));
                if withdist {
                    entry.push(Frame::bulk(hash::format_distance(f.dist)));
                }
                if withhash {
                    entry.push(Frame::Integer(f.score as i64));
                }
                if withcoord {
                    entry.push(coordinates(f.point));
                }
                Frame::Array(entry)
            })
            .collect();
        Ok(Frame::Array(replies))
    })())
}

/// The members inside the shape, cell by cell in Redis's order; stops
/// once `limit` are found (`ANY`; 0 = no limit).
fn find(
    ctx: &mut Ctx<'_>,
    z: &Collection,
    search: &Search,
    limit: u64,
) -> Result<Vec<Found>, Frame> {
    let cells = hash::areas(search);
    let mut found: Vec<Found> = Vec::new();
    let full = |found: &Vec<Found>| limit > 0 && found.len() as u64 >= limit;
    let mut last: Option<usize> = None;
    for (i, &cell) in cells.iter().enumerate() {
        if hash::is_none(cell) {
            continue;
        }
        // Huge radii make neighbours coincide: skip a repeat of the last cell.
        if last.is_some_and(|l| cells[l] == cell) {
            continue;
        }
        if full(&found) {
            break;
        }
        let (min, max) = hash::score_range(cell);
        let range = ScoreRange {
            min: ScoreBound {
                value: min,
                exclusive: false,
            },
            max: ScoreBound {
                value: max,
                exclusive: true,
            },
        };
        store::walk(ctx.ks(), z, &Span::scores(&range, false), 0, &mut |item| {
            if let Some(point) = hash::point_of(item.score)
                && let Some(dist) = search.distance_if_within(point)
            {
                found.push(Found {
                    member: item.member,
                    score: item.score,
                    point,
                    dist,
                });
            }
            !full(&found)
        })
        .map_err(engine_error)?;
        last = Some(i);
    }
    Ok(found)
}

pub(super) fn geosearch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::Search)
}

pub(super) fn geosearchstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::SearchStore)
}

pub(super) fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::Radius { store: true })
}

pub(super) fn georadius_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::Radius { store: false })
}

pub(super) fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::RadiusByMember { store: true })
}

pub(super) fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, Form::RadiusByMember { store: false })
}
