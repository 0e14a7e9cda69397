//! Which Kafka APIs and versions this broker speaks, and the ApiVersions answer.
//!
//! Clients (librdkafka, kafka-python, rskafka) first ask ApiVersions, then use
//! for each API the highest version both sides know. We advertise the
//! non-flexible versions (before KIP-482's compact encodings) of each API the
//! chapter needs (plus ListGroups v3–4 and DescribeGroups v5, flexible, which
//! admin tools ask for), which every client of the last years still speaks; the
//! codec (`kafka-protocol`) handles all of them, so raising a maximum is a
//! matter of checking the handler's new fields.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// `(api, min version, max version)` for every API served.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 8),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 5),
    (ApiKey::Metadata, 0, 8),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::OffsetFetch, 1, 5),
    (ApiKey::FindCoordinator, 0, 2),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::DeleteTopics, 1, 3),
    (ApiKey::InitProducerId, 0, 1),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DescribeLogDirs, 1, 1),
];

/// Whether `api` at `version` is served.
pub fn is_supported(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(key, min, max)| key == api && (min..=max).contains(&version))
}

/// The ApiVersions response: our ranges, with `error_code` (0, or 35
/// UNSUPPORTED_VERSION when the client asked a version we do not know, in
/// which case it is encoded as v0 so any client can read it).
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_one_the_codec_knows() {
        for &(key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(
                codec.min <= min && max <= codec.max,
                "{key:?} {min}..{max} vs {codec}"
            );
        }
    }

    #[test]
    fn support_is_by_range() {
        assert!(is_supported(ApiKey::Fetch, 11));
        assert!(!is_supported(ApiKey::Fetch, 12));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(!is_supported(ApiKey::DescribeGroups, 6));
        assert!(!is_supported(ApiKey::DescribeAcls, 0));
    }
}
