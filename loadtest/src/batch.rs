//! A batch answer read item by item. The gateway answers a batch 200 whatever became of its
//! events, `{"results": [{"index", "status", "id" | "error"}]}`: the 200 says nothing about
//! how many were accepted, so a batch counts as expected only when every item is.

use serde_json::Value;

use crate::client::Answer;
use crate::scenario::Planned;

/// What a batch's 200 answer says about its items.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BatchItems {
    /// (contact email, event id) of each item answered 201.
    pub accepted: Vec<(String, String)>,
    /// Items not accepted: answered another status, or left out of the results.
    pub refused: u64,
    /// Items the request's intent did not expect to end as they did, and results that match
    /// no item.
    pub unexpected: u64,
    /// The first unexpected item, for the report's samples.
    pub first_unexpected: Option<String>,
}

impl BatchItems {
    /// Reads `answer`, the 200 to the batch `planned`, whose items are `planned.emails`.
    pub(crate) fn of(planned: &Planned, answer: &Answer) -> BatchItems {
        let items = planned.emails.len();
        let mut read = BatchItems::default();
        let results = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|body| body.get("results").and_then(Value::as_array).cloned());
        let Some(results) = results else {
            read.refused = items as u64;
            read.unexpected = items.max(1) as u64;
            read.first_unexpected = Some("the answer has no results array".into());
            return read;
        };
        let mut answered = vec![false; items];
        for result in &results {
            let index = result["index"]
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < items && !answered[*i]);
            let status = result["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok());
            let (Some(index), Some(status)) = (index, status) else {
                read.note(format!("a result that matches no item: {result}"));
                continue;
            };
            answered[index] = true;
            match (status, result["id"].as_str()) {
                (201, Some(id)) => read
                    .accepted
                    .push((planned.emails[index].clone(), id.to_owned())),
                (201, None) => {
                    read.refused += 1;
                    read.note(format!("item {index} answered 201 without an id"));
                }
                (status, _) => {
                    read.refused += 1;
                    if !planned.intent.expects(status, false) {
                        read.note(format!("item {index} got {status}: {}", result["error"]));
                    }
                }
            }
        }
        let missing = answered.iter().filter(|done| !**done).count() as u64;
        if missing > 0 {
            read.refused += missing;
            read.unexpected += missing;
            read.first_unexpected
                .get_or_insert(format!("{missing} items missing from the results"));
        }
        read
    }

    fn note(&mut self, what: String) {
        self.unexpected += 1;
        self.first_unexpected.get_or_insert(what);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::scenario::Intent;

    fn batch(items: usize) -> Planned {
        Planned {
            signature: None,
            path: "/v1/custom-events/alias/lt-api/batch?createContact=true".into(),
            body: Bytes::new(),
            content_type: "application/json",
            key: Some("k:s".into()),
            intent: Intent::Valid,
            emails: (0..items).map(|i| format!("c{i}@x.example")).collect(),
            batch: true,
        }
    }

    fn answer(body: Value) -> Answer {
        Answer {
            status: 200,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn counts_each_item_and_keeps_the_accepted_ones_with_their_contacts() {
        let read = BatchItems::of(
            &batch(3),
            &answer(serde_json::json!({"results": [
                {"index": 0, "status": 201, "id": "ev-0"},
                {"index": 1, "status": 400, "error": {"code": "E0501"}},
                {"index": 2, "status": 201, "id": "ev-2"},
            ]})),
        );
        assert_eq!(
            read.accepted,
            vec![
                ("c0@x.example".to_owned(), "ev-0".to_owned()),
                ("c2@x.example".to_owned(), "ev-2".to_owned())
            ]
        );
        assert_eq!((read.refused, read.unexpected), (1, 1));
        let first = read.first_unexpected.unwrap_or_default();
        assert!(
            first.contains("item 1 got 400") && first.contains("E0501"),
            "{first}"
        );
    }

    #[test]
    fn a_batch_whose_every_item_was_refused_accepts_nothing() {
        let results: Vec<Value> = (0..4)
            .map(|i| serde_json::json!({"index": i, "status": 400, "error": {"code": "E0501"}}))
            .collect();
        let read = BatchItems::of(&batch(4), &answer(serde_json::json!({"results": results})));
        assert!(read.accepted.is_empty());
        assert_eq!((read.refused, read.unexpected), (4, 4));
    }

    #[test]
    fn missing_repeated_and_unreadable_results_are_unexpected() {
        // Item 0 answered twice, item 1 never, and an index past the end.
        let read = BatchItems::of(
            &batch(2),
            &answer(serde_json::json!({"results": [
                {"index": 0, "status": 201, "id": "a"},
                {"index": 0, "status": 201, "id": "b"},
                {"index": 7, "status": 201, "id": "c"},
            ]})),
        );
        assert_eq!(read.accepted.len(), 1);
        assert_eq!(read.refused, 1, "item 1 was not accepted");
        assert_eq!(
            read.unexpected, 3,
            "a repeat, a stray index and a missing item"
        );

        let read = BatchItems::of(&batch(2), &answer(serde_json::json!({"ok": true})));
        assert_eq!((read.accepted.len(), read.refused), (0, 2));
        assert!(read.unexpected > 0);

        let read = BatchItems::of(
            &batch(1),
            &Answer {
                status: 200,
                body: Bytes::from_static(b"not json"),
            },
        );
        assert!(read.unexpected > 0 && read.accepted.is_empty());
    }

    #[test]
    fn refusals_the_intent_expects_are_not_unexpected() {
        let mut planned = batch(2);
        planned.intent = Intent::OverLimit;
        let read = BatchItems::of(
            &planned,
            &answer(serde_json::json!({"results": [
                {"index": 0, "status": 201, "id": "a"},
                {"index": 1, "status": 429, "error": {"code": "rate"}},
            ]})),
        );
        assert_eq!(
            (read.accepted.len(), read.refused, read.unexpected),
            (1, 1, 0)
        );
    }
}
