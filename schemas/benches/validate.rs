//! Decode and validate one realistic ~1 KiB webhook event, against a serde_json decode-only
//! baseline, to show what the simd-json choice buys on the ingest path, and simd-json without
//! decode's pre-scan, to show what the scan costs.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use schemas::{decode, CompiledEventType, EventTypeDefinition};

const TYPE: &str = r#"{
  "name": "Order paid", "category": "receive", "alias": "order-paid", "receiveType": "webhook",
  "fields": [
    {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true, "jsonPointerPath": "/data/customer/email"},
    {"id": "phone", "name": "Phone", "type": "phone", "required": false, "defaultCountryCode": "34", "jsonPointerPath": "/data/customer/phone"},
    {"id": "orderId", "name": "Order", "type": "text", "required": true, "jsonPointerPath": "/data/order/id"},
    {"id": "total", "name": "Total", "type": "decimal", "required": true, "jsonPointerPath": "/data/order/total"},
    {"id": "items", "name": "Items", "type": "integer", "required": false, "jsonPointerPath": "/data/order/itemCount"},
    {"id": "paidAt", "name": "Paid at", "type": "date", "required": true, "jsonPointerPath": "/data/order/paidAt"},
    {"id": "firstOrder", "name": "First", "type": "boolean", "required": false, "jsonPointerPath": "/data/customer/firstOrder"},
    {"id": "channel", "name": "Channel", "type": "radio", "required": false, "jsonPointerPath": "/data/order/channel",
     "options": [{"id": "web", "label": "Web"}, {"id": "app", "label": "App"}, {"id": "store", "label": "Store"}]},
    {"id": "categories", "name": "Categories", "type": "checkbox", "required": false, "jsonPointerPath": "/data/order/categories",
     "options": [{"id": "shoes", "label": "Shoes"}, {"id": "bags", "label": "Bags"}, {"id": "hats", "label": "Hats"}]},
    {"id": "coupon", "name": "Coupon", "type": "text", "required": false, "jsonPointerPath": "/data/order/coupon/code"}
  ]
}"#;

const EVENT: &str = r#"{
  "id": "evt_01HZX3Q8M4YB7K2N9P5R6T8V0W",
  "type": "order.paid",
  "createdAt": "2024-05-17T10:21:33.123+02:00",
  "data": {
    "customer": {"email": "  Jane.Doe@Example.COM ", "phone": "666 777 888", "firstOrder": "true",
                 "name": "Jane Doe", "locale": "es-ES", "tags": ["vip", "newsletter"]},
    "order": {
      "id": "ORD-2024-000123", "total": "149.90", "currency": "EUR", "itemCount": 3,
      "paidAt": "2024-05-17T10:21:30+02:00", "channel": "web", "categories": ["shoes", "bags", "shoes"],
      "coupon": {"code": "SPRING24", "discount": 10},
      "lines": [
        {"sku": "SHOE-41-BLK", "name": "Running shoe", "qty": 1, "price": 89.90},
        {"sku": "BAG-TOTE-RED", "name": "Tote bag", "qty": 2, "price": 30.00}
      ],
      "shipping": {"method": "express", "address": {"line1": "Calle Mayor 1", "city": "Madrid",
                   "postcode": "28013", "country": "ES"}}
    }
  },
  "meta": {"attempt": 1, "source": "shop-backend", "signature": "t=1715934093,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"}
}"#;

fn compiled() -> CompiledEventType {
    let mut buf = TYPE.as_bytes().to_vec();
    let value = decode(&mut buf).expect("type JSON");
    CompiledEventType::compile(&EventTypeDefinition::parse(&value).expect("valid type"))
}

fn bench(c: &mut Criterion) {
    let compiled = compiled();
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Bytes(EVENT.len() as u64));
    let mut check = EVENT.as_bytes().to_vec();
    let value = decode(&mut check).expect("event JSON");
    assert!(
        compiled.validate(&value).is_ok(),
        "the bench event must be valid"
    );

    group.bench_function("simd_json_decode_validate", |b| {
        b.iter_batched_ref(
            || EVENT.as_bytes().to_vec(),
            |buf| {
                let value = decode(buf).expect("event JSON");
                black_box(compiled.validate(&value).is_ok())
            },
            criterion::BatchSize::SmallInput,
        );
    });
    group.bench_function("simd_json_decode_only", |b| {
        b.iter_batched_ref(
            || EVENT.as_bytes().to_vec(),
            |buf| black_box(decode(buf).is_ok()),
            criterion::BatchSize::SmallInput,
        );
    });
    // The same parse without decode's pre-scan, so the scan's cost shows beside it.
    group.bench_function("simd_json_parse_unchecked", |b| {
        b.iter_batched_ref(
            || EVENT.as_bytes().to_vec(),
            |buf| black_box(simd_json::to_borrowed_value(buf).is_ok()),
            criterion::BatchSize::SmallInput,
        );
    });
    group.bench_function("serde_json_decode_only", |b| {
        b.iter(|| {
            black_box(
                serde_json::from_slice::<serde_json::Value>(black_box(EVENT.as_bytes())).is_ok(),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
