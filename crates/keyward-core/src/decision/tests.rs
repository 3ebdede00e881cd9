use chrono::{Duration, TimeZone};
use rand_core::OsRng;

use super::*;
use crate::model::Workspace;
use crate::permission::builtin_catalogue;
use crate::{TokenHasher, TokenSecret};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn pats(items: &[&str]) -> Vec<PermissionPattern> {
    items
        .iter()
        .map(|s| PermissionPattern::parse(s).unwrap())
        .collect()
}

fn perm(s: &str) -> Permission {
    Permission::parse(s).unwrap()
}

struct Fixture {
    workspace: Workspace,
    token: Token,
    owner: User,
    role: Role,
    catalogue: Vec<CatalogueEntry>,
}

fn fixture() -> Fixture {
    let ws = WorkspaceId::random(&mut OsRng);
    let secret = TokenSecret::generate("kw", &mut OsRng);
    let role = Role {
        id: RoleId::random(&mut OsRng),
        workspace_id: ws,
        name: "Cart Editor".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: pats(&["cart:*", "orders:read"]),
        ip_allowlist: IpAllowlist::default(),
        rate_limit_per_minute: None,
        rate_limit_per: RateLimitPer::Token,
        created_at: t0(),
        updated_at: t0(),
    };
    let owner = User {
        id: UserId::random(&mut OsRng),
        workspace_id: ws,
        kind: UserKind::Service,
        name: "erp".into(),
        email: None,
        role_id: Some(role.id),
        disabled: false,
        created_at: t0(),
        updated_at: t0(),
    };
    let token = Token {
        id: TokenId::random(&mut OsRng),
        workspace_id: ws,
        owner_id: owner.id,
        role_id: None,
        permissions: None,
        name: "erp sync".into(),
        metadata: serde_json::json!({"team": "ops"}),
        status: TokenStatus::Active,
        hash: TokenHasher::default().hash(&secret),
        start: secret.display_start(),
        not_before: None,
        expires_at: None,
        ip_allowlist: IpAllowlist::default(),
        internal_only: false,
        request_log: false,
        rate_limit_per_minute: None,
        rate_limit_per: RateLimitPer::Token,
        created_at: t0(),
        updated_at: t0(),
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: None,
    };
    let mut catalogue = builtin_catalogue();
    for p in ["cart:read", "cart:write", "orders:read", "orders:write"] {
        catalogue.push(CatalogueEntry {
            permission: perm(p),
            description: String::new(),
            builtin: false,
        });
    }
    let workspace = Workspace {
        id: ws,
        name: "Acme".into(),
        operator: false,
        settings: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    };
    Fixture {
        workspace,
        token,
        owner,
        role,
        catalogue,
    }
}

impl Fixture {
    fn compile(&self) -> CompiledToken {
        CompiledToken::compile(
            &self.token,
            &self.workspace,
            &self.owner,
            Some(&self.role),
            &self.catalogue,
        )
    }
}

fn run(c: &CompiledToken, now: DateTime<Utc>, required: &[&str]) -> Code {
    run_from(c, now, required, Some(ip("203.0.113.9")))
}

