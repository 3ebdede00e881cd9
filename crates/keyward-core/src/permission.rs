//! Permissions (`resource:action`), wildcard patterns, and the per-workspace catalogue.
//!
//! A resource is one or more dot-separated segments (`orders`, `keyward.tokens`); an action is
//! one segment. A *pattern* may use `*` for the whole permission, for the action (`orders:*`),
//! or as the last resource segment (`billing.*:read`, `keyward.*`).
//!
//! The `keyward.` namespace (keyward's own admin API) is reserved: a pattern whose resource
//! starts with `*` never matches it. An integration token granted `*` can do everything in the
//! product and nothing to keyward itself; admin rights must be named (`keyward.*`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The reserved namespace of keyward's own permissions.
pub const RESERVED_NAMESPACE: &str = "keyward";
/// Longest accepted permission or pattern text.
pub const MAX_LEN: usize = 128;

/// A concrete permission such as `orders:read`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    text: String,
    colon: usize,
}

impl Permission {
    /// Parses `resource:action`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let (resource, action) = split(s)?;
        if resource.split('.').any(|seg| !valid_segment(seg)) || !valid_segment(action) {
            return Err(invalid(s));
        }
        Ok(Self {
            text: s.to_owned(),
            colon: resource.len(),
        })
    }

    /// The resource part (`orders`, `keyward.tokens`).
    pub fn resource(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The action part (`read`).
    pub fn action(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The full text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this permission belongs to keyward's own admin API.
    pub fn is_reserved(&self) -> bool {
        in_reserved_namespace(self.resource())
    }
}

/// A grant, possibly with wildcards: `*`, `orders:*`, `billing.*:read`, `keyward.*`, `cart:write`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionPattern {
    text: String,
    /// Resource segments before a trailing `*` (all of them when there is no `*`).
    resource: String,
    resource_wildcard: bool,
    /// `None` for any action.
    action: Option<String>,
}

impl PermissionPattern {
    /// Parses a pattern. `*` alone means `*:*`; `ns.*` alone means `ns.*:*`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() > MAX_LEN {
            return Err(invalid(s));
        }
        let (resource, action) = match s.split_once(':') {
            Some((r, a)) => (r, a),
            None if s == "*" || s.ends_with(".*") => (s, "*"),
            None => return Err(invalid(s)),
        };
        let action = match action {
            "*" => None,
            a if valid_segment(a) => Some(a.to_owned()),
            _ => return Err(invalid(s)),
        };
        let (fixed, wildcard) = if resource == "*" {
            ("", true)
        } else if let Some(head) = resource.strip_suffix(".*") {
            (head, true)
        } else {
            (resource, false)
        };
        if resource != "*" && fixed.split('.').any(|seg| !valid_segment(seg)) {
            return Err(invalid(s));
        }
        // One spelling per meaning, so `*` and `*:*` are the same pattern (and duplicates).
        let head = if wildcard && fixed.is_empty() {
            "*".to_owned()
        } else if wildcard {
            format!("{fixed}.*")
        } else {
            fixed.to_owned()
        };
        let text = match (&action, wildcard) {
            (None, true) => head,
            (None, false) => format!("{head}:*"),
            (Some(a), _) => format!("{head}:{a}"),
        };
        Ok(Self {
            text,
            resource: fixed.to_owned(),
            resource_wildcard: wildcard,
            action,
        })
    }

    /// Whether everything `other` could ever grant, this pattern grants too.
    pub fn covers(&self, other: &PermissionPattern) -> bool {
        let action_covered = match (&self.action, &other.action) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        if !action_covered {
            return false;
        }
        if !self.resource_wildcard {
            return !other.resource_wildcard && self.resource == other.resource;
        }
        if self.resource.is_empty() {
            // `*` spans every namespace but the reserved one, whatever `other` is.
            return (other.resource_wildcard && other.resource.is_empty())
                || !in_reserved_namespace(&other.resource);
        }
        let under = other.resource.len() > self.resource.len()
            && other.resource.starts_with(self.resource.as_str())
            && other.resource.as_bytes()[self.resource.len()] == b'.';
        under || (other.resource_wildcard && other.resource == self.resource)
    }

    /// The exact permission a pattern without wildcards stands for.
    pub fn as_exact(&self) -> Option<Permission> {
        if self.resource_wildcard || self.action.is_none() {
            return None;
        }
        Permission::parse(&self.text).ok()
    }

    /// Whether the pattern grants `p`.
    pub fn matches(&self, p: &Permission) -> bool {
        if let Some(action) = &self.action {
            if action != p.action() {
                return false;
            }
        }
        let resource = p.resource();
        if !self.resource_wildcard {
            return self.resource == resource;
        }
        if self.resource.is_empty() {
            // A leading `*` spans every namespace but the reserved one.
            return !in_reserved_namespace(resource);
        }
        resource.len() > self.resource.len()
            && resource.starts_with(self.resource.as_str())
            && resource.as_bytes()[self.resource.len()] == b'.'
    }

    /// Whether the pattern could only ever match catalogue-independent names (`*`, `*:read`).
    pub fn is_universal(&self) -> bool {
        self.resource_wildcard && self.resource.is_empty()
    }

    /// The full text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Whether any of `patterns` grants `p`.
