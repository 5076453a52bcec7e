//! The connection to the store (SQLite or PostgreSQL) and its migrations.
//!
//! Both engines are reached through sqlx's `Any` driver and one set of portable SQL, so every
//! query in Sluice is written once and the same test suite runs against both.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions, Executor};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why the store could not be reached or prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url is not valid: {0}")]
    InvalidUrl(String),
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("could not apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which engine a URL names; decides the few engine-specific settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a `sqlite:` or `postgres://` URL names.
    pub fn of(url: &str) -> Result<Engine, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(DbError::InvalidUrl(
                "expected sqlite:PATH or postgres://…".to_owned(),
            ))
        }
    }
}

/// The default SQLite URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}/sluice.db?mode=rwc", data_dir.display())
}

/// Opens a pool on `url` and brings the schema up to date.
pub async fn connect(url: &str) -> Result<AnyPool, DbError> {
    install_default_drivers();
    let engine = Engine::of(url)?;
    let url = &if engine == Engine::Sqlite {
        create_sqlite_parent(url)?;
        sqlite_creating(url)
    } else {
        url.to_owned()
    };
    let options = AnyConnectOptions::from_str(url)
        .map_err(|e| DbError::InvalidUrl(e.to_string()))?
        .disable_statement_logging();
    let pool = AnyPoolOptions::new()
        // SQLite has one writer; more connections only queue on its lock. Its six are the
        // consumer's and the dispatcher's kept connections and four for everything else.
        .max_connections(if engine == Engine::Sqlite { 6 } else { 16 })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    // WAL lets readers run beside the writer; busy_timeout turns lock
                    // contention into waiting instead of errors.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // A multi-row statement inside a transaction keeps the pages it changes in
                    // a statement journal, to undo just that statement; on disk it was a temp
                    // file written and closed per statement (6% of the consumer's CPU). In
                    // memory it is bounded by one statement (at most 256 rows) and stored
                    // events cost 12–20% less CPU (`cargo bench -p consumer --bench apply`).
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    // A checkpoint copies each page changed since the last into the database
                    // file once, however often it changed: the tails of the activities table and
                    // its indexes change in every batch. At SQLite's default (every 1,000 pages,
                    // ~10 batches of 100 events) checkpoints were a fifth of the consumer's CPU;
                    // every 16,000 pages stored events at 0.86 of the CPU (five alternating runs
                    // of `cargo bench -p consumer --bench apply`). The log then reaches 64 MiB
                    // before it is reused, and is cut back to that if readers ever let it grow.
                    conn.execute("PRAGMA wal_autocheckpoint = 16000").await?;
                    conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                } else {
                    // A server that stops answering must not hold a request (and its client's
                    // connection) or a consumer batch forever.
                    conn.execute("SET statement_timeout = '30s'").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(DbError::Connect)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Pages of the database the consumer's connection keeps in memory, in KiB. One batch of a few
/// hundred events changes more pages than SQLite's default 2 MiB holds, and pages dropped from
/// that cache mid-transaction are written to the log and read back.
const CONSUMER_CACHE_KIB: u32 = 16 << 10;

/// A connection for one consumer to keep across its batches: on SQLite, a connection keeps its
/// page cache only while no other connection writes, so a consumer that came back to the pool
/// between batches read its pages again each time; its cache is larger than a reader's too.
/// Closed when dropped, so its cache never serves the pool's readers.
pub async fn consumer_connection(pool: &AnyPool) -> Result<PoolConnection<Any>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    connection.close_on_drop();
    if crate::sql::engine_of(&connection) == Engine::Sqlite {
        connection
            .execute(format!("PRAGMA cache_size = -{CONSUMER_CACHE_KIB}").as_str())
            .await?;
    }
    Ok(connection)
}

/// The connection a consumer keeps in `kept`, opened ([`consumer_connection`]) if it has none:
/// after a failure, which may have been the connection's own, the caller empties `kept`.
pub async fn kept_connection<'k>(
    pool: &AnyPool,
    kept: &'k mut Option<PoolConnection<Any>>,
) -> Result<&'k mut PoolConnection<Any>, sqlx::Error> {
    let connection = match kept.take() {
        Some(connection) => connection,
        None => consumer_connection(pool).await?,
    };
    Ok(kept.insert(connection))
}

/// Checks that the store answers; used by readiness.
pub async fn ping(pool: &AnyPool) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// `sqlite:PATH` as documented: the file is created when missing unless the URL says otherwise.
fn sqlite_creating(url: &str) -> String {
    let query = url
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default();
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        url.to_owned()
    } else if query.is_empty() && !url.contains('?') {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    }
}

fn create_sqlite_parent(url: &str) -> Result<(), DbError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|source| DbError::DataDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(sqlite_creating("sqlite:a.db"), "sqlite:a.db?mode=rwc");
        assert_eq!(
            sqlite_creating("sqlite:a.db?cache=shared"),
            "sqlite:a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_creating("sqlite:a.db?mode=ro"),
            "sqlite:a.db?mode=ro"
        );
    }

    #[tokio::test]
    async fn a_plain_sqlite_path_is_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}/new/sluice.db", dir.path().display());
        let pool = connect(&url).await.expect("sqlite:PATH opens a new file");
        ping(&pool).await.expect("answers");
        assert!(dir.path().join("new/sluice.db").exists());
    }
}
