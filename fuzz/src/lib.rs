//! What the fuzz targets share: the event types they validate against, one per receive mode,
//! each with every field type. Kept here so a target file holds only its input handling and
//! the invariants it checks.

use schemas::{decode, CompiledEventType, EventTypeDefinition};

/// Field ids, types and the settings their checks depend on, shared by every mode's type so
/// an event accepted in any mode can be re-checked under the strict api type.
pub const FIELDS: &str = r#"[
  {"id": "email", "name": "E", "type": "email", "required": true, "isPrimaryKey": true, "jsonPointerPath": "/customer/email"},
  {"id": "age", "name": "A", "type": "integer", "required": false, "jsonPointerPath": "/customer/age"},
  {"id": "total", "name": "T", "type": "decimal", "required": false, "jsonPointerPath": "/order/total"},
  {"id": "vip", "name": "V", "type": "boolean", "required": false},
  {"id": "born", "name": "B", "type": "date", "required": false, "jsonPointerPath": "/customer/born"},
  {"id": "phone", "name": "P", "type": "phone", "required": false, "defaultCountryCode": "34", "jsonPointerPath": "/a~1b/~0c"},
  {"id": "size", "name": "S", "type": "radio", "required": false, "jsonPointerPath": "/order/lines/0/size",
   "options": [{"id": "s", "label": "S"}, {"id": "l", "label": "L"}, {"id": "x,l", "label": "XL"}]},
  {"id": "tags", "name": "G", "type": "checkbox", "required": false, "jsonPointerPath": "/order/tags",
   "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "c d", "label": "CD"}]},
  {"id": "note", "name": "N", "type": "text", "required": false, "jsonPointerPath": "/"}
]"#;

/// The phone field's default country code, as in [`FIELDS`].
pub const COUNTRY_CODE: &str = "34";

/// The receive types the fuzzers cover: strict api, lenient webhook (jsonPointerPath), and
/// the SDK's lenient mode with `_trackerId`.
pub const RECEIVE_TYPES: [&str; 3] = ["api", "webhook", "web/mobile-app"];

/// Compiles the shared field set as a receive type of `receive_type`. Panics on a bad
/// definition: that is a bug in this file, found on the first input.
pub fn compile(receive_type: &str) -> CompiledEventType {
    let text = format!(
        r#"{{"name": "Fuzz", "category": "receive", "alias": "fuzz", "receiveType": "{receive_type}", "fields": {FIELDS}}}"#
    );
    let mut buf = text.into_bytes();
    let value = decode(&mut buf).expect("definition is JSON");
    let definition = EventTypeDefinition::parse(&value).expect("definition is valid");
    CompiledEventType::compile(&definition)
}
