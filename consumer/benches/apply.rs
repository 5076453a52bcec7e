//! What storing an event's effects costs, in CPU time per event, and how that cost grows.
//!
//! `effects::apply` is run on batches of ~1 KiB events against a SQLite store in a temporary
//! directory (or the store at `SLUICE_BENCH_DATABASE_URL`, a fresh PostgreSQL database for
//! instance), after a warm-up that gives the tables some depth. The figure is this process's
//! user + system CPU (every thread: the tokio workers and the SQLite worker) per event, read
//! from `/proc/self/stat`: on two shared cores it moves far less than wall time does.
//!
//! Rows: the batch size (what the consumer's linger buys), then the aims' cost-growth axes at
//! one batch size: contacts touched (1 to 10,000 distinct), event types (1 to 1,000),
//! webhooks and workflows per store (0 to 100), and segments per store (0 to 100 counting other
//! types, which a batch must not pay for; 1 to 10 counting the events' own type, which it must
//! evaluate). A flat column is the aim for all but the last.
//!
//! `cargo bench -p consumer --bench apply [-- NAME…]`: with names, only the rows whose name
//! contains one of them, beside the reference (for a profiler's run).

use schemas::{ContactKey, EventEnvelope, ReceiveType};
use serde_json::{json, Map, Value};
use sqlx::AnyPool;

const WARM_UP: usize = 20_000;
const MEASURED: usize = 20_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("CPU µs per event stored by effects::apply (~1 KiB events, {MEASURED} measured after {WARM_UP})");
    println!("| case | batch | contacts | types | webhooks+workflows | segments (other/this type) | µs/event | ratio | events/s (wall) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let base = Case {
        batch: 100,
        contacts: 10_000,
        types: 1,
        hooks: 0,
        segments: 0,
        counting: 0,
    };
    // The first store made in a process pays for more than its events (allocator arenas,
    // the file system's first extents); measured once and set aside.
    measure(base).await;
    let reference = Some(run("reference", base, None).await);
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &'static str, case: Case, reference: Option<f64>| {
        let skip = !wanted.is_empty() && !wanted.iter().any(|w| name.contains(w.as_str()));
        async move {
            if !skip {
                run(name, case, reference).await;
            }
        }
    };
    for batch in [20, 500] {
        run("batch", Case { batch, ..base }, reference).await;
    }
    for contacts in [1, 100] {
        run("contacts", Case { contacts, ..base }, reference).await;
    }
    run(
        "event types",
        Case {
            types: 1000,
            ..base
        },
        reference,
    )
    .await;
    for hooks in [10, 100] {
        run("webhooks+workflows", Case { hooks, ..base }, reference).await;
    }
    for segments in [10, 100] {
        run(
            "segments, other types",
            Case { segments, ..base },
            reference,
        )
        .await;
    }
    for counting in [1, 10] {
        run("segments, this type", Case { counting, ..base }, reference).await;
    }
}

#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    contacts: usize,
    types: usize,
    /// Webhook subscriptions and workflows each, none of them matching the events (a filter on
    /// an alias never sent, a trigger type never sent), so what is measured is the cost of
    /// their existence.
    hooks: usize,
    /// Segments counting a type no event has: what their existence costs.
    segments: usize,
    /// Segments counting the events' own type (the third within 30 days): each batch judges
    /// its contacts against them.
    counting: usize,
}

/// Measures `case` and prints its row, its ratio to `reference` (itself when `None`); returns
/// its µs per event.
async fn run(name: &str, case: Case, reference: Option<f64>) -> f64 {
    let (us, rate) = measure(case).await;
    let ratio = us / reference.unwrap_or(us);
    println!(
        "| {name} | {} | {} | {} | {} | {}/{} | {us:.1} | {ratio:.2} | {rate:.0} |",
        case.batch, case.contacts, case.types, case.hooks, case.segments, case.counting
    );
    us
}

