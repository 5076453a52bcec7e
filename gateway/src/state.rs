//! The state every request handler shares: one `Clone` struct of cheap handles.

use std::sync::Arc;

use sqlx::AnyPool;

use crate::auth::KeyCache;
use crate::config::Config;
use crate::ingest::TypeCache;
use crate::rate_limit::RateLimits;
use queue::Publisher;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub db: AnyPool,
    pub keys: Arc<KeyCache>,
    pub types: Arc<TypeCache>,
    pub limits: Arc<RateLimits>,
    pub queue: Publisher,
    pub config: Arc<Config>,
    /// The in-process consumer's health, when this gateway runs one.
    pub consumer: Option<Arc<consumer::health::Health>>,
}

impl AppState {
    pub(crate) fn new(config: Config, db: AnyPool, queue: Publisher) -> AppState {
        AppState {
            db,
            keys: Arc::new(KeyCache::default()),
            types: Arc::new(TypeCache::default()),
            limits: Arc::new(RateLimits::new(
                config.rate_limit_api,
                config.rate_limit_webhook,
                config.rate_limit_sdk,
            )),
            queue,
            config: Arc::new(config),
            consumer: None,
        }
    }
}
