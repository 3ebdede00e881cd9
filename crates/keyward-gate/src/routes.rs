//! The route table: which permissions an original request (method + path) needs, for the edge
//! surfaces (forward-auth, gateway, embedded layer), which see requests and not permissions.
//!
//! A route is `METHOD PATTERN` (`GET /orders/{id}`, `* /public/**`). A pattern's segments are
//! literals, `{name}` (any one segment) or, as the last segment only, `**` (the rest of the path,
//! zero or more segments). The most specific matching route wins: segment by segment from the
//! left, a literal beats `{name}`, which beats `**`; then the longer pattern; then a named method
//! beats `*`. Two routes that would tie (the same method and the same shape, whatever the
//! parameter names) are refused when the table is built, as are unknown methods, malformed
//! patterns and permissions that do not parse; so the table can never be ambiguous.
//!
//! The path matched is normalised first ([`normalise`]): the query is dropped, `%XX` escapes
//! of other characters decoded and empty segments dropped, so `/orders//1` and `/orders/%31`
//! are both `/orders/1`. A path an upstream could read as another one than keyward judges is
//! refused instead (`None`): a `.` or `..` segment (also escaped, `%2e%2e`; upstreams that route
//! on the raw path do not resolve them, others do, so keyward cannot know which path will be
//! served), an escaped `/` or `\`, a `\`, a `;` (path parameters: `/public/..;/admin` is
//! `/admin` to some servers), a NUL or another control character.

use std::borrow::Cow;

use keyward_core::Permission;
use serde::{Deserialize, Serialize};

/// One `[[edge.routes]]` entry as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `METHOD PATTERN`, e.g. `GET /orders/{id}`; `*` for any method.
    pub route: String,
    /// Permissions the request needs (all of them).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Passes without a credential.
    #[serde(default)]
    pub anonymous: bool,
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A valid token holding these permissions (maybe none).
    Token(Vec<Permission>),
    /// Nothing; a credential, when sent, is still checked.
    Anonymous,
    /// Refused whatever the credential (an unmatched route under `unmatched = "deny"`).
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Rest,
}

impl Segment {
    /// Higher is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param => 1,
            Segment::Rest => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    /// `None` for any method.
    method: Option<String>,
    segments: Vec<Segment>,
    requirement: Requirement,
    /// As configured, for error messages.
    text: String,
}

impl Route {
    fn matches(&self, method: &str, path: &[&str]) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && self.matches_path(path)
    }

    fn matches_path(&self, path: &[&str]) -> bool {
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Rest => return true,
                Segment::Literal(l) => {
                    if path.get(i) != Some(&l.as_str()) {
                        return false;
                    }
                }
                Segment::Param => {
                    if path.get(i).is_none() {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == path.len()
    }

    /// Sort key: bigger is more specific.
    fn specificity(&self) -> (Vec<u8>, usize, bool) {
        let ranks = self.segments.iter().map(Segment::rank).collect();
        (ranks, self.segments.len(), self.method.is_some())
    }

    fn same_shape(&self, other: &Route) -> bool {
        self.method == other.method
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (a, b) => a.rank() == b.rank(),
                })
    }
}

/// The compiled table, most specific route first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    unmatched: Requirement,
}

/// Methods a route may name.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

impl RouteTable {
    /// Builds the table; `unmatched` is what a request no route matches needs. Errors name the
    /// entry (`edge.routes[2]`) and say what is wrong.
    pub fn build(entries: &[RouteConfig], unmatched: Requirement) -> Result<Self, String> {
        let mut routes: Vec<Route> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("edge.routes[{i}]");
            let route = parse_route(entry).map_err(|e| format!("{at}: {e}"))?;
            if let Some(j) = routes.iter().position(|r| r.same_shape(&route)) {
                return Err(format!(
                    "{at}: '{}' overlaps edge.routes[{j}] '{}': the same method and pattern \
                     (parameter names aside) cannot have two requirements",
                    route.text, routes[j].text
                ));
            }
            routes.push(route);
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        Ok(Self { routes, unmatched })
    }

