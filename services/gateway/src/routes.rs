//! The route table: which service owns a path, and what the path is called there.
use crate::config::{Access, RouteConfig};

/// Paths no service exposes to the outside, whatever the table says.
const INTERNAL: [&str; 4] = ["/events", "/metrics", "/health", "/openapi.json"];

#[derive(Debug, Clone)]
pub struct Route {
    pub service: String,
    pub access: Access,
    pub timeout_ms: Option<u64>,
    /// The prefix as the service sees it (for the merged OpenAPI document).
    pub upstream_prefix: String,
    pub prefix: String,
    /// Position in the table, so per-route state elsewhere can be kept in a plain vector/map.
    pub index: usize,
    strip: String,
    to: String,
}

/// Routes sorted so that the longest prefix wins.
#[derive(Debug, Clone)]
pub struct RouteTable(Vec<Route>);

/// A matched request: which route, and the path to send upstream.
pub struct Target<'a> {
    pub route: &'a Route,
    pub path: String,
}

impl RouteTable {
    pub fn new(configs: &[RouteConfig]) -> Self {
        let mut routes: Vec<Route> = configs
            .iter()
            .map(|c| Route {
                service: c.service.clone(),
                access: c.access,
                timeout_ms: c.timeout_ms,
                upstream_prefix: format!(
                    "{}{}",
                    c.to,
                    c.prefix.strip_prefix(&c.strip).unwrap_or(&c.prefix)
                ),
                prefix: c.prefix.clone(),
                index: 0,
                strip: c.strip.clone(),
                to: c.to.clone(),
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        for (index, route) in routes.iter_mut().enumerate() {
            route.index = index;
        }
        Self(routes)
    }

    pub fn routes(&self) -> &[Route] {
        &self.0
    }

    /// The route owning `path`, matched on whole segments (`/api/products` matches
    /// `/api/products/1` but not `/api/productsX`); `None` for unrouted and internal paths.
    pub fn resolve(&self, path: &str) -> Option<Target<'_>> {
        let route = self.0.iter().find(|r| {
            path == r.prefix
                || path
                    .strip_prefix(&r.prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        })?;
        let upstream = format!(
            "{}{}",
            route.to,
            path.strip_prefix(&route.strip).unwrap_or(path)
        );
        let upstream = if upstream.is_empty() { "/" } else { &upstream };
        if INTERNAL.iter().any(|internal| {
            upstream
                .strip_prefix(internal)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }) || upstream
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
        {
            return None;
        }
        Some(Target {
            route,
            path: upstream.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let routes: Vec<RouteConfig> = serde_json::from_value(serde_json::json!([
            {"prefix": "/api/users/me", "service": "users", "strip": "/api", "access": "authenticated"},
            {"prefix": "/api/users", "service": "users", "strip": "/api"},
            {"prefix": "/api/products", "service": "products", "strip": "/api"},
            {"prefix": "/.well-known", "service": "users"},
        ]))
        .unwrap();
        RouteTable::new(&routes)
    }

    #[test]
    fn the_longest_prefix_wins_and_the_api_prefix_is_stripped() {
        let table = table();
        let me = table.resolve("/api/users/me").unwrap();
        assert_eq!(me.route.access, Access::Authenticated);
        assert_eq!(me.path, "/users/me");
        let user = table.resolve("/api/users/123").unwrap();
        assert_eq!(user.route.access, Access::Public);
        assert_eq!(
            table.resolve("/.well-known/jwks.json").unwrap().path,
            "/.well-known/jwks.json"
        );
    }

    #[test]
    fn unrouted_internal_and_partial_segment_paths_are_not_routed() {
        let table = table();
        assert!(table.resolve("/api/productsX").is_none());
        assert!(table.resolve("/api/events").is_none());
        assert!(table.resolve("/events").is_none());
        assert!(table.resolve("/api/products/../metrics").is_none());
        assert!(table.resolve("/metrics").is_none());
    }
}
