use proptest::prelude::*;

use super::*;
use crate::cluster::crdt::update::{Refused, Update};
use crate::cluster::crdt::value::WrongType;
use crate::cluster::hlc::Hlc;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Consistency;
use crate::cluster::replica::{Answer, Op};
use crate::cluster::vector_clock::{Actor, Dot, VectorClock};

fn state_with(values: &[&str]) -> Siblings {
    let mut s = Siblings::new();
    for (i, v) in values.iter().enumerate() {
        let dot = Dot {
            actor: Actor(7 + i as u64),
            counter: 1,
        };
        s.write(
            Some(Bytes::from(v.to_string())),
            &VectorClock::new(),
            dot,
            Hlc::from_ms(1_000 + i as u64),
            5,
        )
        .unwrap();
    }
    s
}

/// One of every message and envelope.
fn samples() -> Vec<Envelope> {
    let hb = Heartbeat {
        generation: 3,
        counter: 99,
    };
    let key = Bytes::from_static(b"user:1");
    let s = state_with(&["a", "b"]);
    let msgs = vec![
        Msg::Member(membership::Message::Gossip {
            heartbeats: vec![(NodeId(1), hb), (NodeId(2), hb)],
        }),
        Msg::Member(membership::Message::Ping { seq: 5 }),
        Msg::Member(membership::Message::Ack {
            seq: 5,
            heartbeat: hb,
        }),
        Msg::Member(membership::Message::PingReq {
            seq: 6,
            target: NodeId(3),
        }),
        Msg::Member(membership::Message::IndirectAck {
            seq: 6,
            target: NodeId(3),
            heartbeat: hb,
        }),
        Msg::Forward {
            client: 12,
            op: Op::Put {
                key: key.clone(),
                value: Some(Bytes::from_static(b"v")),
                context: Some(s.context().clone()),
            },
            consistency: Consistency::default(),
        },
        Msg::Forward {
            client: 13,
            op: Op::Put {
                key: key.clone(),
                value: None,
                context: None,
            },
            consistency: Consistency {
                w: Some(3),
                r: Some(1),
                mode: Some(QuorumMode::Strict),
            },
        },
        Msg::Forward {
            client: 14,
            op: Op::Get { key: key.clone() },
            consistency: Consistency {
                w: None,
                r: Some(2),
                mode: Some(QuorumMode::Sloppy),
            },
        },
        Msg::ForwardReply {
            client: 12,
            answer: Answer::Written(Dot {
                actor: Actor(1),
                counter: 4,
            }),
        },
        Msg::ForwardReply {
            client: 14,
            answer: Answer::Read(s.clone()),
        },
        Msg::ForwardReply {
            client: 15,
            answer: Answer::Failed,
        },
        Msg::ForwardReply {
            client: 16,
            answer: Answer::TooManySiblings(100),
        },
        Msg::ForwardReply {
            client: 17,
            answer: Answer::Updated(-42),
        },
        Msg::ForwardReply {
            client: 18,
            answer: Answer::Refused(Refused::WrongType(WrongType)),
        },
        Msg::ForwardReply {
            client: 19,
            answer: Answer::Refused(Refused::Overflow),
        },
        Msg::Forward {
            client: 20,
            op: Op::Update {
                key: key.clone(),
                update: Update::Add(i64::MIN),
            },
            consistency: Consistency::default(),
        },
        Msg::Forward {
            client: 21,
            op: Op::Update {
                key: key.clone(),
                update: Update::SetRemove(vec![Bytes::from_static(b"m"), Bytes::new()]),
            },
            consistency: Consistency {
                w: Some(3),
                r: Some(1),
                mode: Some(QuorumMode::Strict),
            },
        },
        Msg::Forward {
            client: 22,
            op: Op::Update {
                key: key.clone(),
                update: Update::MapSet(vec![(Bytes::from_static(b"f"), Bytes::from_static(b"v"))]),
            },
            consistency: Consistency {
                w: None,
                r: Some(2),
                mode: Some(QuorumMode::Sloppy),
            },
        },
        Msg::Replicate {
            req: 1,
            key: key.clone(),
            state: s.clone(),
            hint_for: Some(NodeId(2)),
        },
        Msg::Replicate {
            req: 2,
            key: key.clone(),
            state: Siblings::new(),
            hint_for: None,
        },
        Msg::ReplicateAck { req: 1, ok: true },
        Msg::Read {
            req: 3,
            key: key.clone(),
        },
        Msg::ReadReply {
            req: 3,
            state: s.clone(),
        },
        Msg::Repair {
            key: key.clone(),
            state: s.clone(),
        },
        Msg::Handoff {
            key: key.clone(),
            state: s.clone(),
            seq: 8,
        },
        Msg::HandoffAck {
            key: key.clone(),
            seq: 8,
        },
        Msg::Ae(anti_entropy::Message::Labels {
            level: 2,
            labels: vec![(0, 77), (3, u64::MAX)],
        }),
        Msg::Ae(anti_entropy::Message::Ask {
            level: 3,
            indices: vec![1, 2, 9],
        }),
        Msg::AeEntries {
            entries: vec![(key.clone(), s.clone()), (Bytes::new(), Siblings::new())],
            buckets: vec![4, 5],
            reply: true,
        },
        Msg::Topology({
            use crate::cluster::placement::NodeSpec;
            use crate::cluster::topology::Topology;
            let spec = |id| NodeSpec {
                id: NodeId(id),
                vnodes: 16,
                datacenter: (id == 2).then(|| "east".to_string()),
            };
            let mut t = Topology::initial(&[spec(1), spec(2), spec(3)])
                .propose_join(spec(4), 3)
                .expect("a valid join");
            t.seen.insert(NodeId(1));
            t.streamed.insert(NodeId(4));
            t
        }),
        Msg::AeInSync { root: u64::MAX },
        Msg::StreamReq {
            version: 7,
            after: Some(key.clone()),
        },
        Msg::StreamBatch {
            version: 7,
            after: None,
            entries: vec![(key.clone(), s.clone())],
            next: Some(Bytes::from_static(b"k9")),
        },
    ];
    let spec = MemberSpec {
        id: NodeId(1),
        addr: "127.0.0.1:7001".into(),
        datacenter: Some("dc1".into()),
        vnodes: 64,
    };
    let mut all = vec![Envelope::Hello {
        spec: spec.clone(),
        known: vec![
            spec,
            MemberSpec {
                id: NodeId(2),
                addr: "127.0.0.1:7002".into(),
                datacenter: None,
                vnodes: 8,
            },
        ],
        replicas: 3,
        wall_ms: 1_700_000_000_000,
    }];
    all.extend(msgs.into_iter().map(Envelope::Msg));
    all
}

