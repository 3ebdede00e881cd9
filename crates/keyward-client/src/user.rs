//! Users: `/v1/users`.

use keyward_core::api::{CreateUser, CreatedInvitation, Page, UserPatch};
use keyward_core::{User, UserId};
use reqwest::Method;

use crate::{Client, ClientError, UserQuery};

impl Client {
    /// `POST /v1/users`.
    pub async fn create_user(&self, req: &CreateUser) -> Result<User, ClientError> {
        self.call(self.request(Method::POST, &["v1", "users"])?.json(req))
            .await
    }

    /// `GET /v1/users`, filtered and paged by `query`.
    pub async fn list_users(&self, query: &UserQuery) -> Result<Page<User>, ClientError> {
        self.call(self.request(Method::GET, &["v1", "users"])?.query(query))
            .await
    }

    /// `GET /v1/users/{id}`.
    pub async fn user(&self, id: UserId) -> Result<User, ClientError> {
        self.call(self.request(Method::GET, &["v1", "users", &id.to_string()])?)
            .await
    }

    /// `PATCH /v1/users/{id}`.
    pub async fn update_user(&self, id: UserId, patch: &UserPatch) -> Result<User, ClientError> {
        self.call(
            self.request(Method::PATCH, &["v1", "users", &id.to_string()])?
                .json(patch),
        )
        .await
    }

    /// `POST /v1/users/{id}/invitations`: a one-time link for a person to set their password.
    pub async fn invite_user(&self, id: UserId) -> Result<CreatedInvitation, ClientError> {
        self.call(self.request(
            Method::POST,
            &["v1", "users", &id.to_string(), "invitations"],
        )?)
        .await
    }

    /// `DELETE /v1/users/{id}`.
    pub async fn delete_user(&self, id: UserId) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &["v1", "users", &id.to_string()])?)
            .await
    }
}
