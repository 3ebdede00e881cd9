//! Least privilege when delegating: a caller may create or change a role, token or user only
//! if what that object would hold is something the caller holds itself. Without this rule a
//! token allowed to create tokens could mint one with more rights than its own.
//!
//! Two halves: permissions ([`first_escalation`]: what the object may do) and restrictions
//! ([`first_loosening`]: from where, how often and until when). A token limited to an
//! allowlist, to internal networks, to a low rate or to an expiry may create or change only
//! tokens (and roles) at least as limited; otherwise it could mint an unrestricted sibling or
//! PATCH its own limits away.

use chrono::{DateTime, Utc};

use crate::decision::CompiledToken;
use crate::ip::IpAllowlist;
use crate::model::{effective_rate_limit, RateLimitPer, Role, Token, WorkspaceSettings};
use crate::permission::{any_grants, CatalogueEntry};
use crate::{Permission, PermissionPattern};

/// A restriction an object would not have although its creator has it. Named after the
/// request field that would tighten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Usable from addresses the caller is not.
    IpAllowlist,
    /// Usable outside the internal networks, while the caller is internal-only.
    InternalOnly,
    /// A higher rate limit than the caller's.
    RateLimit,
    /// A budget of its own (`per = "token"`) while the caller's limit is shared per user: the
    /// token would escape the shared budget.
    RateLimitPer,
    /// A later expiry than the caller's (or none).
    ExpiresAt,
}

impl Restriction {
    /// The request field, as a refusal names it.
    pub fn field(&self) -> &'static str {
        match self {
            Restriction::IpAllowlist => "ip_allowlist",
            Restriction::InternalOnly => "internal_only",
            Restriction::RateLimit => "rate_limit_per_minute",
            Restriction::RateLimitPer => "rate_limit_per",
            Restriction::ExpiresAt => "expires_at",
        }
    }

    /// Why it is refused, without any value.
    pub fn message(&self) -> &'static str {
        match self {
            Restriction::IpAllowlist => {
                "this would allow source addresses the calling token is not allowed itself \
                 (its own, its role's and the workspace's allowlists count)"
            }
            Restriction::InternalOnly => {
                "the calling token is internal-only, so the token must be internal-only too"
            }
            Restriction::RateLimit => {
                "this would allow a higher rate limit than the calling token's own"
            }
            Restriction::RateLimitPer => {
                "the calling token's rate limit is shared per user, so this limit must be \
                 per user too (a budget per token would escape the shared one)"
            }
            Restriction::ExpiresAt => {
                "this would expire later than the calling token itself (or never)"
            }
        }
    }
}

/// How restricted a token is, in effective terms: what its own settings, its role's and its
/// workspace's add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Usable only from internal networks.
    pub internal_only: bool,
    /// The addresses it may be used from: the intersection of every allowlist that is set;
    /// `None` when none is (anywhere).
    pub allowed_ips: Option<IpAllowlist>,
    /// Requests per minute: its own, else its role's, else the workspace default. (keyward has
    /// no "unlimited": a token's unset limit inherits.)
    pub rate_limit_per_minute: u32,
    /// What that limit counts. `user` is the tighter: the budget is shared with the owner's
    /// other tokens.
    pub rate_limit_per: RateLimitPer,
    /// When it stops working; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Limits {
    /// The limits of an authenticated caller.
    pub fn of_caller(caller: &CompiledToken) -> Self {
        Self {
            internal_only: caller.internal_only,
            allowed_ips: effective_ips(&[
                &caller.token_ips,
                &caller.role_ips,
                &caller.workspace_ips,
            ]),
            rate_limit_per_minute: caller.rate_limit_per_minute,
            rate_limit_per: caller.rate_limit_per,
            expires_at: caller.expires_at,
        }
    }

    /// The limits `token` would have acting with `role` (its own or its owner's) in a
    /// workspace with `settings`.
    pub fn of_token(token: &Token, role: Option<&Role>, settings: &WorkspaceSettings) -> Self {
        let role_ips = role.map(|r| &r.ip_allowlist);
        let mut lists = vec![&token.ip_allowlist, &settings.ip_allowlist];
        lists.extend(role_ips);
        let (rate_limit_per_minute, rate_limit_per) = effective_rate_limit(token, role, settings);
        Self {
            internal_only: token.internal_only,
            allowed_ips: effective_ips(&lists),
            rate_limit_per_minute,
            rate_limit_per,
            expires_at: token.expires_at,
        }
    }
}