pub fn any_grants(patterns: &[PermissionPattern], p: &Permission) -> bool {
    patterns.iter().any(|pat| pat.matches(p))
}

/// One entry of a workspace's permission catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogueEntry {
    /// The permission.
    pub permission: Permission,
    /// What it allows, shown in the dashboard's matrix.
    pub description: String,
    /// Built into keyward (the `keyward.*` admin permissions); cannot be changed or removed.
    #[serde(default)]
    pub builtin: bool,
}

/// keyward's own admin permissions, present in every workspace's catalogue.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "keyward.workspace:read",
        "Read the workspace and its settings",
    ),
    ("keyward.workspace:write", "Change the workspace's settings"),
    (
        "keyward.workspaces:create",
        "Create workspaces (operator workspace only)",
    ),
    (
        "keyward.workspaces:read",
        "List all workspaces (operator workspace only)",
    ),
    ("keyward.users:read", "List and read users"),
    (
        "keyward.users:write",
        "Create, change, disable and delete users",
    ),
    ("keyward.roles:read", "List and read roles"),
    ("keyward.roles:write", "Create, change and delete roles"),
    ("keyward.permissions:read", "Read the permission catalogue"),
    (
        "keyward.permissions:write",
        "Add, describe and remove catalogue permissions",
    ),
    (
        "keyward.tokens:read",
        "List and read tokens (never their secrets)",
    ),
    ("keyward.tokens:create", "Create tokens"),
    ("keyward.tokens:write", "Change and activate tokens"),
    ("keyward.tokens:revoke", "Revoke tokens"),
    ("keyward.tokens:delete", "Delete tokens"),
    ("keyward.audit:read", "Read and verify the audit trail"),
    (
        VERIFY_PERMISSION,
        "Call the verify API about other tokens (this workspace's; any workspace's from the operator workspace)",
    ),
    (
        "keyward.security:approve",
        "Approve or reject security changes of others",
    ),
    (
        "keyward.webhooks:read",
        "List and read webhook subscriptions and their deliveries",
    ),
    (
        "keyward.webhooks:write",
        "Create, change, delete webhook subscriptions and rotate their secrets",
    ),
];

/// The permission a caller of the verify API must hold.
pub const VERIFY_PERMISSION: &str = "keyward.verify:tokens";

/// [`VERIFY_PERMISSION`], parsed.
pub fn verify_permission() -> Permission {
    Permission {
        text: VERIFY_PERMISSION.to_owned(),
        colon: VERIFY_PERMISSION.len() - ":tokens".len(),
    }
}

/// The built-in catalogue entries.
pub fn builtin_catalogue() -> Vec<CatalogueEntry> {
    BUILTIN
        .iter()
        .filter_map(|(p, d)| {
            Permission::parse(p).ok().map(|permission| CatalogueEntry {
                permission,
                description: (*d).to_owned(),
                builtin: true,
            })
        })
        .collect()
}

/// Refuses a token narrowing entry that keeps nothing of its role (`PERMISSION_NOT_IN_ROLE`,
/// naming `field[i]`): each entry must match a catalogue permission the role grants, or the
/// token would silently hold less than it says.
pub fn check_within_role(
    narrowing: &[PermissionPattern],
    role: &[PermissionPattern],
    catalogue: &[CatalogueEntry],
    field: &str,
) -> Result<(), DomainError> {
    for (i, pat) in narrowing.iter().enumerate() {
        let kept = catalogue
            .iter()
            .any(|e| pat.matches(&e.permission) && role.iter().any(|r| r.matches(&e.permission)));
        if !kept {
            return Err(DomainError::field(
                "PERMISSION_NOT_IN_ROLE",
                format!("{field}[{i}]"),
                "this narrowing entry keeps nothing of the token's role: narrow only to \
                 permissions the role grants",
            ));
        }
    }
    Ok(())
}

