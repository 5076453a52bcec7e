//! Creating the events topic and its dead-letter topic when missing.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{dead_letter_topic, Connection, TopicLayout};

/// How long topic creation may take before the brokers count as unreachable.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Creates the events topic and its dead-letter topic when missing, laid out as `layout`;
/// Sluice does not rely on the broker creating topics. Whichever binary starts first creates
/// them, so both pass the same layout.
pub async fn ensure_topics(
    connection: &Connection,
    topic: &str,
    layout: TopicLayout,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = connection.client_config(&[]).create()?;
    let dead_letter = dead_letter_topic(topic);
    let topics = [
        NewTopic::new(
            topic,
            layout.partitions,
            TopicReplication::Fixed(layout.replication),
        ),
        NewTopic::new(&dead_letter, 1, TopicReplication::Fixed(layout.replication)),
    ];
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(ADMIN_TIMEOUT));
    let created = tokio::time::timeout(ADMIN_TIMEOUT, admin.create_topics(&topics, &options))
        .await
        .map_err(|_| KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut))??;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                    tracing::error!(topic = %name, ?code, "could not create topic");
                })
            }
        }
    }
    Ok(())
}