#[test]
fn every_message_round_trips() {
    let limits = Limits::default();
    for envelope in samples() {
        let bytes = encode_envelope(&envelope);
        assert_eq!(decode_envelope(&bytes, &limits), Ok(envelope));
    }
}

#[test]
fn truncated_or_padded_messages_are_refused() {
    let limits = Limits::default();
    for envelope in samples() {
        let bytes = encode_envelope(&envelope);
        for cut in 0..bytes.len() {
            assert!(
                decode_envelope(&bytes[..cut], &limits).is_err(),
                "{envelope:?} cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(
            decode_envelope(&padded, &limits),
            Err(DecodeError::Trailing(1))
        );
    }
}

#[test]
fn limits_hold_before_allocation() {
    let tight = Limits {
        key_bytes_max: 3,
        ..Limits::default()
    };
    let long_key = Envelope::Msg(Msg::Read {
        req: 1,
        key: Bytes::from_static(b"abcd"),
    });
    assert!(matches!(
        decode_envelope(&encode_envelope(&long_key), &tight),
        Err(DecodeError::TooLarge { what: "key", .. })
    ));
    // A gossip list claiming 2^40 members in a few bytes.
    let mut lying = vec![2, 1, 1];
    put_varint(&mut lying, 1 << 40);
    assert!(decode_envelope(&lying, &Limits::default()).is_err());
    let mut lying = vec![2, 1, 1];
    put_varint(&mut lying, 1000);
    assert_eq!(
        decode_envelope(&lying, &Limits::default()),
        Err(DecodeError::Truncated)
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_envelope(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_messages_never_panic(pick in 0usize..28, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let all = samples();
        let mut bytes = encode_envelope(&all[pick % all.len()]);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode_envelope(&bytes, &Limits::default());
    }
}
