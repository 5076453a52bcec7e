//! The state every request handler shares: one `Clone` struct of cheap handles.

use std::sync::Arc;

use sqlx::AnyPool;

use crate::auth::KeyCache;
use crate::config::Config;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub db: AnyPool,
    pub keys: Arc<KeyCache>,
    pub config: Arc<Config>,
}

impl AppState {
    pub(crate) fn new(config: Config, db: AnyPool) -> AppState {
        AppState {
            db,
            keys: Arc::new(KeyCache::default()),
            config: Arc::new(config),
        }
    }
}