/// Checks `patterns` against a catalogue so typos are refused: an exact permission must be in
/// the catalogue; a wildcard must match at least one entry, except `*` and `*:action`, which may
/// precede the permissions they will cover. Duplicates are refused too.
pub fn check_against_catalogue(
    patterns: &[PermissionPattern],
    catalogue: &[CatalogueEntry],
    field: &str,
) -> Result<(), DomainError> {
    for (i, pat) in patterns.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if patterns[..i].contains(pat) {
            return Err(DomainError::field(
                "DUPLICATE_PERMISSION",
                at,
                format!("permission '{}' is listed twice", pat.as_str()),
            ));
        }
        if pat.is_universal() {
            continue;
        }
        if !catalogue.iter().any(|e| pat.matches(&e.permission)) {
            return Err(DomainError::field(
                "UNKNOWN_PERMISSION",
                at,
                format!(
                    "'{}' matches no permission in this workspace's catalogue",
                    pat.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a list of pattern strings, naming the offending index on error.
pub fn parse_patterns(
    items: &[String],
    field: &str,
) -> Result<Vec<PermissionPattern>, DomainError> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            PermissionPattern::parse(s.trim()).map_err(|e| DomainError {
                field: Some(format!("{field}[{i}]")),
                ..e
            })
        })
        .collect()
}

fn split(s: &str) -> Result<(&str, &str), DomainError> {
    if s.len() > MAX_LEN {
        return Err(invalid(s));
    }
    s.split_once(':').ok_or_else(|| invalid(s))
}

fn valid_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg.len() <= 64
        && seg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn in_reserved_namespace(resource: &str) -> bool {
    resource == RESERVED_NAMESPACE
        || (resource.starts_with(RESERVED_NAMESPACE)
            && resource.as_bytes().get(RESERVED_NAMESPACE.len()) == Some(&b'.'))
}

/// The refusal of a permission or pattern. It never echoes the input (the field names it):
/// a secret pasted into a permission list must not come back in the answer.
fn invalid(_: &str) -> DomainError {
    DomainError::rule(
        "INVALID_PERMISSION",
        "not a permission: expected resource:action in lower case (letters, digits, '_', '-', \
         dotted resources), with optional '*' wildcards",
    )
}

macro_rules! text_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.text)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
text_serde!(Permission);
text_serde!(PermissionPattern);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }
    fn pat(s: &str) -> PermissionPattern {
        PermissionPattern::parse(s).unwrap()
    }

    #[test]
    fn parses_permissions() {
        assert_eq!(p("orders:read").resource(), "orders");
        assert_eq!(p("keyward.tokens:create").action(), "create");
        for bad in [
            "",
            "orders",
            "orders:",
            ":read",
            "Orders:read",
            "a..b:read",
            "a:b:c",
            "a b:c",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_as_documented() {
        assert!(pat("*").matches(&p("orders:read")));
        assert!(pat("orders:*").matches(&p("orders:write")));
        assert!(!pat("orders:*").matches(&p("orders.items:write")));
        assert!(pat("billing.*:read").matches(&p("billing.invoices:read")));
        assert!(!pat("billing.*:read").matches(&p("billing:read")));
        assert!(!pat("billing.*:read").matches(&p("billingx.invoices:read")));
        assert!(pat("*:read").matches(&p("orders:read")));
        assert!(!pat("*:read").matches(&p("orders:write")));
        assert!(pat("cart:write").matches(&p("cart:write")));
        assert!(!pat("cart:write").matches(&p("cart:read")));
    }

    #[test]
    fn reserved_namespace_needs_an_explicit_grant() {
        assert!(!pat("*").matches(&p("keyward.tokens:create")));
        assert!(!pat("*:read").matches(&p("keyward.tokens:read")));
        assert!(pat("keyward.*").matches(&p("keyward.tokens:create")));
        assert!(pat("keyward.tokens:*").matches(&p("keyward.tokens:revoke")));
        assert!(pat("*").matches(&p("keywardish:read")));
    }

    #[test]
    fn covering_is_containment() {
        assert!(pat("*").covers(&pat("orders:*")));
        assert!(pat("*").covers(&pat("*:read")));
        assert!(!pat("*").covers(&pat("keyward.*")));
        assert!(!pat("*:read").covers(&pat("*")));
        assert!(pat("orders:*").covers(&pat("orders:read")));
        assert!(!pat("orders:read").covers(&pat("orders:*")));
        assert!(pat("billing.*").covers(&pat("billing.invoices:read")));
        assert!(pat("billing.*").covers(&pat("billing.eu.*:read")));
        assert!(!pat("billing.*").covers(&pat("billing:read")));
        assert!(!pat("billing.*:read").covers(&pat("billing.*")));
        assert!(pat("keyward.*").covers(&pat("keyward.tokens:create")));
    }

    #[test]
    fn patterns_have_one_spelling() {
        assert_eq!(pat("*:*"), pat("*"));
        assert_eq!(pat("billing.*:*"), pat("billing.*"));
        assert_eq!(pat("orders:*").as_str(), "orders:*");
        assert_eq!(pat("*:read").as_str(), "*:read");
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            ".*",
            ".*:read",
            "**",
            "orders:**",
            "*.orders:read",
            "or*ders:read",
            "orders",
            "a.*.b:read",
        ] {
            assert!(PermissionPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn catalogue_check_names_the_offending_entry() {
        let mut cat = builtin_catalogue();
        cat.push(CatalogueEntry {
            permission: p("cart:write"),
            description: String::new(),
            builtin: false,
        });
        let ok = [pat("cart:write"), pat("*"), pat("keyward.tokens:*")];
        assert!(check_against_catalogue(&ok, &cat, "permissions").is_ok());
        let typo = [pat("cart:write"), pat("cart:wrte")];
        let err = check_against_catalogue(&typo, &cat, "permissions").unwrap_err();
        assert_eq!(err.code, "UNKNOWN_PERMISSION");
        assert_eq!(err.field.as_deref(), Some("permissions[1]"));
        let dup = [pat("cart:write"), pat("cart:write")];
        let err = check_against_catalogue(&dup, &cat, "permissions").unwrap_err();
        assert_eq!(err.code, "DUPLICATE_PERMISSION");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const SEGMENT: &str = "[a-z0-9_-]{1,8}";

        fn permission_text() -> impl Strategy<Value = String> {
            (proptest::collection::vec(SEGMENT, 1..4), SEGMENT)
                .prop_map(|(resource, action)| format!("{}:{action}", resource.join(".")))
        }

        fn pattern_text() -> impl Strategy<Value = String> {
            prop_oneof![
                permission_text(),
                Just("*".to_owned()),
                Just("*:*".to_owned()),
                proptest::collection::vec(SEGMENT, 1..4).prop_map(|r| format!("{}:*", r.join("."))),
                proptest::collection::vec(SEGMENT, 1..4).prop_map(|r| format!("{}.*", r.join("."))),
                (proptest::collection::vec(SEGMENT, 1..3), SEGMENT)
                    .prop_map(|(r, a)| format!("{}.*:{a}", r.join("."))),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsing_never_panics(s in "\\PC{0,140}", near in "[a-z.*:_-]{0,30}") {
                let _ = Permission::parse(&s);
                let _ = PermissionPattern::parse(&s);
                let _ = Permission::parse(&near);
                let _ = PermissionPattern::parse(&near);
            }

            #[test]
            fn permissions_round_trip(text in permission_text()) {
                let p = Permission::parse(&text).unwrap();
                prop_assert_eq!(p.to_string(), text.clone());
                prop_assert_eq!(Permission::parse(&p.to_string()).unwrap(), p.clone());
                // A permission read as a pattern matches exactly itself.
                let pattern = PermissionPattern::parse(&text).unwrap();
                prop_assert!(pattern.matches(&p));
            }

            #[test]
            fn patterns_round_trip_through_their_display(text in pattern_text()) {
                let p = PermissionPattern::parse(&text).unwrap();
                let shown = p.to_string();
                let again = PermissionPattern::parse(&shown).unwrap();
                prop_assert_eq!(&again, &p);
                prop_assert_eq!(again.to_string(), shown);
                prop_assert!(p.covers(&again));
            }
        }
    }
}