fn run_from(
    c: &CompiledToken,
    now: DateTime<Utc>,
    required: &[&str],
    from: Option<IpAddr>,
) -> Code {
    let required: Vec<Permission> = required.iter().map(|s| perm(s)).collect();
    let server_internal = IpAllowlist::parse_input("10.99.0.0/16", "internal").unwrap();
    decide(
        c,
        &DecisionRequest {
            now,
            required: &required,
            ip: from,
            server_internal: &server_internal,
        },
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn list(s: &str) -> IpAllowlist {
    IpAllowlist::parse_input(s, "list").unwrap()
}

#[test]
fn valid_token_gets_effective_permissions() {
    let f = fixture();
    let c = f.compile();
    assert_eq!(run(&c, t0(), &["cart:write", "orders:read"]), Code::Valid);
    let shown: Vec<&str> = c.effective.iter().map(|p| p.as_str()).collect();
    assert_eq!(shown, vec!["cart:read", "cart:write", "orders:read"]);
    assert_eq!(c.scope(), Scope::Workspace);
}

#[test]
fn each_failure_has_its_own_code() {
    let mut f = fixture();
    f.token.status = TokenStatus::Pending;
    assert_eq!(run(&f.compile(), t0(), &[]), Code::Pending);
    f.token.status = TokenStatus::Revoked;
    assert_eq!(run(&f.compile(), t0(), &[]), Code::Revoked);
    f.token.status = TokenStatus::Active;
    f.owner.disabled = true;
    assert_eq!(run(&f.compile(), t0(), &[]), Code::OwnerDisabled);
    f.owner.disabled = false;
    f.token.expires_at = Some(t0());
    assert_eq!(run(&f.compile(), t0(), &[]), Code::Expired);
    assert_eq!(
        run(&f.compile(), t0() - Duration::seconds(1), &[]),
        Code::Valid
    );
    f.token.expires_at = None;
    f.token.not_before = Some(t0() + Duration::minutes(5));
    assert_eq!(run(&f.compile(), t0(), &[]), Code::NotYetValid);
    assert_eq!(
        run(&f.compile(), t0() + Duration::minutes(5), &[]),
        Code::Valid
    );
    f.token.not_before = None;
    assert_eq!(
        run(&f.compile(), t0(), &["orders:write"]),
        Code::InsufficientPermissions
    );
}

#[test]
fn the_first_failure_decides() {
    let mut f = fixture();
    f.token.status = TokenStatus::Revoked;
    f.token.expires_at = Some(t0() - Duration::days(1));
    assert_eq!(run(&f.compile(), t0(), &["orders:write"]), Code::Revoked);
}

#[test]
fn narrowing_intersects_with_the_role() {
    let mut f = fixture();
    f.token.permissions = Some(pats(&["cart:write", "orders:write"]));
    let c = f.compile();
    assert_eq!(run(&c, t0(), &["cart:write"]), Code::Valid);
    // Narrowing names orders:write, but the role does not grant it.
    assert_eq!(
        run(&c, t0(), &["orders:write"]),
        Code::InsufficientPermissions
    );
    // The role grants cart:read, but the narrowing does not.
    assert_eq!(run(&c, t0(), &["cart:read"]), Code::InsufficientPermissions);
    let shown: Vec<&str> = c.effective.iter().map(|p| p.as_str()).collect();
    assert_eq!(shown, vec!["cart:write"]);
    let required = [perm("cart:write"), perm("cart:read")];
    let missing = missing_permissions(&c, &required);
    assert_eq!(missing, vec![&perm("cart:read")]);
}

#[test]
fn a_human_role_never_grants_a_token_anything() {
    let mut f = fixture();
    f.role.kind = RoleKind::Human;
    let c = f.compile();
    assert!(c.role.is_none());
    assert!(c.effective.is_empty());
    assert_eq!(
        run(&c, t0(), &["cart:write"]),
        Code::InsufficientPermissions
    );
    assert_eq!(run(&c, t0(), &[]), Code::Valid);
}

#[test]
fn a_role_of_another_workspace_is_ignored() {
    let mut f = fixture();
    f.role.workspace_id = WorkspaceId::random(&mut OsRng);
    assert!(f.compile().role.is_none());
}

#[test]
fn each_allowlist_that_is_set_must_allow_the_source() {
    let mut f = fixture();
    f.workspace.settings.ip_allowlist = list("203.0.113.0/24, 2001:db8::/32");
    f.role.ip_allowlist = list("203.0.113.0/28");
    f.token.ip_allowlist = list("203.0.113.9");
    let c = f.compile();
    assert_eq!(
        run_from(&c, t0(), &[], Some(ip("203.0.113.9"))),
        Code::Valid
    );
    let refused = |from: &str| {
        let req = DecisionRequest {
            now: t0(),
            required: &[],
            ip: Some(ip(from)),
            server_internal: &IpAllowlist::default(),
        };
        decide_access(&c, &req).unwrap_err()
    };
    assert_eq!(refused("203.0.113.10").ip_level, Some(IpLevel::Token));
    f.token.ip_allowlist = IpAllowlist::default();
    let c = f.compile();
    let refused = |from: &str| {
        let req = DecisionRequest {
            now: t0(),
            required: &[],
            ip: Some(ip(from)),
            server_internal: &IpAllowlist::default(),
        };
        decide_access(&c, &req).unwrap_err()
    };
    assert_eq!(refused("203.0.113.20").ip_level, Some(IpLevel::Role));
    f.role.ip_allowlist = IpAllowlist::default();
    let c = f.compile();
    assert_eq!(
        run_from(&c, t0(), &[], Some(ip("2001:db8::1"))),
        Code::Valid
    );
    assert_eq!(
        run_from(&c, t0(), &[], Some(ip("198.51.100.1"))),
        Code::IpNotAllowed
    );
    // With a list set, an unknown source is refused.
    assert_eq!(run_from(&c, t0(), &[], None), Code::IpNotAllowed);
}

#[test]
fn internal_only_tokens_work_only_from_internal_networks() {
    let mut f = fixture();
    f.token.internal_only = true;
    f.workspace.settings.internal_networks = list("192.168.0.0/16");
    let c = f.compile();
    assert_eq!(
        run_from(&c, t0(), &[], Some(ip("192.168.4.4"))),
        Code::Valid
    );
    // The server's own internal networks count too.
    assert_eq!(run_from(&c, t0(), &[], Some(ip("10.99.1.1"))), Code::Valid);
    assert_eq!(
        run_from(&c, t0(), &[], Some(ip("203.0.113.9"))),
        Code::InternalOnly
    );
    assert_eq!(run_from(&c, t0(), &[], None), Code::InternalOnly);
    let req = DecisionRequest {
        now: t0(),
        required: &[],
        ip: Some(ip("192.168.4.4")),
        server_internal: &IpAllowlist::default(),
    };
    assert!(rate_limit_exempt(&c, &req));
}

#[test]
fn rate_limit_resolves_token_then_role_then_workspace() {
    let mut f = fixture();
    assert_eq!(f.compile().rate_limit_per_minute, 150);
    f.workspace.settings.default_rate_limit_per_minute = 100;
    assert_eq!(f.compile().rate_limit_per_minute, 100);
    f.role.rate_limit_per_minute = Some(60);
    assert_eq!(f.compile().rate_limit_per_minute, 60);
    f.token.rate_limit_per_minute = Some(5);
    assert_eq!(f.compile().rate_limit_per_minute, 5);
}

#[test]
fn what_a_limit_counts_comes_from_the_level_that_sets_it() {
    let mut f = fixture();
    let per = |f: &Fixture| {
        let c = f.compile();
        (c.rate_limit_per_minute, c.rate_limit_per)
    };
    assert_eq!(per(&f), (150, RateLimitPer::Token));
    f.workspace.settings.default_rate_limit_per = RateLimitPer::User;
    assert_eq!(per(&f), (150, RateLimitPer::User));
    // The role's own limit is per token unless the role says otherwise.
    f.role.rate_limit_per_minute = Some(60);
    assert_eq!(per(&f), (60, RateLimitPer::Token));
    f.role.rate_limit_per = RateLimitPer::User;
    assert_eq!(per(&f), (60, RateLimitPer::User));
    // A token's own limit overrides both, with what it counts.
    f.token.rate_limit_per_minute = Some(5);
    assert_eq!(per(&f), (5, RateLimitPer::Token));
    f.token.rate_limit_per = RateLimitPer::User;
    assert_eq!(per(&f), (5, RateLimitPer::User));
}
