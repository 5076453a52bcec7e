//! Every metric the consumer reports, by name, in one place (SPEC §8).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::effects::Applied;

/// HELP text and units of the consumer's metrics, shown on `/metrics` beside each one.
pub(crate) fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "sluice_consumer_events_total",
        Unit::Count,
        "Events read from the queue, by outcome: recorded, duplicate (already recorded) or malformed."
    );
    describe_counter!(
        "sluice_contacts_upserted_total",
        Unit::Count,
        "Contacts touched by stored events, by op: created or updated."
    );
    describe_gauge!(
        "sluice_consumer_lag_events",
        Unit::Count,
        "Events in the queue not yet stored, as last measured."
    );
    describe_histogram!(
        "sluice_event_end_to_end_seconds",
        Unit::Seconds,
        "Time from an event's acceptance at a gateway to its effects being stored."
    );
    describe_counter!(
        "sluice_webhook_deliveries_total",
        Unit::Count,
        "Outbound webhook delivery attempts, by outcome: delivered, retrying or failed."
    );
    describe_counter!(
        "sluice_webhook_endpoints_disabled_total",
        Unit::Count,
        "Webhook subscriptions disabled for failing longer than --webhook-disable-after."
    );
    describe_histogram!(
        "sluice_webhook_delivery_duration_seconds",
        Unit::Seconds,
        "Time one delivery attempt took, answered or not."
    );
    describe_counter!(
        "sluice_workflow_runs_total",
        Unit::Count,
        "Workflow runs, by outcome: completed or failed."
    );
    describe_gauge!(
        "sluice_consumer_failing_batch_seconds",
        Unit::Seconds,
        "How long the batch in hand has been failing to store; 0 while batches are stored."
    );
    describe_counter!(
        "sluice_consumer_dead_lettered_total",
        Unit::Count,
        "Events set aside because the store refuses them or their message is unreadable, by reason."
    );
    // Every series starts at 0, so rate() and increase() see the first event: a counter that
    // first appears already at 1 looks unchanged to them, and alerts on it never fire.
    for outcome in ["recorded", "duplicate", "malformed"] {
        metrics::counter!("sluice_consumer_events_total", "outcome" => outcome).increment(0);
    }
    for op in ["created", "updated"] {
        metrics::counter!("sluice_contacts_upserted_total", "op" => op).increment(0);
    }
    for outcome in ["delivered", "retrying", "failed"] {
        metrics::counter!("sluice_webhook_deliveries_total", "outcome" => outcome).increment(0);
    }
    for outcome in ["completed", "failed"] {
        metrics::counter!("sluice_workflow_runs_total", "outcome" => outcome).increment(0);
    }
    for reason in ["store_refused", "malformed"] {
        metrics::counter!("sluice_consumer_dead_lettered_total", "reason" => reason).increment(0);
    }
    metrics::counter!("sluice_webhook_endpoints_disabled_total").increment(0);
}

/// One applied batch.
pub(crate) fn report_applied(applied: &Applied) {
    metrics::counter!("sluice_consumer_events_total", "outcome" => "recorded")
        .increment(applied.recorded);
    metrics::counter!("sluice_consumer_events_total", "outcome" => "duplicate")
        .increment(applied.duplicates);
    metrics::counter!("sluice_contacts_upserted_total", "op" => "created")
        .increment(applied.contacts_created);
    metrics::counter!("sluice_contacts_upserted_total", "op" => "updated")
        .increment(applied.contacts_updated);
}

/// A message that could not be read as an envelope and was set aside.
pub(crate) fn report_malformed() {
    metrics::counter!("sluice_consumer_events_total", "outcome" => "malformed").increment(1);
}

/// Events written to the queue and not yet applied.
pub(crate) fn report_lag(events: u64) {
    metrics::gauge!("sluice_consumer_lag_events").set(events as f64);
}

/// From acceptance at the gateway to effects stored.
pub(crate) fn report_end_to_end(received_at: &str) {
    if let Ok(received) = OffsetDateTime::parse(received_at, &Rfc3339) {
        let seconds = (OffsetDateTime::now_utc() - received).as_seconds_f64();
        metrics::histogram!("sluice_event_end_to_end_seconds").record(seconds.max(0.0));
    }
}

/// One delivery attempt's outcome: delivered, retrying or failed (dead-lettered).
pub(crate) fn report_delivery(outcome: &'static str) {
    metrics::counter!("sluice_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

/// Webhook subscriptions disabled for failing longer than `--webhook-disable-after`.
pub(crate) fn report_endpoints_disabled(count: u64) {
    metrics::counter!("sluice_webhook_endpoints_disabled_total").increment(count);
}

/// How long one delivery attempt took, answer or not.
pub(crate) fn report_delivery_duration(elapsed: std::time::Duration) {
    metrics::histogram!("sluice_webhook_delivery_duration_seconds").record(elapsed.as_secs_f64());
}

/// One workflow run: completed or failed.
pub(crate) fn report_workflow_run(outcome: &'static str) {
    metrics::counter!("sluice_workflow_runs_total", "outcome" => outcome).increment(1);
}

/// How long the batch in hand has been failing; zero while batches are stored.
pub(crate) fn report_failing_batch(failing_for: std::time::Duration) {
    metrics::gauge!("sluice_consumer_failing_batch_seconds").set(failing_for.as_secs_f64());
}

/// An event set aside because the store refuses it, or because its message is unreadable.
pub(crate) fn report_dead_lettered(reason: &'static str) {
    metrics::counter!("sluice_consumer_dead_lettered_total", "reason" => reason).increment(1);
}
