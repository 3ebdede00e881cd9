//! The per-request log: a token with `request_log` on keeps each verified request as a record
//! of its own (`GET /v1/tokens/{id}/usage/requests`), while every other token's requests are
//! only counted per minute; the usage report counts both kinds exactly once.

use keyward_core::api::{TokenPatch, VerifyRequest};
use keyward_core::Code;

use crate::support::{both_backends, problem_of, token_request, usage_settled, TestApp};

fn call<'a>(secret: &'a str, ip: &'a str, path: &'a str) -> VerifyRequest<'a> {
    VerifyRequest {
        token: secret.into(),
        ip: Some(ip.into()),
        method: Some("get".into()),
        path: Some(path.into()),
        permissions: Some(vec!["orders:read".into()]),
    }
}

async fn a_token_under_investigation_keeps_each_request(app: TestApp) {
    let owner = app.orders_reader().await;
    let mut req = token_request(&owner);
    req.request_log = true;
    let logged = app.admin.create_token(&req).await.unwrap();
    assert!(logged.token.request_log);
    let counted = app
        .admin
        .create_token(&token_request(&owner))
        .await
        .unwrap();
    assert!(!counted.token.request_log);

    for (i, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
        let path = format!("/orders/{i}?api_key=secret");
        for t in [&logged, &counted] {
            let v = app.admin.verify(&call(&t.secret, ip, &path)).await.unwrap();
            assert_eq!(v.code, Code::Valid);
        }
    }
    usage_settled(&app, 6).await;

    let log = app
        .admin
        .token_requests(logged.token.id, None)
        .await
        .unwrap();
    assert!(log.request_log);
    let seen: Vec<(String, Option<String>, Option<String>)> = log
        .requests
        .iter()
        .map(|r| (r.ip.unwrap().to_string(), r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "10.0.0.3".into(),
                Some("GET".into()),
                Some("/orders/2".into())
            ),
            (
                "10.0.0.2".into(),
                Some("GET".into()),
                Some("/orders/1".into())
            ),
            (
                "10.0.0.1".into(),
                Some("GET".into()),
                Some("/orders/0".into())
            ),
        ],
        "newest first, method upper-cased, no query string"
    );
    assert!(log.requests.iter().all(|r| r.code == Code::Valid));
    let one = app
        .admin
        .token_requests(logged.token.id, Some(1))
        .await
        .unwrap();
    assert_eq!(one.requests, log.requests[..1].to_vec());

    // The other token's requests are counted, not kept one by one.
    let none = app
        .admin
        .token_requests(counted.token.id, None)
        .await
        .unwrap();
    assert!(!none.request_log && none.requests.is_empty());
    for t in [&logged, &counted] {
        let r = app
            .admin
            .token_usage(t.token.id, &Default::default())
            .await
            .unwrap();
        assert_eq!(r.total, 3);
        assert_eq!((r.distinct_ips, r.ips.len(), r.endpoints.len()), (3, 3, 3));
        assert_eq!(
            r.last_used.unwrap().endpoint.as_deref(),
            Some("GET /orders/2")
        );
    }

    // Turned on later, the log keeps what follows; the counts go on in one report.
    let on = TokenPatch {
        request_log: Some(true),
        ..TokenPatch::default()
    };
    let view = app.admin.update_token(counted.token.id, &on).await.unwrap();
    assert!(view.request_log);
    let v = app
        .admin
        .verify(&call(&counted.secret, "10.0.0.9", "/late"))
        .await
        .unwrap();
    assert_eq!(v.code, Code::Valid);
    usage_settled(&app, 7).await;
    let later = app
        .admin
        .token_requests(counted.token.id, None)
        .await
        .unwrap();
    assert_eq!(later.requests.len(), 1);
    assert_eq!(later.requests[0].path.as_deref(), Some("/late"));
    let r = app
        .admin
        .token_usage(counted.token.id, &Default::default())
        .await
        .unwrap();
    assert_eq!(r.total, 4);
    assert_eq!(r.distinct_ips, 4);

    // Bad limits are refused by field.
    for bad in [0, 1_001] {
        let p = problem_of(app.admin.token_requests(logged.token.id, Some(bad)).await);
        assert_eq!(
            (p.code.as_str(), p.field.as_deref()),
            ("INVALID_LIMIT", Some("limit"))
        );
    }
}
both_backends!(a_token_under_investigation_keeps_each_request);
