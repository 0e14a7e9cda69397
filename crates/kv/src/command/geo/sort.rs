//! Ordering search results by distance exactly as Redis orders them, ties
//! included: a full sort is glibc's `qsort` (a stable merge sort), and a
//! `COUNT` smaller than the matches is Redis's `pqsort`, a partial
//! quicksort (NetBSD's, sorting only what covers positions
//! `lrange..=rrange`), whose order of equal-distance points follows from
//! its pivots. Ported here element for element so points at the same spot
//! come back in the same order as from Redis.

use std::cmp::Ordering;

/// Sorts `v` by `cmp` the way Redis does for `count` results out of
/// `v.len()` (see the module docs).
pub(super) fn redis_sort<T>(v: &mut [T], count: usize, cmp: &dyn Fn(&T, &T) -> Ordering) {
    if count >= v.len() {
        v.sort_by(cmp);
    } else if count > 0 {
        partial(v, 0, v.len(), cmp, 0, count - 1);
    }
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &dyn Fn(&T, &T) -> Ordering) -> usize {
    use Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Whether the sub-array `[s, s + m)` can hold none of `lrange..=rrange`.
fn outside(s: usize, m: usize, lrange: usize, rrange: usize) -> bool {
    (lrange < s && rrange < s) || (lrange >= s + m && rrange >= s + m)
}

/// Redis's `_pqsort` over `v[a..a + n]`, indices instead of byte pointers.
fn partial<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &dyn Fn(&T, &T) -> Ordering,
    lrange: usize,
    rrange: usize,
) {
    use Ordering::{Equal, Greater, Less};
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) == Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Greater {
                    break;
                }
                if c == Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Less {
                    break;
                }
                if c == Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && !outside(a, r, lrange, rrange) {
            partial(v, a, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r > 1 {
            a = pn - r;
            n = r;
            if !outside(a, n, lrange, rrange) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sort_puts_the_smallest_first() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0, 1, 6, 7, 8, 40, 41, 100, 500] {
            for count in [1, 3, 10, 50] {
                let mut v: Vec<(u32, usize)> = (0..len).map(|i| (rng.u32(..20), i)).collect();
                let mut sorted = v.clone();
                sorted.sort_by_key(|x| x.0);
                redis_sort(&mut v, count, &|a, b| a.0.cmp(&b.0));
                let k = count.min(len);
                let keys: Vec<u32> = v[..k].iter().map(|x| x.0).collect();
                let want: Vec<u32> = sorted[..k].iter().map(|x| x.0).collect();
                assert_eq!(keys, want, "len {len} count {count}");
            }
        }
    }
}
