//! The Kafka answers that differ in a cluster: Metadata comes from the
//! controller's metadata image (every live broker, each partition's leader,
//! replicas, ISR and leader epoch, so clients send to leaders), and topic
//! creation and deletion (also auto-creation) go to the controller, which
//! places the replicas. A call returns once this broker has applied the
//! change, so the client's next Metadata sees it.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    MetadataRequest, MetadataResponse,
};

use super::meta::{text, topic_error, topic_name};
use crate::broker::Broker;
use crate::cluster::metadata::{Image, NO_LEADER, TopicInfo};
use crate::cluster::node::Node;
use crate::cluster::transport::{Request, Response};
use crate::group::offsets_log::OFFSETS_TOPIC;
use crate::topics::{TopicError, check_create_request};

/// How long a topic change may wait for the controller.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(10);

fn ids(list: &[i32]) -> Vec<BrokerId> {
    list.iter().copied().map(BrokerId).collect()
}

fn topic_metadata(version: i16, name: &str, topic: &TopicInfo) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(i32::try_from(index).unwrap_or(i32::MAX))
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr));
            if p.leader == NO_LEADER {
                partition.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if version >= 7 {
                partition.leader_epoch = p.leader_epoch;
            }
            partition
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_is_internal(version >= 1 && name == OFFSETS_TOPIC)
        .with_partitions(partitions)
}

/// Asks the controller to create a topic and waits until it is applied here.
pub async fn create_topic(
    broker: &Broker,
    node: &Node,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: BTreeMap<String, String>,
) -> Result<(), TopicError> {
    check_create_request(&broker.config, name, partitions, &configs)?;
    let request = Request::CreateTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        configs,
    };
    finish(
        node,
        node.call_controller(request, CONTROLLER_TIMEOUT).await,
    )
    .await
}

/// Asks the controller to delete a topic and waits until it is applied here.
pub async fn delete_topic(node: &Node, name: &str) -> Result<(), TopicError> {
    let request = Request::DeleteTopic {
        name: name.to_string(),
    };
    finish(
        node,
        node.call_controller(request, CONTROLLER_TIMEOUT).await,
    )
    .await
}

async fn finish(node: &Node, answer: Result<Response, String>) -> Result<(), TopicError> {
    match answer {
        Ok(Response::Done { index }) => {
            if node.wait_applied(index, CONTROLLER_TIMEOUT).await {
                Ok(())
            } else {
                Err(TopicError {
                    code: ResponseError::RequestTimedOut.code(),
                    message: "the change is committed but not applied here yet".into(),
                })
            }
        }
        Ok(Response::Error { code, message }) => Err(TopicError { code, message }),
        Ok(other) => Err(TopicError {
            code: ResponseError::NotController.code(),
            message: format!("unexpected controller answer {other:?}"),
        }),
        Err(message) => Err(TopicError {
            code: ResponseError::RequestTimedOut.code(),
            message,
        }),
    }
}

fn brokers(image: &Image) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(text(&b.host))
                .with_port(b.port)
        })
        .collect()
}

/// Metadata in a cluster (see the module doc).
pub async fn metadata(
    broker: &Broker,
    node: &Node,
    version: i16,
    asked: Option<Vec<String>>,
    create: bool,
) -> MetadataResponse {
    let topics = match asked {
        None => {
            let image = node.image();
            image
                .topics
                .iter()
                .map(|(name, topic)| topic_metadata(version, name, topic))
                .collect()
        }
        Some(names) => {
            let mut topics = Vec::with_capacity(names.len().min(1024));
            for name in names {
                // The offsets topic is created compacted by FindCoordinator, never by a client.
                if create && name != OFFSETS_TOPIC && !node.image().topics.contains_key(&name) {
                    let created = create_topic(
                        broker,
                        node,
                        &name,
                        broker.config.num_partitions,
                        broker.config.default_replication_factor,
                        BTreeMap::new(),
                    )
                    .await;
                    if let Err(err) = created
                        && err.code != ResponseError::TopicAlreadyExists.code()
                    {
                        topics.push(topic_error(&name, err.code));
                        continue;
                    }
                }
                topics.push(match node.image().topics.get(&name) {
                    Some(topic) => topic_metadata(version, &name, topic),
                    None => topic_error(&name, ResponseError::UnknownTopicOrPartition.code()),
                });
            }
            topics
        }
    };
    let image = node.image();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers(&image))
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(node.controller_id());
    }
    if version >= 2 {
        response.cluster_id = Some(text(&broker.config.cluster_id));
    }
    response
}

/// Metadata's topic list from a request (None: all topics).
pub fn asked_topics(version: i16, request: MetadataRequest) -> Option<Vec<String>> {
    match request.topics {
        None => None,
        Some(list) if version == 0 && list.is_empty() => None,
        Some(list) => Some(
            list.into_iter()
                .filter_map(|t| t.name)
                .map(|n| n.0.to_string())
                .collect(),
        ),
    }
}

/// CreateTopics in a cluster: each topic placed by the controller
/// (replication factor -1 is `default_replication_factor`).
pub async fn create_topics(
    broker: &Broker,
    node: &Node,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len().min(1024));
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let partitions = match topic.num_partitions {
            -1 => broker.config.num_partitions,
            n => n,
        };
        let replication_factor = match topic.replication_factor {
            -1 => broker.config.default_replication_factor,
            n => i32::from(n),
        };
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let outcome = if !topic.assignments.is_empty() {
            Err(TopicError {
                code: ResponseError::InvalidReplicaAssignment.code(),
                message: "manual replica assignment is not supported: give num_partitions".into(),
            })
        } else if request.validate_only {
            check_create_request(&broker.config, &name, partitions, &configs)
        } else {
            create_topic(broker, node, &name, partitions, replication_factor, configs).await
        };
        let mut result = CreatableTopicResult::default().with_name(topic.name);
        if let Err(err) = outcome {
            result.error_code = err.code;
            if version >= 1 {
                result.error_message = Some(text(&err.message));
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// DeleteTopics in a cluster.
pub async fn delete_topics(node: &Node, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut responses = Vec::with_capacity(request.topic_names.len().min(1024));
    for name in request.topic_names {
        let code = match delete_topic(node, &name.0).await {
            Ok(()) => 0,
            Err(err) => err.code,
        };
        responses.push(
            DeletableTopicResult::default()
                .with_name(Some(name))
                .with_error_code(code),
        );
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
