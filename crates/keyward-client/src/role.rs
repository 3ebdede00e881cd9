//! Roles: `/v1/roles`.

use keyward_core::api::{CreateRole, Page, RolePatch};
use keyward_core::{Role, RoleId};
use reqwest::Method;

use crate::{Client, ClientError, ListParams};

impl Client {
    /// `POST /v1/roles`.
    pub async fn create_role(&self, req: &CreateRole) -> Result<Role, ClientError> {
        self.call(self.request(Method::POST, &["v1", "roles"])?.json(req))
            .await
    }

    /// `GET /v1/roles`, paged by `params`.
    pub async fn list_roles(&self, params: &ListParams) -> Result<Page<Role>, ClientError> {
        self.call(self.request(Method::GET, &["v1", "roles"])?.query(params))
            .await
    }

    /// `GET /v1/roles/{id}`.
    pub async fn role(&self, id: RoleId) -> Result<Role, ClientError> {
        self.call(self.request(Method::GET, &["v1", "roles", &id.to_string()])?)
            .await
    }

    /// `PATCH /v1/roles/{id}`: the change applies at once to every token using the role; an
    /// allowlist change held for approval is [`ClientError::PendingApproval`].
    pub async fn update_role(&self, id: RoleId, patch: &RolePatch) -> Result<Role, ClientError> {
        self.call_change(
            self.request(Method::PATCH, &["v1", "roles", &id.to_string()])?
                .json(patch),
        )
        .await
    }

    /// `DELETE /v1/roles/{id}`.
    pub async fn delete_role(&self, id: RoleId) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &["v1", "roles", &id.to_string()])?)
            .await
    }
}
