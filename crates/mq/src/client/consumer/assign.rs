//! The client side of a group's assignment: the consumer protocol's
//! subscription and assignment encodings, and the range assignor the
//! group's leader runs. Pure functions, kept apart from the fetch loop.

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Encodable};

/// The range assignor: each topic's partitions split in contiguous ranges
/// over the members subscribed to it, sorted by member id.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &HashMap<String, usize>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (each, extra) = (count / members.len(), count % members.len());
        let mut next = 0;
        for (i, member) in members.iter().enumerate() {
            let n = each + usize::from(i < extra);
            let share: Vec<i32> = (next..next + n).map(|p| p as i32).collect();
            next += n;
            if !share.is_empty() {
                out.entry((*member).clone())
                    .or_default()
                    .insert(topic.clone(), share);
            }
        }
    }
    out
}

/// A consumer-protocol message: its version, then the struct.
pub fn with_version<T: Encodable>(version: i16, message: &T) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    message.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// The topics of a member's subscription (none if it does not decode).
pub fn decode_subscription(bytes: &[u8]) -> Vec<String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn range_assignment_splits_partitions_in_order() {
        let subs = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
        ]);
        let counts = HashMap::from([("t".to_string(), 3)]);
        let out = range_assign(&subs, &counts);
        assert_eq!(out["a"]["t"], vec![0, 1]);
        assert_eq!(out["b"]["t"], vec![2]);
        let more = HashMap::from([("t".to_string(), 1)]);
        let out = range_assign(&subs, &more);
        assert_eq!(out["a"]["t"], vec![0]);
        assert!(out["b"].is_empty(), "a member may get nothing");
    }

    #[test]
    fn each_topic_is_split_among_its_own_subscribers() {
        let subs = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
        ]);
        let counts = HashMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let out = range_assign(&subs, &counts);
        assert_eq!(out["a"]["t"], vec![0]);
        assert_eq!(out["a"]["u"], vec![0, 1], "only a reads u");
        assert_eq!(out["b"]["t"], vec![1]);
    }

    #[test]
    fn subscriptions_round_trip_and_garbage_is_empty() {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")]);
        let bytes = with_version(0, &subscription).unwrap();
        assert_eq!(decode_subscription(&bytes), vec!["t".to_string()]);
        assert!(decode_subscription(&[0]).is_empty());
        assert!(decode_subscription(&[0, 0, 0xff, 0xff, 0xff]).is_empty());
    }
}
