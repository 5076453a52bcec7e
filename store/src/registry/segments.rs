//! The segments table as the registry manages it: a definition (see `crate::segments`) stored
//! as a JSON document. Every write starts the definition's backfill over, so the consumer
//! evaluates every contact against what the segment now says.

use super::{Document, DocumentBody};
use crate::segments::SegmentDefinition;

/// A segment as stored and answered.
pub type Segment = Document<SegmentDefinition>;

impl DocumentBody for SegmentDefinition {
    const TABLE: &'static str = "segments";

    fn columns(&self) -> Vec<(&'static str, String)> {
        vec![("backfill_after", String::new())]
    }
}
