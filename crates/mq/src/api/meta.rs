//! Cluster metadata and administration: Metadata (with topic auto-creation),
//! CreateTopics, DeleteTopics, FindCoordinator and InitProducerId.
//!
//! A single broker is every partition's leader, its only replica and in-sync
//! replica, the controller and every group's coordinator; the answers say
//! so, with the advertised address. In a cluster, Metadata and topic
//! administration are answered by [`super::cluster`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    MetadataRequest, MetadataResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::topics::{Topic, TopicError};

/// A string for the wire.
pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A topic name for the wire.
pub fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn topic_metadata(broker: &Broker, version: i16, topic: &Topic) -> MetadataResponseTopic {
    let me = BrokerId(broker.config.broker_id);
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(me)
                .with_replica_nodes(vec![me])
                .with_isr_nodes(vec![me]);
            if version >= 7 {
                partition.leader_epoch = 0;
            }
            partition
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_partitions(partitions)
}

/// A topic's Metadata entry carrying only an error.
pub fn topic_error(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_error_code(code)
}

/// Metadata: brokers (just us) and the topics asked for (all when null, or
/// empty in v0), creating missing ones when auto-creation is on and allowed.
pub async fn metadata(
    broker: &Arc<Broker>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let create =
        broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let asked = super::cluster::asked_topics(version, request);
    if let Some(node) = &broker.cluster {
        return super::cluster::metadata(broker, node, version, asked, create).await;
    }
    let topics = match asked {
        None => broker
            .topics
            .list()
            .iter()
            .map(|t| topic_metadata(broker, version, t))
            .collect(),
        Some(names) => {
            let mut topics = Vec::with_capacity(names.len().min(1024));
            for name in names {
                let topic = match broker.topics.get(&name) {
                    Some(topic) => Ok(topic),
                    None if create => {
                        let partitions = broker.config.num_partitions;
                        let wanted = name.clone();
                        broker
                            .blocking(move |b| {
                                match b.topics.create(&wanted, partitions, BTreeMap::new()) {
                                    // Another connection created it meanwhile.
                                    Err(e)
                                        if e.code == ResponseError::TopicAlreadyExists.code() =>
                                    {
                                        b.topics.get(&wanted).ok_or(e)
                                    }
                                    other => other,
                                }
                            })
                            .await
                    }
                    None => Err(TopicError {
                        code: ResponseError::UnknownTopicOrPartition.code(),
                        message: String::new(),
                    }),
                };
                topics.push(match topic {
                    Ok(topic) => topic_metadata(broker, version, &topic),
                    Err(err) => topic_error(&name, err.code),
                });
            }
            topics
        }
    };
    let me = MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.config.broker_id))
        .with_host(text(&broker.advertised_host))
        .with_port(broker.advertised_port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![me])
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(broker.config.broker_id);
    }
    if version >= 2 {
        response.cluster_id = Some(text(&broker.config.cluster_id));
    }
    response
}

/// CreateTopics: replication factor 1 (or -1, the default) on one broker.
pub async fn create_topics(
    broker: &Arc<Broker>,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    if let Some(node) = &broker.cluster {
        return super::cluster::create_topics(broker, node, version, request).await;
    }
    let default_partitions = broker.config.num_partitions;
    let validate_only = request.validate_only;
    let results = broker
        .blocking(move |b| {
            request
                .topics
                .into_iter()
                .map(|topic| {
                    let name = topic.name.0.to_string();
                    let partitions = if topic.num_partitions == -1 {
                        default_partitions
                    } else {
                        topic.num_partitions
                    };
                    let configs: BTreeMap<String, String> = topic
                        .configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                        .collect();
                    let outcome =
                        if !(topic.replication_factor == 1 || topic.replication_factor == -1) {
                            Err(TopicError {
                                code: ResponseError::InvalidReplicationFactor.code(),
                                message: format!(
                                    "replication factor {} on a single broker: use 1",
                                    topic.replication_factor
                                ),
                            })
                        } else if !topic.assignments.is_empty() {
                            Err(TopicError {
                            code: ResponseError::InvalidReplicaAssignment.code(),
                            message:
                                "manual replica assignment is not supported: give num_partitions"
                                    .into(),
                        })
                        } else if validate_only {
                            b.topics.check_create(&name, partitions, &configs)
                        } else {
                            b.topics.create(&name, partitions, configs).map(|_| ())
                        };
                    let mut result = CreatableTopicResult::default().with_name(topic.name);
                    if let Err(err) = outcome {
                        result.error_code = err.code;
                        if version >= 1 {
                            result.error_message = Some(text(&err.message));
                        }
                    }
                    result
                })
                .collect::<Vec<_>>()
        })
        .await;
    CreateTopicsResponse::default().with_topics(results)
}

/// DeleteTopics by name (v1–3 name topics; topic ids come with v6).
pub async fn delete_topics(
    broker: &Arc<Broker>,
    _version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    if let Some(node) = &broker.cluster {
        return super::cluster::delete_topics(node, request).await;
    }
    let responses = broker
        .blocking(move |b| {
            request
                .topic_names
                .into_iter()
                .map(|name| {
                    let code = match b.topics.delete(&name.0) {
                        Ok(()) => 0,
                        Err(err) => err.code,
                    };
                    DeletableTopicResult::default()
                        .with_name(Some(name))
                        .with_error_code(code)
                })
                .collect::<Vec<_>>()
        })
        .await;
    DeleteTopicsResponse::default().with_responses(responses)
}

/// FindCoordinator: alone, this broker coordinates every group; in a
/// cluster, the leader of the group's `__consumer_offsets` partition (the
/// first request creates that topic); transactions are not served yet.
pub async fn find_coordinator(
    broker: &Arc<Broker>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    let refuse = |mut response: FindCoordinatorResponse, code: i16, message: &str| {
        response.error_code = code;
        response.node_id = BrokerId(-1);
        if version >= 1 {
            response.error_message = Some(text(message));
        }
        response
    };
    if request.key_type != 0 {
        return refuse(
            response,
            ResponseError::CoordinatorNotAvailable.code(),
            "transactions are not supported by this broker yet",
        );
    }
    if let Some(node) = &broker.cluster {
        crate::cluster::offsets_topic::ensure_topic(broker, node).await;
    }
    match broker.coordinator(&request.key) {
        Ok((id, host, port)) => {
            response.node_id = BrokerId(id);
            response.host = text(&host);
            response.port = port;
            response
        }
        Err(code) => refuse(
            response,
            code,
            "the group's offsets partition has no leader yet",
        ),
    }
}

/// InitProducerId: a fresh producer id at epoch 0 for idempotent producers.
/// Transactional producers are refused (transactions come later).
pub fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(broker.new_producer_id()))
        .with_producer_epoch(0)
}
