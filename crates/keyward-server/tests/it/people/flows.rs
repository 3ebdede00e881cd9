//! A person's way in and out: invitation → password → TOTP enrolment, sign-in with the
//! second factor (a code used once only), recovery codes, the sign-in guard, sessions (idle
//! timeout, listing, ending, disabling the user), CSRF, the allowlist and `require_2fa`.

use chrono::Duration;
use keyward_core::api::{IpListInput, SettingsPatch, UserPatch, WorkspacePatch};
use keyward_core::audit::{AuditEventView, AuditQuery};

use super::browserless::{code, hidden, invitation_path, onboard, person, Jar, Page};
use crate::support::{both_backends, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn actions(app: &TestApp, family: &str) -> Vec<AuditEventView> {
    let q = AuditQuery {
        action: Some(family.into()),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items
}

/// Email and password, as the sign-in page sends them.
async fn password_step(jar: &mut Jar, email: &str, password: &str) -> Page {
    let form = jar.get("/ui/sign-in").await;
    assert_eq!(form.status, 200, "{}", form.body);
    jar.post(
        "/ui/sign-in",
        &[
            ("csrf", &form.csrf()),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

/// The second step with `c`.
async fn code_step(jar: &mut Jar, c: &str) -> Page {
    let form = jar.get("/ui/sign-in/code").await;
    assert_eq!(form.status, 200, "{}", form.body);
    jar.post("/ui/sign-in/code", &[("csrf", &form.csrf()), ("code", c)])
        .await
}

async fn sign_out(jar: &mut Jar) {
    let home = jar.get("/ui").await;
    assert_eq!(home.status, 200, "{}", home.body);
    let out = jar.post("/ui/sign-out", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        jar.get("/ui").await.location.as_deref(),
        Some("/ui/sign-in")
    );
}

async fn invitation_password_totp_and_sign_in(app: TestApp) {
    let ada = person(&app, "ada@example.com", &["keyward.tokens:*"]).await;
    let (mut jar, secret, _codes) = onboard(&app, &ada, PASSWORD).await;
    let home = jar.get("/ui").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("ada"), "{}", home.body);

    // Cookies and headers a browser is told to keep to.
    let name = jar
        .cookies
        .keys()
        .find(|k| k.contains("keyward_session"))
        .cloned();
    assert!(name.is_some(), "{:?}", jar.cookies);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(home.headers["referrer-policy"], "no-referrer");
    assert_eq!(home.headers["cache-control"], "no-store");

    sign_out(&mut jar).await;

    // The password alone leads to the second step, not in.
    let step = password_step(&mut jar, "ada@example.com", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert_eq!(step.location.as_deref(), Some("/ui/sign-in/code"));
    let set: Vec<_> = step
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")),
        "{set:?}"
    );
    assert_eq!(
        jar.get("/ui/tokens").await.location.as_deref(),
        Some("/ui/sign-in/code")
    );

    // The code used to enrol was used once already: replaying it is refused.
    let replay = code_step(&mut jar, &code(&app, &secret)).await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    app.clock.advance(Duration::seconds(30));
    let ok = code_step(&mut jar, &code(&app, &secret)).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/ui"));
    assert_eq!(jar.get("/ui/tokens").await.status, 200);

    let signed_in = actions(&app, "person.signed_in").await;
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(signed_in[0].actor.user_id, Some(ada.id));
    assert_eq!(signed_in[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(!actions(&app, "person.sign_in_failed").await.is_empty());
    let enrolled = actions(&app, "person.*").await;
    assert!(
        enrolled
            .iter()
            .any(|e| e.action.contains("2fa") || e.action.contains("totp")),
        "{:?}",
        enrolled.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    let chain = app.admin.verify_audit().await.unwrap();
    assert!(chain.intact, "{chain:?}");
    // No secret reaches the trail.
    let all = serde_json::to_string(&actions(&app, "*").await).unwrap();
    assert!(!all.contains(PASSWORD));
    assert!(!all.contains(&secret));
}
both_backends!(invitation_password_totp_and_sign_in);

async fn invitations_are_one_time_and_expire(app: TestApp) {
    let bea = person(&app, "bea@example.com", &["keyward.tokens:read"]).await;
    let path = invitation_path(&app, &bea).await;
    let mut jar = Jar::new(&app);
    let form = jar.get(&path).await;
    assert_eq!(form.status, 200);
    // A weak password is refused with its reason, and the link still works.
    let weak = jar
        .post(
            &path,
            &[
                ("csrf", &form.csrf()),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422, "{}", weak.body);
    assert!(weak.body.contains("12"), "{}", weak.body);
    let done = jar
        .post(
            &path,
            &[
                ("csrf", &form.csrf()),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mut other = Jar::new(&app);
    let again = other.get(&path).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(again.body.contains("not valid"), "{}", again.body);

    // A newer invitation replaces an older one; an invitation expires after 72 h.
    let cy = person(&app, "cy@example.com", &["keyward.tokens:read"]).await;
    let first = invitation_path(&app, &cy).await;
    let second = invitation_path(&app, &cy).await;
    assert_eq!(Jar::new(&app).get(&first).await.status, 404);
    assert_eq!(Jar::new(&app).get(&second).await.status, 200);
    app.clock.advance(Duration::hours(73));
    assert_eq!(Jar::new(&app).get(&second).await.status, 404);
}
both_backends!(invitations_are_one_time_and_expire);

async fn failures_are_audited_and_throttled_without_lockout(app: TestApp) {
    let dee = person(&app, "dee@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, secret, _) = onboard(&app, &dee, PASSWORD).await;
    sign_out(&mut jar).await;

    // Five wrong passwords from one address: the sixth try from there is throttled, even
    // with the right password; the same answer for an unknown address (no enumeration).
    for _ in 0..5 {
        let bad = password_step(&mut jar, "dee@example.com", "wrong wrong wrong").await;
        assert_eq!(bad.status, 401, "{}", bad.body);
    }
    let nobody = password_step(&mut jar, "nobody@example.com", "wrong wrong wrong").await;
    assert_eq!(nobody.status, 401);
    let throttled = password_step(&mut jar, "dee@example.com", PASSWORD).await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(
        throttled.body.contains("try again in"),
        "{}",
        throttled.body
    );
    assert!(actions(&app, "person.sign_in_failed").await.len() >= 5);
    assert!(!actions(&app, "person.sign_in_refused").await.is_empty());

    // The attacker's address does not lock the person out elsewhere.
    let mut elsewhere = Jar::from(&app, "127.0.0.2");
    let step = password_step(&mut elsewhere, "dee@example.com", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        code_step(&mut elsewhere, &code(&app, &secret)).await.status,
        303
    );

    // And the throttle ends by itself.
    app.clock.advance(Duration::minutes(16));
    let later = password_step(&mut jar, "dee@example.com", PASSWORD).await;
    assert_eq!(later.status, 303, "{}", later.body);
}
both_backends!(failures_are_audited_and_throttled_without_lockout);

async fn recovery_codes_work_once(app: TestApp) {
    let eve = person(&app, "eve@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, codes) = onboard(&app, &eve, PASSWORD).await;
    sign_out(&mut jar).await;
    assert_eq!(
        password_step(&mut jar, "eve@example.com", PASSWORD)
            .await
            .status,
        303
    );
    let used = code_step(&mut jar, &codes[3]).await;
    assert_eq!(used.status, 303, "{}", used.body);
    assert_eq!(used.location.as_deref(), Some("/ui"));
    sign_out(&mut jar).await;
    assert_eq!(
        password_step(&mut jar, "eve@example.com", PASSWORD)
            .await
            .status,
        303
    );
    let again = code_step(&mut jar, &codes[3]).await;
    assert_eq!(again.status, 401, "{}", again.body);
    let events = actions(&app, "person.recovery_code_used").await;
    assert_eq!(events.len(), 1);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&codes[3]), "{text}");
}
both_backends!(recovery_codes_work_once);

async fn sessions_time_out_end_and_die_with_the_user(app: TestApp) {
    let fay = person(&app, "fay@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, secret, _) = onboard(&app, &fay, PASSWORD).await;

    // Idle timeout: 30 minutes without a request.
    app.clock.advance(Duration::minutes(29));
    assert_eq!(jar.get("/ui").await.status, 200);
    app.clock.advance(Duration::minutes(31));
    assert_eq!(
        jar.get("/ui").await.location.as_deref(),
        Some("/ui/sign-in")
    );

    // Two sessions; the account page lists both and ends the other.
    let mut a = Jar::new(&app);
    let mut b = Jar::from(&app, "127.0.0.2");
    for (jar, step) in [(&mut a, 30), (&mut b, 30)] {
        assert_eq!(
            password_step(jar, "fay@example.com", PASSWORD).await.status,
            303
        );
        app.clock.advance(Duration::seconds(step));
        assert_eq!(code_step(jar, &code(&app, &secret)).await.status, 303);
    }
    let account = a.get("/ui/account").await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert!(account.body.contains("127.0.0.2"), "{}", account.body);
    let ends: Vec<&str> = account
        .body
        .split("action=\"/ui/account/sessions/")
        .skip(1)
        .map(|s| &s[..s.find('/').unwrap()])
        .collect();
    assert_eq!(
        ends.len(),
        1,
        "only the other session has an end button: {ends:?}"
    );
    let ended = a
        .post(
            &format!("/ui/account/sessions/{}/end", ends[0]),
            &[("csrf", &account.csrf())],
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert!(ended.body.contains("Session ended."), "{}", ended.body);
    assert_eq!(b.get("/ui").await.location.as_deref(), Some("/ui/sign-in"));
    assert_eq!(a.get("/ui").await.status, 200);

    // Disabling the user ends every session at once.
    app.admin
        .update_user(
            fay.id,
            &UserPatch {
                disabled: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.get("/ui").await.location.as_deref(), Some("/ui/sign-in"));
    assert_eq!(
        password_step(&mut a, "fay@example.com", PASSWORD)
            .await
            .status,
        401
    );
}
both_backends!(sessions_time_out_end_and_die_with_the_user);

async fn forms_need_the_session_csrf_token(app: TestApp) {
    let gus = person(
        &app,
        "gus@example.com",
        &[
            "keyward.tokens:*",
            "keyward.users:read",
            "keyward.roles:read",
        ],
    )
    .await;
    let (mut jar, _, _) = onboard(&app, &gus, PASSWORD).await;
    let form = jar.get("/ui/tokens/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let owner = gus.id.to_string();
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("name".to_owned(), "ci".to_owned()),
            ("owner".to_owned(), owner.clone()),
            ("permissions".to_owned(), "keyward.tokens:read".to_owned()),
        ]
    };
    let forged = jar
        .http
        .post(format!("{}/ui/tokens/new", jar.base))
        .header(
            "cookie",
            jar.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .form(&fields("not-the-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let cross = jar
        .http
        .post(format!("{}/ui/tokens/new", jar.base))
        .header(
            "cookie",
            jar.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .header("sec-fetch-site", "cross-site")
        .form(&fields(&form.csrf()))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let q = keyward_client::TokenQuery::default();
    let tokens = app.admin.list_tokens(&q).await.unwrap().items;
    assert!(tokens.iter().all(|t| t.name != "ci"), "nothing was created");
    // A sign-in form without its pre-session cookie is refused too.
    let mut fresh = Jar::new(&app);
    let signin = fresh
        .post(
            "/ui/sign-in",
            &[
                ("csrf", "x"),
                ("email", "gus@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signin.status, 403, "{}", signin.body);
}
both_backends!(forms_need_the_session_csrf_token);

async fn the_workspace_allowlist_applies_to_the_dashboard(app: TestApp) {
    let hal = person(&app, "hal@example.com", &["keyward.tokens:read"]).await;
    let (mut inside, secret, _) = onboard(&app, &hal, PASSWORD).await;
    app.admin
        .update_workspace(&WorkspacePatch {
            settings: Some(SettingsPatch {
                ip_allowlist: Some(IpListInput::Text("127.0.0.1/32".into())),
                ..SettingsPatch::default()
            }),
            ..WorkspacePatch::default()
        })
        .await
        .unwrap();
    assert_eq!(inside.get("/ui").await.status, 200);
    let mut outside = Jar::from(&app, "127.0.0.3");
    let refused = password_step(&mut outside, "hal@example.com", PASSWORD).await;
    // The same answer as a wrong password: outside the network, a guess learns nothing.
    assert_eq!(refused.status, 401, "{}", refused.body);
    // A session cookie carried to another address is refused there.
    outside.cookies = inside.cookies.clone();
    let moved = outside.get("/ui").await;
    assert_eq!(moved.status, 403, "{}", moved.body);
    let _ = secret;
    assert!(!actions(&app, "person.sign_in_refused").await.is_empty());
}
both_backends!(the_workspace_allowlist_applies_to_the_dashboard);

async fn require_2fa_allows_nothing_but_enrolment(app: TestApp) {
    let ivy = person(&app, "ivy@example.com", &["keyward.tokens:read"]).await;
    // Without the policy, a person may skip enrolment.
    let path = invitation_path(&app, &ivy).await;
    let mut jar = Jar::new(&app);
    let form = jar.get(&path).await;
    jar.post(
        &path,
        &[
            ("csrf", &form.csrf()),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;
    let enrol = jar.get("/ui/account/2fa").await;
    assert!(
        enrol.body.contains("/ui/account/2fa/skip"),
        "{}",
        enrol.body
    );
    let skipped = jar
        .post("/ui/account/2fa/skip", &[("csrf", &enrol.csrf())])
        .await;
    assert_eq!(skipped.status, 303, "{}", skipped.body);
    assert_eq!(jar.get("/ui/tokens").await.status, 200);

    // With it, the session is held at enrolment: nothing else, no skipping.
    app.admin
        .update_workspace(&WorkspacePatch {
            settings: Some(SettingsPatch {
                require_2fa: Some(true),
                ..SettingsPatch::default()
            }),
            ..WorkspacePatch::default()
        })
        .await
        .unwrap();
    let held = jar.get("/ui/tokens").await;
    assert_eq!(
        held.location.as_deref(),
        Some("/ui/account/2fa"),
        "{}",
        held.body
    );
    let enrol = jar.get("/ui/account/2fa").await;
    assert_eq!(enrol.status, 200);
    assert!(
        !enrol.body.contains("/ui/account/2fa/skip"),
        "{}",
        enrol.body
    );
    let skip = jar
        .post("/ui/account/2fa/skip", &[("csrf", &enrol.csrf())])
        .await;
    assert_eq!(
        skip.location.as_deref(),
        Some("/ui/account/2fa"),
        "{}",
        skip.body
    );
    assert_eq!(
        jar.get("/ui/tokens").await.location.as_deref(),
        Some("/ui/account/2fa")
    );
    let secret = hidden(&enrol.body, "secret")
        .or_else(|| super::browserless::by_id(&enrol.body, "totp-secret"))
        .unwrap();
    let done = jar
        .post(
            "/ui/account/2fa",
            &[("csrf", &enrol.csrf()), ("code", &code(&app, &secret))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(jar.get("/ui/tokens").await.status, 200);
}
both_backends!(require_2fa_allows_nothing_but_enrolment);

async fn an_invitation_needs_everything_the_person_holds(app: TestApp) {
    // A weaker admin must not take over a stronger person by inviting them (the link replaces
    // the password and second factor), through the dashboard or the API.
    let strong = person(&app, "strong@example.com", &["*", "keyward.*"]).await;
    let weak = person(&app, "weak@example.com", &["keyward.users:*"]).await;
    let (mut jar, _, _) = onboard(&app, &weak, PASSWORD).await;
    let page = jar.get(&format!("/ui/users/{}", strong.id)).await;
    let refused = jar
        .post(
            &format!("/ui/users/{}/invite", strong.id),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains("/ui/invite/"), "{}", refused.body);
    assert!(
        refused.body.contains("you do not hold yourself"),
        "{}",
        refused.body
    );
    let api_role = app
        .api_role(
            "users only",
            keyward_core::model::Scope::Workspace,
            &["keyward.users:*"],
        )
        .await;
    let svc = app.service_user("user-admin", Some(api_role.id)).await;
    let token = app.token_for(&svc).await;
    let p = crate::support::problem_of(app.client(&token.secret).invite_user(strong.id).await);
    assert_eq!(p.code, "PRIVILEGE_ESCALATION");
    // Nor may a person re-invite themselves to drop their second factor.
    let own = jar
        .post(
            &format!("/ui/users/{}/invite", weak.id),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(own.status, 409, "{}", own.body);
    let invited = actions(&app, "person.invited").await;
    assert_eq!(
        invited.len(),
        1,
        "only the weak person's onboarding: {invited:?}"
    );
}
both_backends!(an_invitation_needs_everything_the_person_holds);

async fn the_roles_allowlist_narrows_where_a_person_signs_in(app: TestApp) {
    let jo = person(&app, "jo@example.com", &["keyward.tokens:read"]).await;
    let (mut at_home, secret, _) = onboard(&app, &jo, PASSWORD).await;
    let role = jo.role_id.unwrap();
    app.admin
        .update_role(
            role,
            &keyward_core::api::RolePatch {
                ip_allowlist: Some(IpListInput::Text("127.0.0.2".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The session from 127.0.0.1 is refused at once; sign-in works only from 127.0.0.2.
    assert_eq!(at_home.get("/ui").await.status, 403);
    let refused = password_step(&mut Jar::new(&app), "jo@example.com", PASSWORD).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let mut office = Jar::from(&app, "127.0.0.2");
    assert_eq!(
        password_step(&mut office, "jo@example.com", PASSWORD)
            .await
            .status,
        303
    );
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        code_step(&mut office, &code(&app, &secret)).await.status,
        303
    );
    assert_eq!(office.get("/ui").await.status, 200);
}
both_backends!(the_roles_allowlist_narrows_where_a_person_signs_in);

async fn no_secret_of_a_person_reaches_the_logs(app: TestApp) {
    crate::support::logs();
    let kim = person(&app, "kim@example.com", &["keyward.tokens:read"]).await;
    let path = invitation_path(&app, &kim).await;
    let link_secret = path.trim_start_matches("/ui/invite/").to_owned();
    let mut jar = Jar::new(&app);
    let form = jar.get(&path).await;
    jar.post(
        &path,
        &[
            ("csrf", &form.csrf()),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;
    let enrol = jar.get("/ui/account/2fa").await;
    let totp = super::browserless::by_id(&enrol.body, "totp-secret").unwrap();
    let codes = jar
        .post(
            "/ui/account/2fa",
            &[("csrf", &enrol.csrf()), ("code", &code(&app, &totp))],
        )
        .await;
    let recovery = codes.body.split("<li><code>").nth(1).unwrap();
    let recovery = &recovery[..recovery.find('<').unwrap()];
    let session = jar
        .cookies
        .iter()
        .find(|(k, _)| k.contains("keyward_session"))
        .map(|(_, v)| v.clone())
        .unwrap();
    for secret in [link_secret.as_str(), PASSWORD, &totp, recovery, &session] {
        assert!(
            !crate::support::logs_contain(secret),
            "a secret reached the logs"
        );
    }
}
both_backends!(no_secret_of_a_person_reaches_the_logs);

async fn the_second_factor_cannot_be_skipped(app: TestApp) {
    // With the password alone, "Not now" (put off enrolment) must not stand in for the code.
    let lee = person(&app, "lee@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &lee, PASSWORD).await;
    sign_out(&mut jar).await;
    let before = actions(&app, "person.signed_in").await.len();
    assert_eq!(
        password_step(&mut jar, "lee@example.com", PASSWORD)
            .await
            .status,
        303
    );
    let page = jar.get("/ui/sign-in/code").await;
    assert!(
        page.body.contains("/ui/sign-out"),
        "a half-signed-in person can sign out"
    );
    let skip = jar
        .post("/ui/account/2fa/skip", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(skip.location.as_deref(), Some("/ui/sign-in/code"));
    let enrol = jar
        .post(
            "/ui/account/2fa",
            &[("csrf", &page.csrf()), ("code", "000000")],
        )
        .await;
    assert_eq!(enrol.location.as_deref(), Some("/ui/sign-in/code"));
    assert_eq!(
        jar.get("/ui").await.location.as_deref(),
        Some("/ui/sign-in/code")
    );
    assert_eq!(
        jar.get("/ui/tokens").await.location.as_deref(),
        Some("/ui/sign-in/code")
    );
    assert_eq!(
        actions(&app, "person.signed_in").await.len(),
        before,
        "not signed in"
    );
}
both_backends!(the_second_factor_cannot_be_skipped);

async fn unknown_addresses_are_limited_like_known_ones(app: TestApp) {
    // Five failures against an address nobody has are throttled exactly like five against a
    // real account: the answers do not tell which addresses have accounts.
    let mo = person(&app, "mo@example.com", &["keyward.tokens:read"]).await;
    let _ = onboard(&app, &mo, PASSWORD).await;
    for email in ["mo@example.com", "nobody-here@example.com"] {
        let mut jar = Jar::from(
            &app,
            if email.starts_with("mo") {
                "127.0.0.4"
            } else {
                "127.0.0.5"
            },
        );
        for _ in 0..5 {
            assert_eq!(
                password_step(&mut jar, email, "wrong wrong wrong")
                    .await
                    .status,
                401
            );
        }
        let sixth = password_step(&mut jar, email, "wrong wrong wrong").await;
        assert_eq!(sixth.status, 429, "{email}: {}", sixth.body);
    }
}
both_backends!(unknown_addresses_are_limited_like_known_ones);

async fn codes_asked_on_the_account_page_are_guarded(app: TestApp) {
    let ned = person(&app, "ned@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &ned, PASSWORD).await;
    let account = jar.get("/ui/account").await;
    let mut last = 0;
    for _ in 0..6 {
        last = jar
            .post(
                "/ui/account/recovery-codes",
                &[("csrf", &account.csrf()), ("code", "000000")],
            )
            .await
            .status;
    }
    assert_eq!(last, 429, "wrong codes are counted and then refused");
    assert!(actions(&app, "person.code_failed").await.len() >= 5);
}
both_backends!(codes_asked_on_the_account_page_are_guarded);

async fn turning_2fa_off_ends_the_other_sessions(app: TestApp) {
    let oz = person(&app, "oz@example.com", &["keyward.tokens:read"]).await;
    let (mut here, secret, _) = onboard(&app, &oz, PASSWORD).await;
    let mut there = Jar::from(&app, "127.0.0.2");
    assert_eq!(
        password_step(&mut there, "oz@example.com", PASSWORD)
            .await
            .status,
        303
    );
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        code_step(&mut there, &code(&app, &secret)).await.status,
        303
    );
    app.clock.advance(Duration::seconds(30));
    let account = here.get("/ui/account").await;
    let off = here
        .post(
            "/ui/account/2fa/disable",
            &[("csrf", &account.csrf()), ("code", &code(&app, &secret))],
        )
        .await;
    assert!(off.status < 400, "{}", off.body);
    assert_eq!(here.get("/ui").await.status, 200, "this session stays");
    assert_eq!(
        there.get("/ui").await.location.as_deref(),
        Some("/ui/sign-in")
    );
    assert_eq!(actions(&app, "person.2fa_disabled").await.len(), 1);
}
both_backends!(turning_2fa_off_ends_the_other_sessions);