    /// What `method` on `path` (already [normalised](normalise)) needs. A `HEAD` reads what a
    /// `GET` reads, so `GET` routes match it too; a route naming `HEAD` beats a `GET` route
    /// of the same pattern.
    pub fn requirement(&self, method: &str, path: &str) -> &Requirement {
        // The segments of a usual path fit on the stack: no allocation per request.
        const INLINE: usize = 16;
        let mut inline = [""; INLINE];
        let mut n = 0;
        let mut spilled: Vec<&str> = Vec::new();
        for s in path.split('/').filter(|s| !s.is_empty()) {
            if n < INLINE {
                inline[n] = s;
                n += 1;
            } else {
                if spilled.is_empty() {
                    spilled.extend_from_slice(&inline);
                }
                spilled.push(s);
            }
        }
        let segments: &[&str] = if spilled.is_empty() {
            &inline[..n]
        } else {
            &spilled
        };
        let found = if method == "HEAD" {
            let reads = |r: &&Route| {
                matches!(r.method.as_deref(), None | Some("HEAD" | "GET"))
                    && r.matches_path(segments)
            };
            let first = self.routes.iter().find(reads);
            match first {
                Some(get) if get.method.as_deref() == Some("GET") => self
                    .routes
                    .iter()
                    .filter(|r| r.specificity() == get.specificity())
                    .find(|r| r.method.as_deref() == Some("HEAD") && r.matches_path(segments))
                    .or(first),
                other => other,
            }
        } else {
            self.routes.iter().find(|r| r.matches(method, segments))
        };
        found.map_or(&self.unmatched, |r| &r.requirement)
    }

    /// Every permission some route requires (checked against a catalogue at start).
    pub fn permissions(&self) -> impl Iterator<Item = &Permission> {
        self.routes.iter().flat_map(|r| match &r.requirement {
            Requirement::Token(p) => p.as_slice(),
            _ => &[],
        })
    }

    /// Number of configured routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is configured.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn parse_route(entry: &RouteConfig) -> Result<Route, String> {
    let text = entry.route.trim();
    let (method, pattern) = text
        .split_once(char::is_whitespace)
        .ok_or("a route is 'METHOD /path', e.g. 'GET /orders/{id}'")?;
    let method = match method {
        "*" => None,
        m if METHODS.contains(&m) => Some(m.to_owned()),
        m if METHODS.contains(&m.to_ascii_uppercase().as_str()) => Some(m.to_ascii_uppercase()),
        _ => {
            return Err(format!(
                "unknown method '{}': use one of {} or *",
                printable(method),
                METHODS.join(", ")
            ))
        }
    };
    let pattern = pattern.trim();
    if !pattern.starts_with('/') {
        return Err("the path pattern must start with '/'".into());
    }
    let raw: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut segments = Vec::with_capacity(raw.len());
    for (i, seg) in raw.iter().enumerate() {
        segments.push(match *seg {
            "**" if i + 1 == raw.len() => Segment::Rest,
            "**" => return Err("'**' may only be the last segment".into()),
            s if s.starts_with('{') && s.ends_with('}') && s.len() > 2 => {
                let name = &s[1..s.len() - 1];
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("parameter '{}' must be a plain name", printable(s)));
                }
                Segment::Param
            }
            s if s.contains(['{', '}', '*', '?', '#', '%']) || s == "." || s == ".." => {
                return Err(format!(
                    "segment '{}' is neither a literal, a {{name}} nor a final **",
                    printable(s)
                ))
            }
            s => Segment::Literal(s.to_owned()),
        });
    }
    let requirement = if entry.anonymous {
        if !entry.permissions.is_empty() {
            return Err("an anonymous route cannot also require permissions".into());
        }
        Requirement::Anonymous
    } else {
        let mut perms = Vec::with_capacity(entry.permissions.len());
        for (j, p) in entry.permissions.iter().enumerate() {
            let p = Permission::parse(p.trim())
                .map_err(|e| format!("permissions[{j}]: {}", e.message))?;
            if perms.contains(&p) {
                return Err(format!(
                    "permissions[{j}]: '{}' is listed twice",
                    p.as_str()
                ));
            }
            perms.push(p);
        }
        Requirement::Token(perms)
    };
    Ok(Route {
        method,
        segments,
        requirement,
        text: printable(text),
    })
}

/// Configuration text as it may be shown in an error: control characters replaced.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

