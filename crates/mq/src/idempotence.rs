//! The idempotent producer (exactly-once on the produce side): a producer
//! with an id from InitProducerId numbers its batches per partition, and the
//! partition remembers, per producer, its epoch and its last five batches'
//! sequence ranges (Kafka's `max.in.flight.requests.per.connection` is at
//! most 5 with idempotence, so a retry is always among them).
//!
//! A plain function of that state decides each batch: a retry of a batch
//! already appended is a duplicate (answered with its original offset, not
//! appended again); a gap in the sequence is refused
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) so nothing is lost silently; an older
//! epoch (a zombie producer) is fenced (INVALID_PRODUCER_EPOCH).
//!
//! Trade-off: the state is in memory. After a broker restart a producer is
//! unknown, and its first batch is accepted whatever its sequence (Kafka
//! rebuilds the state from the log and snapshots instead), so a retry that
//! straddles a restart may be appended twice. Transactions are not served.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::ResponseError;

use crate::log::BatchHeader;

/// Batches remembered per producer (Kafka's limit on in-flight requests).
pub const RECENT_BATCHES: usize = 5;
/// Producers remembered per partition; the least recently seen is forgotten.
pub const PRODUCERS_MAX: usize = 4096;

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Append it.
    Append,
    /// Already appended at this base offset: answer success, append nothing.
    Duplicate {
        /// Where it was appended.
        base_offset: i64,
    },
    /// Refuse it with this Kafka error code.
    Refuse(i16),
}

#[derive(Debug, Clone, Copy)]
struct Appended {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Clone)]
struct Producer {
    epoch: i16,
    recent: VecDeque<Appended>,
    last_seen: u64,
}

/// Every producer's sequence state in one partition.
#[derive(Debug, Default)]
pub struct Producers {
    producers: HashMap<i64, Producer>,
    clock: u64,
}

/// The sequence number after `sequence` (they wrap to 0 after `i32::MAX`).
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

fn last_sequence(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(i32::MAX)
}

impl Producers {
    /// Decides a batch (see the module doc).
    pub fn check(&self, header: &BatchHeader) -> Decision {
        if header.producer_id < 0 {
            return Decision::Append;
        }
        let Some(producer) = self.producers.get(&header.producer_id) else {
            return Decision::Append;
        };
        if header.producer_epoch < producer.epoch {
            return Decision::Refuse(ResponseError::InvalidProducerEpoch.code());
        }
        if header.producer_epoch > producer.epoch {
            return if header.base_sequence == 0 {
                Decision::Append
            } else {
                Decision::Refuse(ResponseError::OutOfOrderSequenceNumber.code())
            };
        }
        let last = last_sequence(header);
        if let Some(seen) = producer
            .recent
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last)
        {
            return Decision::Duplicate {
                base_offset: seen.base_offset,
            };
        }
        match producer.recent.back() {
            Some(previous) if next_sequence(previous.last_sequence) != header.base_sequence => {
                Decision::Refuse(ResponseError::OutOfOrderSequenceNumber.code())
            }
            _ => Decision::Append,
        }
    }

    /// Records an appended batch.
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if header.producer_id < 0 {
            return;
        }
        self.clock += 1;
        if !self.producers.contains_key(&header.producer_id)
            && self.producers.len() >= PRODUCERS_MAX
        {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.producers.remove(&id);
            }
        }
        let producer = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| Producer {
                epoch: header.producer_epoch,
                recent: VecDeque::new(),
                last_seen: 0,
            });
        if header.producer_epoch != producer.epoch {
            producer.epoch = header.producer_epoch;
            producer.recent.clear();
        }
        producer.last_seen = self.clock;
        producer.recent.push_back(Appended {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            base_offset,
        });
        while producer.recent.len() > RECENT_BATCHES {
            producer.recent.pop_front();
        }
        assert!(self.producers.len() <= PRODUCERS_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            records_count: records,
        }
    }

    fn append(producers: &mut Producers, header: &BatchHeader, at: i64) {
        assert_eq!(producers.check(header), Decision::Append);
        producers.record(header, at);
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut producers = Producers::default();
        append(&mut producers, &batch(7, 0, 0, 3), 100);
        append(&mut producers, &batch(7, 0, 3, 2), 103);
        assert_eq!(
            producers.check(&batch(7, 0, 0, 3)),
            Decision::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            producers.check(&batch(7, 0, 3, 2)),
            Decision::Duplicate { base_offset: 103 }
        );
        append(&mut producers, &batch(7, 0, 5, 1), 105);
    }

    #[test]
    fn gaps_are_refused_and_nothing_is_recorded() {
        let mut producers = Producers::default();
        append(&mut producers, &batch(7, 0, 0, 1), 0);
        let gap = ResponseError::OutOfOrderSequenceNumber.code();
        assert_eq!(producers.check(&batch(7, 0, 2, 1)), Decision::Refuse(gap));
        append(&mut producers, &batch(7, 0, 1, 1), 1);
    }

    #[test]
    fn an_older_epoch_is_fenced_and_a_newer_one_restarts_at_zero() {
        let mut producers = Producers::default();
        append(&mut producers, &batch(7, 1, 0, 1), 0);
        assert_eq!(
            producers.check(&batch(7, 0, 1, 1)),
            Decision::Refuse(ResponseError::InvalidProducerEpoch.code())
        );
        assert_eq!(
            producers.check(&batch(7, 2, 5, 1)),
            Decision::Refuse(ResponseError::OutOfOrderSequenceNumber.code())
        );
        append(&mut producers, &batch(7, 2, 0, 1), 1);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut producers = Producers::default();
        for i in 0..7 {
            append(&mut producers, &batch(7, 0, i, 1), i64::from(i));
        }
        assert_eq!(
            producers.check(&batch(7, 0, 6, 1)),
            Decision::Duplicate { base_offset: 6 }
        );
        assert!(matches!(
            producers.check(&batch(7, 0, 0, 1)),
            Decision::Refuse(_)
        ));
        let mut wrapping = Producers::default();
        append(&mut wrapping, &batch(8, 0, i32::MAX - 1, 2), 0);
        append(&mut wrapping, &batch(8, 0, 0, 1), 2);
    }

    #[test]
    fn plain_producers_are_not_tracked_and_the_map_is_bounded() {
        let mut producers = Producers::default();
        append(&mut producers, &batch(-1, -1, -1, 1), 0);
        assert!(producers.producers.is_empty());
        for id in 0..(PRODUCERS_MAX as i64 + 10) {
            producers.record(&batch(id, 0, 0, 1), id);
        }
        assert_eq!(producers.producers.len(), PRODUCERS_MAX);
        assert!(
            !producers.producers.contains_key(&0),
            "the least recently seen went first"
        );
    }
}
