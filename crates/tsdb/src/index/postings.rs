//! Postings lists and the selection of series by matchers.
//!
//! Why a module: this is the chapter's "index on every tag", done the way
//! search engines and Prometheus do it. Lists are sorted ids, so intersection
//! and union are linear merges. [`select`] is Prometheus's
//! `PostingsForMatchers`: matchers that match the empty string are turned into
//! their inverse and *subtracted*, the rest are intersected, and a query whose
//! every matcher matches `""` starts from all series.

use std::collections::BTreeMap;

use super::Matcher;
use crate::labels::Labels;

/// Label name → label value → sorted series ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Postings {
    map: BTreeMap<String, BTreeMap<String, Vec<u64>>>,
    /// Every id, sorted.
    all: Vec<u64>,
}

impl Postings {
    /// Adds series `id` with `labels`; ids must be added in increasing order.
    pub fn add(&mut self, id: u64, labels: &Labels) {
        for l in labels.iter() {
            let list = self
                .map
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default();
            insert_sorted(list, id);
        }
        insert_sorted(&mut self.all, id);
    }

    /// Removes series `id` (with its `labels`).
    pub fn remove(&mut self, id: u64, labels: &Labels) {
        for l in labels.iter() {
            if let Some(values) = self.map.get_mut(&l.name) {
                if let Some(list) = values.get_mut(&l.value) {
                    list.retain(|&x| x != id);
                    if list.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.map.remove(&l.name);
                }
            }
        }
        self.all.retain(|&x| x != id);
    }

    /// The ids carrying `name=value`.
    pub fn get(&self, name: &str, value: &str) -> &[u64] {
        self.map
            .get(name)
            .and_then(|v| v.get(value))
            .map_or(&[], Vec::as_slice)
    }

    /// Every id.
    pub fn all(&self) -> &[u64] {
        &self.all
    }

    /// The label names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// The values of `name` with their lists, sorted by value.
    pub fn values(&self, name: &str) -> impl Iterator<Item = (&str, &[u64])> {
        self.map
            .get(name)
            .into_iter()
            .flat_map(|v| v.iter().map(|(k, l)| (k.as_str(), l.as_slice())))
    }

    /// Every (name, value, list), sorted (for writing a block's index).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &[u64])> {
        self.map.iter().flat_map(|(n, vs)| {
            vs.iter()
                .map(move |(v, l)| (n.as_str(), v.as_str(), l.as_slice()))
        })
    }

    /// Adds a whole list read back from disk (`ids` sorted).
    pub(crate) fn insert_list(&mut self, name: String, value: String, ids: Vec<u64>) {
        self.map.entry(name).or_default().insert(value, ids);
    }

    /// Sets the list of every id (read back from disk).
    pub(crate) fn set_all(&mut self, all: Vec<u64>) {
        self.all = all;
    }
}

fn insert_sorted(list: &mut Vec<u64>, id: u64) {
    match list.last() {
        Some(&last) if last >= id => {
            if let Err(i) = list.binary_search(&id) {
                list.insert(i, id);
            }
        }
        _ => list.push(id),
    }
}

/// Ids in both sorted lists.
pub fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ids in either sorted list.
pub fn union(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len() + b.len()));
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a[i] <= b[j]);
        if take_a {
            if j < b.len() && a[i] == b[j] {
                j += 1;
            }
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out
}

/// Ids of `a` not in `b` (both sorted).
pub fn subtract(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            !(j < b.len() && b[j] == x)
        })
        .collect()
}

/// The union of the lists of `m.name`'s values that `m` matches.
fn matching(index: &Postings, m: &Matcher) -> Vec<u64> {
    if m.kind == super::MatchType::Equal {
        return index.get(&m.name, &m.value).to_vec();
    }
    index
        .values(&m.name)
        .filter(|(v, _)| m.matches(v))
        .fold(Vec::new(), |acc, (_, l)| union(&acc, l))
}

/// The sorted ids of the series matching every matcher (Prometheus's
/// semantics: see the module docs). No matchers select nothing.
pub fn select(index: &Postings, matchers: &[Matcher]) -> Vec<u64> {
    if matchers.is_empty() {
        return Vec::new();
    }
    let mut keep: Option<Vec<u64>> = None;
    let mut drop: Vec<u64> = Vec::new();
    for m in matchers {
        if m.matches("") {
            drop = union(&drop, &matching(index, &m.inverse()));
        } else {
            let ids = matching(index, m);
            keep = Some(match keep {
                None => ids,
                Some(k) => intersect(&k, &ids),
            });
        }
    }
    let keep = keep.unwrap_or_else(|| index.all().to_vec());
    subtract(&keep, &drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::MatchType::{self, *};
    use crate::options::Limits;

    fn labels(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied(), &Limits::default()).unwrap()
    }

    /// `select` agrees with checking every series' labels one by one.
    #[test]
    fn select_agrees_with_a_scan() {
        let series = [
            labels(&[("__name__", "http"), ("code", "200"), ("job", "api")]),
            labels(&[("__name__", "http"), ("code", "500"), ("job", "api")]),
            labels(&[("__name__", "http"), ("job", "web")]),
            labels(&[("__name__", "up"), ("job", "api")]),
            labels(&[("__name__", "up"), ("code", "503")]),
        ];
        let mut p = Postings::default();
        for (i, s) in series.iter().enumerate() {
            p.add(i as u64, s);
        }
        let cases: Vec<Vec<(MatchType, &str, &str)>> = vec![
            vec![(Equal, "__name__", "http")],
            vec![(Equal, "__name__", "http"), (NotEqual, "code", "500")],
            vec![(Regex, "code", "5..")],
            vec![(NotRegex, "code", "5..")],
            vec![(Equal, "code", "")],
            vec![(Regex, "code", ".*")],
            vec![(Regex, "code", ".+"), (Equal, "job", "api")],
            vec![(NotEqual, "job", "")],
            vec![(Regex, "job", "api|web"), (NotRegex, "__name__", "up")],
            vec![(Equal, "nope", "x")],
        ];
        for case in cases {
            let ms: Vec<Matcher> = case
                .iter()
                .map(|&(k, n, v)| Matcher::new(k, n, v).unwrap())
                .collect();
            let want: Vec<u64> = (0..series.len() as u64)
                .filter(|&i| {
                    ms.iter()
                        .all(|m| m.matches(series[i as usize].get(&m.name).unwrap_or("")))
                })
                .collect();
            assert_eq!(select(&p, &ms), want, "{case:?}");
        }
        p.remove(1, &series[1]);
        assert_eq!(p.get("code", "500"), &[] as &[u64]);
        assert_eq!(p.all(), &[0, 2, 3, 4]);
    }

    #[test]
    fn list_algebra() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(intersect(&[1, 3, 5], &[2, 3, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1, 3, 5], &[3, 4]), vec![1, 5]);
    }
}
