//! The delivery client's DNS guard: every name is resolved through it, and addresses outbound
//! webhooks must not reach (see `schemas::target`) are dropped before a connection is made, so
//! a name that resolves to an internal address after it was saved (DNS rebinding) is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use schemas::target::{is_forbidden, TargetError};

/// A DNS resolver for the delivery client that drops forbidden addresses, so the connection
/// is made only to an address that was checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0 is replaced by the URL's port by the client.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| !is_forbidden(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    Box::new(TargetError::Unresolved)
                } else {
                    Box::new(TargetError::Private)
                };
                return Err(error);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The resolver to install, as the client wants it.
pub(crate) fn guarded_resolver() -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolver_drops_loopback_answers() {
        let resolved = GuardedResolver
            .resolve("localhost".parse().expect("name"))
            .await;
        assert!(resolved.is_err());
    }
}
