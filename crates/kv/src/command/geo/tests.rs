//! GEO commands through a socket-less client, on both engines: Redis's
//! values for known points, and its errors for bad input. (Agreement with
//! Redis on random points and searches is `tests/it/diff_geo.rs`.)

use crate::command::members::testing::each_engine;
use crate::command::zset::tests::{bulk, err, run};
use crate::protocol::Frame;

fn sicily(c: &mut crate::command::local::LocalClient) {
    let added = run(
        c,
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
    );
    assert_eq!(added, Frame::Integer(2));
}

#[test]
fn points_scores_and_distances_are_redis_values() {
    each_engine(|c| {
        sicily(c);
        // Values from redis-server 7.0.
        assert_eq!(
            run(c, &["ZSCORE", "g", "Palermo"]),
            Frame::Double(3479099956230698.0)
        );
        assert_eq!(
            run(c, &["GEOPOS", "g", "Palermo", "nope"]),
            Frame::Array(vec![
                Frame::Array(vec![
                    Frame::DoubleText("13.36138933897018433".into()),
                    Frame::DoubleText("38.11555639549629859".into()),
                ]),
                Frame::NullArray,
            ])
        );
        assert_eq!(
            run(c, &["GEODIST", "g", "Palermo", "Catania", "km"]),
            bulk("166.2742")
        );
        assert_eq!(run(c, &["GEODIST", "g", "Palermo", "nope"]), Frame::Null);
        assert_eq!(
            run(c, &["GEOHASH", "g", "Palermo", "nope"]),
            Frame::Array(vec![bulk("sqc8b49rny0"), Frame::Null])
        );
        assert_eq!(
            run(
                c,
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "15",
                    "37",
                    "BYRADIUS",
                    "200",
                    "km",
                    "ASC",
                    "WITHDIST"
                ]
            ),
            Frame::Array(vec![
                Frame::Array(vec![bulk("Catania"), bulk("56.4413")]),
                Frame::Array(vec![bulk("Palermo"), bulk("190.4424")]),
            ])
        );
        assert_eq!(
            run(
                c,
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMMEMBER",
                    "Palermo",
                    "BYBOX",
                    "400",
                    "400",
                    "km",
                    "DESC",
                    "COUNT",
                    "1",
                    "WITHHASH"
                ]
            ),
            Frame::Array(vec![Frame::Array(vec![
                bulk("Catania"),
                Frame::Integer(3479447370796909)
            ])])
        );
        assert_eq!(
            run(
                c,
                &[
                    "GEOSEARCHSTORE",
                    "d",
                    "g",
                    "FROMLONLAT",
                    "15",
                    "37",
                    "BYRADIUS",
                    "100",
                    "km",
                    "STOREDIST"
                ]
            ),
            Frame::Integer(1)
        );
        assert_eq!(
            run(c, &["ZSCORE", "d", "Catania"]),
            Frame::Double("56.441257870158204".parse().unwrap()), // redis: 56.441257870158204
        );
        assert_eq!(
            run(
                c,
                &[
                    "GEOADD",
                    "g",
                    "CH",
                    "XX",
                    "13.361389",
                    "38.2",
                    "Palermo",
                    "1",
                    "1",
                    "x"
                ]
            ),
            Frame::Integer(1)
        );
        assert_eq!(
            run(c, &["ZCARD", "g"]),
            Frame::Integer(2),
            "XX adds nothing new"
        );
    });
}

#[test]
fn bad_geo_input_gets_redis_errors() {
    each_engine(|c| {
        sicily(c);
        run(c, &["SET", "s", "x"]);
        for (args, text) in [
            (
                &["GEOADD", "g", "181", "0", "x"][..],
                "ERR invalid longitude,latitude pair 181.000000,0.000000",
            ),
            (
                &["GEOADD", "g", "0", "85.06", "x"],
                "ERR invalid longitude,latitude pair 0.000000,85.060000",
            ),
            (
                &["GEOADD", "g", "nan", "0", "x"],
                "ERR value is not a valid float",
            ),
            (
                &["GEOADD", "g", "NX", "XX", "1", "2", "x"],
                "ERR syntax error",
            ),
            (&["GEOADD", "g", "1", "2", "x", "3"], "ERR syntax error"),
            (
                &["GEOADD", "s", "1", "2", "x"],
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (&["GEODIST", "g", "a", "b", "km", "x"], "ERR syntax error"),
            (
                &["GEODIST", "g", "a", "b", "parsec"],
                "ERR unsupported unit provided. please use M, KM, FT, MI",
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMMEMBER",
                    "nope",
                    "BYRADIUS",
                    "1",
                    "km",
                ],
                "ERR could not decode requested zset member",
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "0",
                    "0",
                    "BYRADIUS",
                    "-1",
                    "km",
                ],
                "ERR radius cannot be negative",
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "0",
                    "0",
                    "BYBOX",
                    "1",
                    "-1",
                    "km",
                ],
                "ERR height or width cannot be negative",
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "0",
                    "0",
                    "BYRADIUS",
                    "1",
                    "km",
                    "COUNT",
                    "-1",
                ],
                "ERR COUNT must be > 0",
            ),
            (
                &[
                    "GEOSEARCH",
                    "g",
                    "FROMLONLAT",
                    "0",
                    "0",
                    "BYRADIUS",
                    "1",
                    "km",
                    "ANY",
                ],
                "ERR the ANY argument requires COUNT argument",
            ),
            (
                &["geosearch", "g", "BYRADIUS", "1", "km", "ASC", "WITHDIST"],
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch",
            ),
            (
                &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "ASC", "WITHDIST"],
                "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH",
            ),
            (
                &[
                    "GEOSEARCHSTORE",
                    "d",
                    "g",
                    "FROMLONLAT",
                    "0",
                    "0",
                    "BYRADIUS",
                    "1",
                    "km",
                    "WITHCOORD",
                ],
                "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            ),
            (
                &["GEORADIUS_RO", "g", "0", "0", "1", "km", "STORE", "d"],
                "ERR syntax error",
            ),
            (
                &["GEORADIUSBYMEMBER", "g", "nope", "1", "km"],
                "ERR could not decode requested zset member",
            ),
        ] {
            assert_eq!(run(c, args), err(text), "{args:?}");
        }
        // A huge COUNT is clamped to the matches; a missing key is empty.
        let found = run(
            c,
            &[
                "GEORADIUS",
                "g",
                "15",
                "37",
                "20000",
                "km",
                "COUNT",
                "9223372036854775807",
            ],
        );
        assert_eq!(found, Frame::Array(vec![bulk("Catania"), bulk("Palermo")]));
        assert_eq!(
            run(
                c,
                &[
                    "GEOSEARCH",
                    "nope",
                    "FROMMEMBER",
                    "x",
                    "BYRADIUS",
                    "1",
                    "km"
                ]
            ),
            Frame::Array(vec![])
        );
    });
}