/// The addresses every set list allows (an empty list restricts nothing); `None` when no list
/// is set. `Some` of an empty list allows nowhere.
pub fn effective_ips(lists: &[&IpAllowlist]) -> Option<IpAllowlist> {
    lists
        .iter()
        .filter(|l| !l.is_empty())
        .fold(None, |acc: Option<IpAllowlist>, l| match acc {
            None => Some((*l).clone()),
            Some(a) => Some(a.intersection(l)),
        })
}

/// The first restriction of `caller` that a token with limits `new` would not have, or `None`
/// when the token is at least as restricted: internal-only if the caller is, allowed only from
/// addresses the caller is allowed from, a rate limit no higher (and per user if the caller's
/// is), an expiry no later.
pub fn first_loosening(caller: &Limits, new: &Limits) -> Option<Restriction> {
    if caller.internal_only && !new.internal_only {
        return Some(Restriction::InternalOnly);
    }
    if !ips_within(caller.allowed_ips.as_ref(), new.allowed_ips.as_ref()) {
        return Some(Restriction::IpAllowlist);
    }
    if let Some(r) = rate_loosening(caller, (new.rate_limit_per_minute, new.rate_limit_per)) {
        return Some(r);
    }
    (!expiry_within(caller.expires_at, new.expires_at)).then_some(Restriction::ExpiresAt)
}

/// A limit `(rate, per)` looser than the caller's: higher, or a budget per token where the
/// caller's is shared per user.
fn rate_loosening(caller: &Limits, (rate, per): (u32, RateLimitPer)) -> Option<Restriction> {
    if rate > caller.rate_limit_per_minute {
        return Some(Restriction::RateLimit);
    }
    (caller.rate_limit_per == RateLimitPer::User && per == RateLimitPer::Token)
        .then_some(Restriction::RateLimitPer)
}

/// The first restriction of `caller` that tokens acting with `role` would not get from it: the
/// role's allowlist (with the workspace's) must allow only addresses the caller is allowed
/// from, and its rate limit (else the workspace default) must be no higher, and per user if the
/// caller's is. Roles carry no
/// expiry or internal-only flag: those stay the business of each token.
pub fn first_role_loosening(
    caller: &Limits,
    role: &Role,
    settings: &WorkspaceSettings,
) -> Option<Restriction> {
    let allowed = effective_ips(&[&role.ip_allowlist, &settings.ip_allowlist]);
    if !ips_within(caller.allowed_ips.as_ref(), allowed.as_ref()) {
        return Some(Restriction::IpAllowlist);
    }
    let limit = role.rate_limit().unwrap_or(settings.default_rate_limit());
    rate_loosening(caller, limit)
}

/// Whether `new` allows only addresses `caller` allows (`None`: anywhere).
fn ips_within(caller: Option<&IpAllowlist>, new: Option<&IpAllowlist>) -> bool {
    match (caller, new) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(c), Some(n)) => n.is_subset_of(c),
    }
}

/// Whether `new` expires no later than `caller` (`None`: never).
fn expiry_within(caller: Option<DateTime<Utc>>, new: Option<DateTime<Utc>>) -> bool {
    match (caller, new) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(c), Some(n)) => n <= c,
    }
}

/// What a principal holds, as the escalation check reads it: a token (its role ∩ its
/// narrowing) or a person (their `human` role's patterns, as a slice). One check for both, so
/// the dashboard cannot hand out what the admin API would refuse.
pub trait Grants {
    /// Whether the holder is granted `p`.
    fn grants(&self, p: &Permission) -> bool;
    /// Whether the holder holds everything `p` could grant, beyond the catalogue too.
    fn covers(&self, p: &PermissionPattern) -> bool;
}

