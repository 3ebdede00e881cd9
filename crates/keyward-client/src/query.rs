//! Filters and paging for the listings, sent as query parameters. Absent fields are left out.

use keyward_core::model::ShownStatus;
use keyward_core::{ChangeState, RoleId, UserId, UserKind};
use serde::Serialize;

/// Paging for a listing (`?limit=&cursor=`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListParams {
    /// Most items to return; the server caps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /v1/users` filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserQuery {
    /// Only humans or only service users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<UserKind>,
    /// Only disabled (`true`) or only enabled (`false`) users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Most items to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /v1/tokens` filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenQuery {
    /// Only this user's tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// Only tokens with this role of their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_id: Option<RoleId>,
    /// Only tokens in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ShownStatus>,
    /// Most items to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /v1/change-requests` filters. An approver sees every request of the workspace; anyone
/// else only their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChangeRequestListParams {
    /// Only requests in this state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ChangeState>,
    /// Only requests about this kind of target: `workspace`, `role` or `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<String>,
    /// Only requests about this role or token (`rol_…`, `tok_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Only requests made by this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<UserId>,
    /// Most items to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use keyward_core::model::ShownStatus;
    use keyward_core::{UserId, UserKind};
    use reqwest::Method;

    use super::*;
    use crate::Client;

    fn url_of(query: &impl Serialize) -> String {
        let c = Client::new("http://127.0.0.1:8080", Some("kw_x".into())).unwrap();
        let req = c
            .request(Method::GET, &["v1", "things"])
            .unwrap()
            .query(query)
            .build()
            .unwrap();
        req.url().to_string()
    }

    #[test]
    fn absent_fields_are_left_out() {
        assert_eq!(
            url_of(&ListParams::default()),
            "http://127.0.0.1:8080/v1/things"
        );
        assert_eq!(
            url_of(&TokenQuery::default()),
            "http://127.0.0.1:8080/v1/things"
        );
    }

    #[test]
    fn filters_use_wire_names() {
        let owner: UserId = "usr_0123456789abcdef0123456789abcdef".parse().unwrap();
        let q = TokenQuery {
            owner_id: Some(owner),
            status: Some(ShownStatus::Expired),
            limit: Some(10),
            cursor: Some("a b&c".into()),
            ..TokenQuery::default()
        };
        assert_eq!(
            url_of(&q),
            "http://127.0.0.1:8080/v1/things?owner_id=usr_0123456789abcdef0123456789abcdef\
             &status=expired&limit=10&cursor=a+b%26c"
        );
        let q = UserQuery {
            kind: Some(UserKind::Service),
            disabled: Some(false),
            ..UserQuery::default()
        };
        assert_eq!(
            url_of(&q),
            "http://127.0.0.1:8080/v1/things?kind=service&disabled=false"
        );
    }

    #[test]
    fn change_request_filters_use_wire_names() {
        let user: UserId = "usr_0123456789abcdef0123456789abcdef".parse().unwrap();
        let q = ChangeRequestListParams {
            state: Some(ChangeState::Pending),
            target_kind: Some("role".into()),
            target_id: Some("rol_0123456789abcdef0123456789abcdef".into()),
            requested_by: Some(user),
            limit: Some(5),
            cursor: None,
        };
        assert_eq!(
            url_of(&q),
            "http://127.0.0.1:8080/v1/things?state=pending&target_kind=role\
             &target_id=rol_0123456789abcdef0123456789abcdef\
             &requested_by=usr_0123456789abcdef0123456789abcdef&limit=5"
        );
        assert_eq!(
            url_of(&ChangeRequestListParams::default()),
            "http://127.0.0.1:8080/v1/things"
        );
    }

    #[test]
    fn the_token_travels_as_a_sensitive_bearer_header() {
        let c = Client::new("http://127.0.0.1:8080", Some("kw_x".into())).unwrap();
        let req = c
            .request(Method::GET, &["v1", "workspace"])
            .unwrap()
            .build()
            .unwrap();
        let auth = req.headers().get(reqwest::header::AUTHORIZATION).unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer kw_x");
        assert!(auth.is_sensitive());

        let anon = Client::new("http://127.0.0.1:8080", None).unwrap();
        let req = anon
            .request(Method::GET, &["healthz"])
            .unwrap()
            .build()
            .unwrap();
        assert!(req.headers().get(reqwest::header::AUTHORIZATION).is_none());
    }
}