/// CPU µs per event over `MEASURED` events, after `WARM_UP`, in a fresh store, and events
/// stored per second of wall time: one consumer's drain rate, with the database (a PostgreSQL
/// given by URL too) on the same cores.
async fn measure(case: Case) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("SLUICE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| store::sqlite_url(dir.path()));
    let db = store::connect(&url).await.expect("store");
    let store_id = format!("bench-{}", uuid::Uuid::now_v7().simple());
    register(&db, &store_id, case).await;
    let mut events = Events::new(&store_id, case);
    // The consumer's own connection, as the consume loop keeps it.
    let mut connection = store::consumer_connection(&db).await.expect("connection");
    for _ in 0..WARM_UP / case.batch {
        apply(&mut connection, &events.batch(case.batch)).await;
    }
    let batches: Vec<Vec<EventEnvelope>> = (0..MEASURED / case.batch)
        .map(|_| events.batch(case.batch))
        .collect();
    let started = cpu_seconds();
    let wall = std::time::Instant::now();
    for batch in &batches {
        apply(&mut connection, batch).await;
    }
    let wall = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - started;
    if case.counting > 0 {
        // The case measures what it says only if contacts did enter the counting segments.
        let (members,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM segment_members")
            .fetch_one(&db)
            .await
            .expect("count");
        assert!(
            members > 0,
            "no contact entered a segment counting its events"
        );
    }
    drop(connection);
    db.close().await;
    let events = (batches.len() * case.batch) as f64;
    (cpu * 1e6 / events, events / wall)
}

async fn apply(db: &mut sqlx::pool::PoolConnection<sqlx::Any>, batch: &[EventEnvelope]) {
    let applied = consumer::effects::apply(&mut **db, batch)
        .await
        .expect("apply");
    assert_eq!(applied.recorded as usize, batch.len(), "every event is new");
}

/// The store, its event types, `hooks` webhooks and workflows on a type no event has, and the
/// case's segments.
async fn register(db: &AnyPool, store_id: &str, case: Case) {
    let now = store::clock::now();
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ($1, 'bench', $2)")
        .bind(store_id)
        .bind(&now)
        .execute(db)
        .await
        .expect("store");
    for n in 0..case.hooks {
        sqlx::query(
            "INSERT INTO webhooks (id, store_id, target_url, types, filter_alias, is_active, \
             status, secret, created_at, updated_at) \
             VALUES ($1, $2, 'http://127.0.0.1:9/', 'custom_event.received', 'never-sent', 1, \
             'enabled', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', $3, $3)",
        )
        .bind(format!("{store_id}-wh-{n}"))
        .bind(store_id)
        .bind(&now)
        .execute(db)
        .await
        .expect("webhook");
        sqlx::query(
            "INSERT INTO workflows (id, store_id, trigger_event_type_id, status, body, \
             created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $5)",
        )
        .bind(format!("{store_id}-wf-{n}"))
        .bind(store_id)
        .bind(format!("{store_id}-unused-type"))
        .bind(
            json!({
                "name": "never runs",
                "status": "active",
                "trigger": {"customEventTypeId": format!("{store_id}-unused-type")},
                "actions": [{"type": "setContactFields", "fields": {"x": "{{event.total}}"}}],
            })
            .to_string(),
        )
        .bind(&now)
        .execute(db)
        .await
        .expect("workflow");
    }
    let other_types = (0..case.segments).map(|n| {
        (
            format!("{store_id}-seg-{n}"),
            format!("{store_id}-unused-type"),
        )
    });
    let this_type = (0..case.counting).map(|n| {
        (
            format!("{store_id}-count-{n}"),
            format!("{store_id}-type-0"),
        )
    });
    for (id, counted) in other_types.chain(this_type) {
        let body = json!({"name": "bench", "match": "all", "conditions": [{"event": {
            "customEventTypeId": counted, "within": "30d", "count": {"op": "gte", "value": 3}}}]});
        sqlx::query(
            "INSERT INTO segments (id, store_id, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(store_id)
        .bind(body.to_string())
        .bind(&now)
        .execute(db)
        .await
        .expect("segment");
    }
}

/// A stream of distinct events spread over the case's contacts and types.
struct Events {
    store_id: String,
    case: Case,
    next: usize,
    fields: Map<String, Value>,
}

impl Events {
    fn new(store_id: &str, case: Case) -> Events {
        let mut fields = Map::new();
        fields.insert("orderId".into(), json!("o-000000"));
        fields.insert("total".into(), json!(129.95));
        fields.insert("currency".into(), json!("EUR"));
        fields.insert("note".into(), json!("x".repeat(900)));
        Events {
            store_id: store_id.to_owned(),
            case,
            next: 0,
            fields,
        }
    }

    fn batch(&mut self, size: usize) -> Vec<EventEnvelope> {
        (0..size).map(|_| self.event()).collect()
    }

    fn event(&mut self) -> EventEnvelope {
        let n = self.next;
        self.next += 1;
        // A multiplicative hash scatters contacts as real traffic does, rather than in order.
        let contact = n.wrapping_mul(2_654_435_761) % self.case.contacts;
        let event_type = n % self.case.types;
        EventEnvelope {
            id: uuid::Uuid::now_v7().to_string(),
            store_id: self.store_id.clone(),
            event_type_id: format!("{}-type-{event_type}", self.store_id),
            event_type_version: 1,
            alias: format!("type-{event_type}"),
            receive_type: ReceiveType::Webhook,
            received_at: store::clock::now(),
            contact: ContactKey::Email(format!("contact-{contact}@example.com")),
            fields: self.fields.clone(),
        }
    }
}

/// User + system CPU seconds of this process so far (every thread).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name may hold spaces; the fields counted here come after its `)`.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // Linux reports /proc times in USER_HZ, which is 100 on every architecture it runs on.
    100.0
}