/// The path of a request target (`/a/b?q`, or an absolute URI's path) as the route table sees
/// it: query and fragment dropped, escapes decoded except `%2F`, dot segments resolved, empty
/// segments dropped; always starting with `/`. `None` when it cannot be read (an escape that is
/// not hex, or bytes that do not decode to UTF-8): the caller refuses the request.
pub fn normalise(target: &str) -> Option<Cow<'_, str>> {
    let mut path = target.split(['?', '#']).next().unwrap_or("");
    if let Some(rest) = path
        .strip_prefix("http://")
        .or_else(|| path.strip_prefix("https://"))
    {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    if path
        .bytes()
        .any(|b| b == b'\\' || b == b';' || b.is_ascii_control())
    {
        return None;
    }
    if is_normal(path) {
        return Some(Cow::Borrowed(path));
    }
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let seg = decode(raw)?;
        match seg.as_str() {
            "" => {}
            "." | ".." => return None,
            _ => out.push(seg),
        }
    }
    let mut s = String::with_capacity(path.len() + 1);
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    Some(Cow::Owned(s))
}

/// Whether `path` is already what [`normalise`] makes of it (the common case, answered
/// without allocating): it starts with `/`, has no escape, no empty segment (but for `/`
/// itself) and no dot segment.
fn is_normal(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !path.contains('%') && rest.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// Decodes `%XX` escapes of one segment; `None` for an escape that is not two hex digits, or
/// one of `/`, `\`, `;` or a control character (each would read differently upstream).
fn decode(seg: &str) -> Option<String> {
    if !seg.contains('%') {
        return Some(seg.to_owned());
    }
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            let b = u8::from_str_radix(hex, 16).ok()?;
            if b == b'/' || b == b'\\' || b == b';' || b.is_ascii_control() {
                return None;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route(r: &str, perms: &[&str]) -> RouteConfig {
        RouteConfig {
            route: r.into(),
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            anonymous: false,
        }
    }

    fn needs(t: &RouteTable, m: &str, p: &str) -> Vec<String> {
        match t.requirement(m, &normalise(p).unwrap()) {
            Requirement::Token(p) => p.iter().map(|p| p.as_str().to_owned()).collect(),
            Requirement::Anonymous => vec!["<anonymous>".into()],
            Requirement::Deny => vec!["<deny>".into()],
        }
    }

    fn table_entries() -> Vec<RouteConfig> {
        let mut public = route("* /public/**", &[]);
        public.anonymous = true;
        vec![
            route("GET /orders/{id}", &["orders:read"]),
            route("GET /orders/export", &["orders:export"]),
            route("POST /carts/**", &["cart:write"]),
            route("* /orders/{id}", &["orders:write"]),
            route("DELETE /orders/{id}", &["orders:write", "orders:delete"]),
            route("GET /orders/**", &["orders:list"]),
            public,
        ]
    }

    fn table() -> RouteTable {
        RouteTable::build(&table_entries(), Requirement::Deny).unwrap()
    }

    #[test]
    fn the_most_specific_route_wins() {
        let t = table();
        assert_eq!(needs(&t, "GET", "/orders/42"), ["orders:read"]);
        assert_eq!(needs(&t, "GET", "/orders/export"), ["orders:export"]);
        assert_eq!(needs(&t, "PUT", "/orders/42"), ["orders:write"]);
        assert_eq!(
            needs(&t, "DELETE", "/orders/42"),
            ["orders:write", "orders:delete"]
        );
        assert_eq!(needs(&t, "GET", "/orders/42/lines"), ["orders:list"]);
        assert_eq!(needs(&t, "GET", "/orders"), ["orders:list"]);
        assert_eq!(needs(&t, "POST", "/carts/1/items/2"), ["cart:write"]);
        assert_eq!(needs(&t, "POST", "/carts"), ["cart:write"]);
        assert_eq!(needs(&t, "GET", "/carts/1"), ["<deny>"]);
        assert_eq!(needs(&t, "GET", "/public/logo.png"), ["<anonymous>"]);
        assert_eq!(needs(&t, "GET", "/"), ["<deny>"]);
        // HEAD is judged as GET unless a route names HEAD.
        assert_eq!(needs(&t, "HEAD", "/orders/export"), ["orders:export"]);
        assert_eq!(needs(&t, "HEAD", "/orders/42"), ["orders:read"]);
        let mut head = table_entries();
        head.push(route("HEAD /orders/{id}", &["orders:head"]));
        let t = RouteTable::build(&head, Requirement::Deny).unwrap();
        assert_eq!(needs(&t, "HEAD", "/orders/42"), ["orders:head"]);
        assert_eq!(needs(&t, "HEAD", "/orders/export"), ["orders:export"]);
        assert_eq!(needs(&t, "GET", "/orders/42"), ["orders:read"]);
    }

    #[test]
    fn paths_are_normalised_before_matching() {
        let t = table();
        assert_eq!(needs(&t, "GET", "/orders/42?x=/public/"), ["orders:read"]);
        assert_eq!(needs(&t, "GET", "//orders//42"), ["orders:read"]);
        assert_eq!(needs(&t, "GET", "/orders/%34%32"), ["orders:read"]);
        assert_eq!(needs(&t, "GET", "http://h:1/orders/1"), ["orders:read"]);
        assert!(matches!(
            normalise("/orders/1?x"),
            Some(Cow::Borrowed("/orders/1"))
        ));
        assert!(matches!(normalise("/"), Some(Cow::Borrowed("/"))));
        assert_eq!(normalise("").as_deref(), Some("/"));
        assert_eq!(normalise("/a/").as_deref(), Some("/a"));
        assert_eq!(normalise("/a%zz"), None);
        assert_eq!(normalise("/a%+1"), None);
    }

    #[test]
    fn paths_an_upstream_could_read_otherwise_are_refused() {
        for target in [
            "/orders/./42",
            "/public/../orders/1",
            "/../../etc",
            "/public/%2e%2e/orders/1",
            "/public/%2E./admin",
            "/files/..",
            "/orders/1%2F..%2F..%2Fadmin",
            "/orders/a%2fb",
            "/public/..;/admin",
            "/public/x;jsessionid=1",
            "/public\\..\\admin",
            "/orders/1%5C",
            "/orders/%00",
            "/orders/\u{7}",
            "/orders/%0a",
        ] {
            assert_eq!(normalise(target), None, "{target:?}");
        }
        assert_eq!(normalise("/a%ff"), None);
    }

    #[test]
    fn bad_tables_are_refused_with_the_entry_named() {
        let bad =
            |entries: &[RouteConfig]| RouteTable::build(entries, Requirement::Deny).unwrap_err();
        assert!(bad(&[route("/orders", &[])]).contains("edge.routes[0]"));
        assert!(bad(&[route("FETCH /orders", &[])]).contains("unknown method"));
        assert!(bad(&[route("GET orders", &[])]).contains("start with '/'"));
        assert!(bad(&[route("GET /a/**/b", &[])]).contains("last segment"));
        assert!(bad(&[route("GET /a*", &[])]).contains("neither"));
        assert!(bad(&[route("GET /a", &["Not A Permission"])]).contains("permissions[0]"));
        assert!(bad(&[route("GET /a", &["a:read", "a:read"])]).contains("twice"));
        let e = bad(&[
            route("GET /o/{id}", &["o:read"]),
            route("GET /o/{x}", &["o:write"]),
        ]);
        assert!(
            e.contains("edge.routes[1]") && e.contains("overlaps edge.routes[0]"),
            "{e}"
        );
        let mut anon = route("GET /a", &["a:read"]);
        anon.anonymous = true;
        assert!(bad(&[anon]).contains("anonymous"));
        // Different methods, or a literal against a parameter, are not overlaps.
        assert!(RouteTable::build(
            &[
                route("GET /o/{id}", &[]),
                route("* /o/{id}", &[]),
                route("GET /o/new", &[])
            ],
            Requirement::Deny
        )
        .is_ok());
        assert_eq!(normalise("get").as_deref(), Some("/get"));
        let lower = RouteTable::build(&[route("get /x", &[])], Requirement::Deny).unwrap();
        assert_eq!(needs(&lower, "GET", "/x"), Vec::<String>::new());
    }

    proptest! {
        #[test]
        fn normalising_never_panics_and_leaves_no_dot_segments(target in "\\PC{0,64}") {
            if let Some(n) = normalise(&target) {
                prop_assert!(n.starts_with('/'));
                prop_assert!(!n.contains("//"));
                prop_assert!(n.split('/').all(|s| s != "." && s != ".."));
                prop_assert!(n == "/" || !n.ends_with('/'));
            }
        }

        #[test]
        fn building_never_panics(route in "\\PC{0,40}", perm in "[a-z.:*]{0,12}") {
            let _ = RouteTable::build(&[RouteConfig { route, permissions: vec![perm], anonymous: false }], Requirement::Deny);
        }
    }
}
