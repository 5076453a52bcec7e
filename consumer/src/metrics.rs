//! Every metric the consumer reports, by name, in one place (SPEC §8).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::effects::Applied;

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
