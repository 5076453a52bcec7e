//! PostgreSQL over TLS, as managed services require: `sslmode` (and `sslrootcert`) in the
//! store URL. The test server (scripts/postgres.sh) offers TLS with a certificate signed by a
//! throw-away authority whose certificate is in SLUICE_TEST_POSTGRES_CA.

use sqlx::AnyPool;

fn admin_url() -> url::Url {
    let admin = std::env::var("SLUICE_TEST_POSTGRES_URL")
        .expect("SLUICE_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test");
    url::Url::parse(&admin).expect("url")
}

fn authority() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_CA")
        .expect("SLUICE_TEST_POSTGRES_CA is not set: run the tests with ./scripts/test")
}

/// A fresh database's URL with `query`.
async fn database(query: &str) -> String {
    sqlx::any::install_default_drivers();
    let admin = admin_url();
    let name = format!("tls_{}", uuid::Uuid::new_v4().simple());
    let pool = AnyPool::connect(admin.as_str()).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let mut url = admin;
    url.set_path(&name);
    url.set_query(Some(query));
    url.to_string()
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn encrypted(pool: &AnyPool) -> bool {
    let ssl: i32 =
        sqlx::query_scalar("SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .expect("pg_stat_ssl");
    ssl == 1
}

#[tokio::test]
async fn the_store_works_over_tls_with_sslmode_require() {
    let pool = store::connect(&database("sslmode=require").await)
        .await
        .expect("connect with sslmode=require (migrations run over it)");
    assert!(encrypted(&pool).await);
    let plain = store::connect(&database("sslmode=disable").await)
        .await
        .expect("connect with sslmode=disable");
    assert!(!encrypted(&plain).await, "the check tells the two apart");
}

#[tokio::test]
async fn verify_full_checks_the_server_certificate() {
    let ca = authority();
    let query = format!("sslmode=verify-full&sslrootcert={ca}");
    let pool = store::connect(&database(&query).await)
        .await
        .expect("connect with verify-full against the authority that signed the server");
    assert!(encrypted(&pool).await);

    // Without that authority, the system's store does not know who signed the certificate.
    let refused = store::connect(&database("sslmode=verify-full").await).await;
    let error = refused.expect_err("a certificate no trusted authority signed is refused");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "refused for the certificate: {error}"
    );
}
