//! Least privilege when delegating: a caller may create or change a role, token or user only
//! if what that object would hold is something the caller holds itself. Without this rule a
//! token allowed to create tokens could mint one with more rights than its own.

use crate::decision::CompiledToken;
use crate::permission::{any_grants, CatalogueEntry};
use crate::{Permission, PermissionPattern};

/// The first permission (or pattern) that `patterns` ∩ `narrowing` would grant and `caller`
/// does not hold, or `None` when the grant is within the caller's own.
///
/// Two checks. Over the catalogue: every existing permission the grant would hold, the caller
/// must hold. Beyond it: wildcards also reach permissions not (yet) in the catalogue, and the
/// decision matches any name; so the grant must be bounded by patterns the caller covers:
/// either all of the role's patterns, or all of the narrowing's.
pub fn first_escalation(
    caller: &CompiledToken,
    patterns: &[PermissionPattern],
    narrowing: Option<&[PermissionPattern]>,
    catalogue: &[CatalogueEntry],
) -> Option<String> {
    let granted =
        |p: &Permission| any_grants(patterns, p) && narrowing.is_none_or(|n| any_grants(n, p));
    if let Some(e) = catalogue
        .iter()
        .find(|e| granted(&e.permission) && !caller.grants(&e.permission))
    {
        return Some(e.permission.as_str().to_owned());
    }
    let held = |p: &PermissionPattern| covered_by(caller, p);
    if patterns.iter().all(held) || narrowing.is_some_and(|n| n.iter().all(held)) {
        return None;
    }
    patterns
        .iter()
        .find(|p| !held(p))
        .map(|p| p.as_str().to_owned())
}

/// Whether `caller` holds everything `p` could grant: its role covers it, and so does its
/// narrowing, if any.
fn covered_by(caller: &CompiledToken, p: &PermissionPattern) -> bool {
    let Some(role) = &caller.role else {
        return false;
    };
    role.permissions.iter().any(|c| c.covers(p))
        && caller
            .narrowing
            .as_ref()
            .is_none_or(|n| n.iter().any(|c| c.covers(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::CompiledRole;
    use crate::model::{Scope, TokenStatus, UserKind};
    use crate::permission::builtin_catalogue;
    use crate::{RoleId, TokenId, UserId, WorkspaceId};
    use rand_core::OsRng;

    fn pats(items: &[&str]) -> Vec<PermissionPattern> {
        items
            .iter()
            .map(|s| PermissionPattern::parse(s).unwrap())
            .collect()
    }

    fn caller(perms: &[&str]) -> CompiledToken {
        CompiledToken {
            token_id: TokenId::random(&mut OsRng),
            workspace_id: WorkspaceId::random(&mut OsRng),
            operator: false,
            name: "admin".into(),
            owner_id: UserId::random(&mut OsRng),
            owner_kind: UserKind::Service,
            owner_disabled: false,
            status: TokenStatus::Active,
            not_before: None,
            expires_at: None,
            metadata: serde_json::json!({}),
            role: Some(CompiledRole {
                id: RoleId::random(&mut OsRng),
                name: "r".into(),
                scope: Scope::Workspace,
                permissions: pats(perms),
            }),
            narrowing: None,
            effective: Vec::new(),
            internal_only: false,
            token_ips: Default::default(),
            role_ips: Default::default(),
            workspace_ips: Default::default(),
            internal_networks: Default::default(),
            rate_limit_per_minute: 150,
        }
    }

    fn catalogue() -> Vec<CatalogueEntry> {
        let mut c = builtin_catalogue();
        for p in ["cart:read", "cart:write"] {
            c.push(CatalogueEntry {
                permission: Permission::parse(p).unwrap(),
                description: String::new(),
                builtin: false,
            });
        }
        c
    }

    #[test]
    fn cannot_grant_more_than_held() {
        let c = caller(&["keyward.tokens:*", "cart:read"]);
        let cat = catalogue();
        assert_eq!(
            first_escalation(&c, &pats(&["cart:read"]), None, &cat),
            None
        );
        assert_eq!(
            first_escalation(&c, &pats(&["cart:*"]), None, &cat).as_deref(),
            Some("cart:write")
        );
        // Narrowing to what the caller holds makes it acceptable.
        let narrow = pats(&["cart:read"]);
        assert_eq!(
            first_escalation(&c, &pats(&["cart:*"]), Some(&narrow), &cat),
            None
        );
        assert_eq!(
            first_escalation(&c, &pats(&["keyward.*"]), None, &cat).as_deref(),
            Some("keyward.workspace:read")
        );
    }

    #[test]
    fn wildcards_reaching_beyond_the_catalogue_need_a_covering_grant() {
        let mut cat = builtin_catalogue();
        cat.push(CatalogueEntry {
            permission: Permission::parse("orders:read").unwrap(),
            description: String::new(),
            builtin: false,
        });
        let reader = caller(&["orders:read"]);
        // orders:* holds only orders:read today, but would grant orders:delete at verify.
        assert_eq!(
            first_escalation(&reader, &pats(&["orders:*"]), None, &cat).as_deref(),
            Some("orders:*")
        );
        let narrow = pats(&["orders:*"]);
        assert_eq!(
            first_escalation(&reader, &pats(&["*"]), Some(&narrow), &cat).as_deref(),
            Some("*")
        );
        let narrow = pats(&["orders:read"]);
        assert_eq!(
            first_escalation(&reader, &pats(&["*"]), Some(&narrow), &cat),
            None
        );
    }

    #[test]
    fn universal_patterns_need_the_same_pattern() {
        let cat = catalogue();
        let limited = caller(&["cart:*"]);
        assert_eq!(
            first_escalation(&limited, &pats(&["*"]), None, &cat).as_deref(),
            Some("*")
        );
        let full = caller(&["*", "keyward.*"]);
        assert_eq!(first_escalation(&full, &pats(&["*"]), None, &cat), None);
        assert_eq!(
            first_escalation(&full, &pats(&["*:read"]), None, &cat),
            None
        );
    }
}
