//! Input checks made before anything is sent, and the translation of the
//! Kafka client's errors into [`Error`]: the caller learns "your input is
//! wrong" apart from "the broker is away", whichever broker answered.

use mq::client::error_code;

use crate::{ClientOptions, ConsumerConfig, Error, Record, Result};

/// Most partitions [`crate::MqClient::ensure_topic`] asks for (Kafka's own
/// limits are per broker; this only stops an absurd count early).
pub const PARTITIONS_MAX: i32 = 10_000;
/// Longest group id (the broker's limit).
pub const GROUP_ID_MAX_BYTES: usize = mq::api::groups::GROUP_ID_MAX_BYTES;
/// Most topics one consumer subscribes to.
pub const TOPICS_PER_CONSUMER_MAX: usize = 1_000;

/// Kafka's rules for a topic name (1–249 of `a-zA-Z0-9._-`, not `.`/`..`).
pub fn topic(name: &str) -> Result<()> {
    mq::topics::validate_name(name).map_err(|err| Error::InvalidInput(err.message))
}

/// A partition count for a new topic.
pub fn partitions(count: i32) -> Result<()> {
    if (1..=PARTITIONS_MAX).contains(&count) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "a topic has 1 to {PARTITIONS_MAX} partitions, not {count}"
        )))
    }
}

/// Records of one produce call.
pub fn records(records: &[Record], options: &ClientOptions) -> Result<()> {
    if records.len() > options.max_batch_records {
        return Err(Error::InvalidInput(format!(
            "{} records in one batch: at most {}",
            records.len(),
            options.max_batch_records
        )));
    }
    for record in records {
        let size = record.size_bytes();
        if size > options.max_record_bytes {
            return Err(Error::InvalidInput(format!(
                "a record of {size} bytes is larger than max_record_bytes ({})",
                options.max_record_bytes
            )));
        }
        if record.partition.is_some_and(|p| p < 0) {
            return Err(Error::InvalidInput("a partition is never negative".into()));
        }
    }
    Ok(())
}

/// A consumer's configuration.
pub fn consumer(config: &ConsumerConfig) -> Result<()> {
    if config.topics.is_empty() || config.topics.len() > TOPICS_PER_CONSUMER_MAX {
        return Err(Error::InvalidInput(format!(
            "a consumer reads 1 to {TOPICS_PER_CONSUMER_MAX} topics, not {}",
            config.topics.len()
        )));
    }
    for name in &config.topics {
        topic(name)?;
    }
    if let Some(group) = &config.group
        && (group.is_empty() || group.len() > GROUP_ID_MAX_BYTES)
    {
        return Err(Error::InvalidInput(format!(
            "a group id has 1 to {GROUP_ID_MAX_BYTES} bytes, not {}",
            group.len()
        )));
    }
    if i32::try_from(config.session_timeout_ms).is_err() {
        return Err(Error::InvalidInput(format!(
            "session timeout {} ms is too long",
            config.session_timeout_ms
        )));
    }
    Ok(())
}

/// Kafka error codes that mean the request itself was wrong.
const INPUT_ERRORS: [i16; 9] = [
    10, // MESSAGE_TOO_LARGE
    17, // INVALID_TOPIC_EXCEPTION
    18, // RECORD_LIST_TOO_LARGE
    24, // INVALID_GROUP_ID
    26, // INVALID_SESSION_TIMEOUT
    37, // INVALID_PARTITIONS
    38, // INVALID_REPLICATION_FACTOR
    42, // INVALID_REQUEST
    87, // INVALID_RECORD
];
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC: i16 = 3;

/// What a Kafka client error means to the caller.
pub fn classify(err: &anyhow::Error) -> Error {
    let message = format!("{err:#}");
    match error_code(err) {
        Some(UNKNOWN_TOPIC) => Error::UnknownTopic(message),
        Some(code) if INPUT_ERRORS.contains(&code) => Error::InvalidInput(message),
        Some(code) => Error::Broker { code, message },
        None => Error::Unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_counts_and_sizes_are_checked_before_sending() {
        assert!(topic("orders.retry").is_ok());
        for bad in ["", ".", "..", "a b", &"x".repeat(250)] {
            assert!(matches!(topic(bad), Err(Error::InvalidInput(_))), "{bad:?}");
        }
        assert!(partitions(0).is_err() && partitions(-3).is_err());
        assert!(partitions(1).is_ok() && partitions(PARTITIONS_MAX + 1).is_err());
        let options = ClientOptions {
            max_record_bytes: 100,
            ..ClientOptions::default()
        };
        assert!(records(&[Record::new(vec![0; 50])], &options).is_ok());
        assert!(records(&[Record::new(vec![0; 100])], &options).is_err());
        let big_header = Record::new("v").header("h", vec![0; 100]);
        assert!(records(&[big_header], &options).is_err());
        assert!(records(&[Record::new("v").partition(-1)], &options).is_err());
        let mut config = ConsumerConfig::group("g", &["t"]);
        assert!(consumer(&config).is_ok());
        config.group = Some(String::new());
        assert!(consumer(&config).is_err());
        assert!(consumer(&ConsumerConfig::group("g", &[])).is_err());
        assert!(consumer(&ConsumerConfig::group("g", &["bad name"])).is_err());
    }

    #[test]
    fn kafka_codes_become_the_right_error() {
        let code = |code: i16| mq::client::check_code(code, "x").unwrap_err();
        assert!(matches!(classify(&code(3)), Error::UnknownTopic(_)));
        assert!(matches!(classify(&code(10)), Error::InvalidInput(_)));
        assert!(matches!(
            classify(&code(15)),
            Error::Broker { code: 15, .. }
        ));
        let io = anyhow::anyhow!("connection reset");
        assert!(matches!(classify(&io), Error::Unavailable(_)));
    }
}