impl Grants for CompiledToken {
    fn grants(&self, p: &Permission) -> bool {
        CompiledToken::grants(self, p)
    }

    /// Its role covers `p`, and so does its narrowing, if any.
    fn covers(&self, p: &PermissionPattern) -> bool {
        let Some(role) = &self.role else {
            return false;
        };
        role.permissions.iter().any(|c| c.covers(p))
            && self
                .narrowing
                .as_ref()
                .is_none_or(|n| n.iter().any(|c| c.covers(p)))
    }
}

/// A role's patterns held without a narrowing (a person's grants).
impl Grants for [PermissionPattern] {
    fn grants(&self, p: &Permission) -> bool {
        any_grants(self, p)
    }

    fn covers(&self, p: &PermissionPattern) -> bool {
        self.iter().any(|c| c.covers(p))
    }
}

/// The first permission (or pattern) that `patterns` ∩ `narrowing` would grant and `caller`
/// does not hold, or `None` when the grant is within the caller's own.
///
/// Two checks. Over the catalogue: every existing permission the grant would hold, the caller
/// must hold. Beyond it: wildcards also reach permissions not (yet) in the catalogue, and the
/// decision matches any name; so the grant must be bounded by patterns the caller covers:
/// either all of the role's patterns, or all of the narrowing's.
pub fn first_escalation<G: Grants + ?Sized>(
    caller: &G,
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
    let held = |p: &PermissionPattern| caller.covers(p);
    if patterns.iter().all(held) || narrowing.is_some_and(|n| n.iter().all(held)) {
        return None;
    }
    patterns
        .iter()
        .find(|p| !held(p))
        .map(|p| p.as_str().to_owned())
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
            metadata: "{}".into(),
            role: Some(std::sync::Arc::new(CompiledRole {
                id: RoleId::random(&mut OsRng),
                name: "r".into(),
                scope: Scope::Workspace,
                permissions: pats(perms),
            })),
            narrowing: None,
            effective: std::sync::Arc::from([]),
            internal_only: false,
            request_log: false,
            token_ips: Default::default(),
            role_ips: Default::default(),
            workspace_ips: Default::default(),
            internal_networks: Default::default(),
            rate_limit_per_minute: 150,
            rate_limit_per: RateLimitPer::Token,
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

    fn ips(s: &str) -> IpAllowlist {
        IpAllowlist::parse_input(s, "ip_allowlist").unwrap()
    }

    fn limits(allowed: Option<&str>, rate: u32, expires_in_days: Option<i64>) -> Limits {
        Limits {
            internal_only: false,
            allowed_ips: allowed.map(ips),
            rate_limit_per_minute: rate,
            rate_limit_per: RateLimitPer::Token,
            expires_at: expires_in_days.map(|d| at() + chrono::Duration::days(d)),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    #[test]
    fn caller_limits_intersect_its_three_lists() {
        let mut c = caller(&["*"]);
        assert_eq!(Limits::of_caller(&c).allowed_ips, None);
        c.token_ips = ips("10.0.0.0/8");
        c.role_ips = ips("10.1.0.0/16, 192.168.0.0/16");
        c.workspace_ips = ips("10.0.0.0/8, 192.168.1.0/24");
        c.rate_limit_per_minute = 30;
        let l = Limits::of_caller(&c);
        assert_eq!(l.allowed_ips.unwrap().entries(), ["10.1.0.0/16"]);
        assert_eq!(l.rate_limit_per_minute, 30);
        // Lists that do not overlap allow nowhere, which is not "anywhere".
        c.token_ips = ips("172.16.0.0/12");
        assert!(Limits::of_caller(&c).allowed_ips.unwrap().is_empty());
    }

    #[test]
    fn ip_allowlists_must_be_subsets() {
        let caller = limits(Some("10.0.0.0/8"), 150, None);
        let cases = [
            (None, Some(Restriction::IpAllowlist)),
            (Some("10.1.0.0/16"), None),
            (Some("10.0.0.0/8"), None),
            (Some("10.0.0.0/7"), Some(Restriction::IpAllowlist)),
            (
                Some("10.0.0.1, 192.168.0.1"),
                Some(Restriction::IpAllowlist),
            ),
            (Some(""), None),
        ];
        for (new, want) in cases {
            let new = limits(new, 150, None);
            assert_eq!(first_loosening(&caller, &new), want, "{new:?}");
        }
        // An unrestricted caller may hand out any list, or none.
        let free = limits(None, 150, None);
        assert_eq!(first_loosening(&free, &limits(None, 150, None)), None);
        assert_eq!(first_loosening(&free, &limits(Some("::/0"), 1, None)), None);
    }

    #[test]
    fn internal_only_rate_and_expiry() {
        let mut internal = limits(None, 150, None);
        internal.internal_only = true;
        let mut new = limits(None, 150, None);
        assert_eq!(
            first_loosening(&internal, &new),
            Some(Restriction::InternalOnly)
        );
        new.internal_only = true;
        assert_eq!(first_loosening(&internal, &new), None);
        // A non-internal caller may create internal-only tokens: they are narrower.
        assert_eq!(first_loosening(&limits(None, 150, None), &new), None);

        let slow = limits(None, 10, None);
        assert_eq!(first_loosening(&slow, &limits(None, 10, None)), None);
        assert_eq!(
            first_loosening(&slow, &limits(None, 11, None)),
            Some(Restriction::RateLimit)
        );

        let brief = limits(None, 150, Some(7));
        assert_eq!(first_loosening(&brief, &limits(None, 150, Some(7))), None);
        assert_eq!(first_loosening(&brief, &limits(None, 150, Some(1))), None);
        assert_eq!(
            first_loosening(&brief, &limits(None, 150, Some(8))),
            Some(Restriction::ExpiresAt)
        );
        assert_eq!(
            first_loosening(&brief, &limits(None, 150, None)),
            Some(Restriction::ExpiresAt),
            "no expiry is later than any"
        );
        assert_eq!(first_loosening(&limits(None, 150, None), &brief), None);
        assert_eq!(Restriction::RateLimit.field(), "rate_limit_per_minute");
    }

    #[test]
    fn token_limits_inherit_from_role_and_workspace() {
        let ws = WorkspaceSettings {
            ip_allowlist: ips("10.0.0.0/8"),
            default_rate_limit_per_minute: 100,
            ..WorkspaceSettings::default()
        };
        let role = Role {
            id: RoleId::random(&mut OsRng),
            workspace_id: WorkspaceId::random(&mut OsRng),
            name: "r".into(),
            description: String::new(),
            kind: crate::model::RoleKind::Api,
            scope: Scope::Workspace,
            permissions: vec![],
            ip_allowlist: ips("10.2.0.0/16, 192.168.0.0/16"),
            rate_limit_per_minute: Some(40),
            rate_limit_per: RateLimitPer::Token,
            created_at: at(),
            updated_at: at(),
        };
        let mut token = Token {
            id: TokenId::random(&mut OsRng),
            workspace_id: role.workspace_id,
            owner_id: UserId::random(&mut OsRng),
            role_id: None,
            permissions: None,
            name: "t".into(),
            metadata: serde_json::json!({}),
            status: TokenStatus::Active,
            hash: crate::TokenHasher::new(None)
                .hash(&crate::TokenSecret::generate("kw", &mut OsRng)),
            start: String::new(),
            not_before: None,
            expires_at: None,
            ip_allowlist: IpAllowlist::default(),
            internal_only: false,
            request_log: false,
            rate_limit_per_minute: None,
            rate_limit_per: RateLimitPer::Token,
            created_at: at(),
            updated_at: at(),
            revoked_at: None,
            family_id: None,
            rotated_from: None,
            created_by: None,
        };
        let l = Limits::of_token(&token, Some(&role), &ws);
        assert_eq!(l.allowed_ips.unwrap().entries(), ["10.2.0.0/16"]);
        assert_eq!(l.rate_limit_per_minute, 40);
        let l = Limits::of_token(&token, None, &ws);
        assert_eq!(l.allowed_ips.unwrap().entries(), ["10.0.0.0/8"]);
        assert_eq!(l.rate_limit_per_minute, 100);
        token.rate_limit_per_minute = Some(5);
        token.ip_allowlist = ips("10.2.3.4");
        let l = Limits::of_token(&token, Some(&role), &ws);
        assert_eq!(l.allowed_ips.unwrap().entries(), ["10.2.3.4/32"]);
        assert_eq!(l.rate_limit_per_minute, 5);

        // Roles: their list with the workspace's, their limit else the default.
        let caller = limits(Some("10.2.0.0/16"), 50, Some(1));
        assert_eq!(first_role_loosening(&caller, &role, &ws), None);
        let open = WorkspaceSettings::default();
        assert_eq!(
            first_role_loosening(&caller, &role, &open),
            Some(Restriction::IpAllowlist)
        );
        let mut fast = role.clone();
        fast.rate_limit_per_minute = None;
        assert_eq!(
            first_role_loosening(&caller, &fast, &ws),
            Some(Restriction::RateLimit)
        );

        // What a limit counts comes with it, from the level that sets it.
        let mut shared = role.clone();
        shared.rate_limit_per = RateLimitPer::User;
        token.rate_limit_per_minute = None;
        let l = Limits::of_token(&token, Some(&shared), &ws);
        assert_eq!(
            (l.rate_limit_per_minute, l.rate_limit_per),
            (40, RateLimitPer::User)
        );
        token.rate_limit_per_minute = Some(5);
        let l = Limits::of_token(&token, Some(&shared), &ws);
        assert_eq!(
            (l.rate_limit_per_minute, l.rate_limit_per),
            (5, RateLimitPer::Token)
        );
        let per_user_ws = WorkspaceSettings {
            default_rate_limit_per: RateLimitPer::User,
            ..ws.clone()
        };
        token.rate_limit_per_minute = None;
        let l = Limits::of_token(&token, Some(&role), &per_user_ws);
        assert_eq!(
            l.rate_limit_per,
            RateLimitPer::Token,
            "the role's limit is per token"
        );
        let l = Limits::of_token(&token, None, &per_user_ws);
        assert_eq!(
            (l.rate_limit_per_minute, l.rate_limit_per),
            (100, RateLimitPer::User)
        );
    }

    #[test]
    fn a_per_user_caller_hands_out_only_per_user_budgets() {
        let mut shared = limits(None, 150, None);
        shared.rate_limit_per = RateLimitPer::User;
        let mut new = limits(None, 150, None);
        assert_eq!(
            first_loosening(&shared, &new),
            Some(Restriction::RateLimitPer),
            "a budget of its own escapes the shared one"
        );
        new.rate_limit_per_minute = 10;
        assert_eq!(
            first_loosening(&shared, &new),
            Some(Restriction::RateLimitPer)
        );
        new.rate_limit_per = RateLimitPer::User;
        assert_eq!(first_loosening(&shared, &new), None);
        new.rate_limit_per_minute = 151;
        assert_eq!(first_loosening(&shared, &new), Some(Restriction::RateLimit));
        // A per-token caller may hand out per-user budgets: they are tighter.
        let own = limits(None, 150, None);
        assert_eq!(first_loosening(&own, &shared), None);
        assert_eq!(Restriction::RateLimitPer.field(), "rate_limit_per");
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

    #[test]
    fn a_persons_patterns_are_checked_like_a_tokens_role_without_narrowing() {
        let cat = catalogue();
        let person = pats(&["keyward.tokens:*", "cart:read"]);
        let token = caller(&["keyward.tokens:*", "cart:read"]);
        for grant in [&["cart:read"][..], &["cart:*"], &["keyward.*"], &["*"]] {
            assert_eq!(
                first_escalation(person.as_slice(), &pats(grant), None, &cat),
                first_escalation(&token, &pats(grant), None, &cat),
                "{grant:?}"
            );
        }
        let none: &[PermissionPattern] = &[];
        assert_eq!(
            first_escalation(none, &pats(&["cart:read"]), None, &cat).as_deref(),
            Some("cart:read")
        );
    }
}
