//! Tokens: `/v1/tokens`. Only [`Client::create_token`]'s answer carries a secret.

use keyward_core::api::{CreateToken, CreatedToken, Page, TokenPatch, TokenView};
use keyward_core::TokenId;
use reqwest::Method;

use crate::{Client, ClientError, TokenQuery};

impl Client {
    /// `POST /v1/tokens`: the answer carries the secret, shown only this once.
    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken, ClientError> {
        self.call(self.request(Method::POST, &["v1", "tokens"])?.json(req))
            .await
    }

    /// `GET /v1/tokens`, filtered and paged by `query`.
    pub async fn list_tokens(&self, query: &TokenQuery) -> Result<Page<TokenView>, ClientError> {
        self.call(self.request(Method::GET, &["v1", "tokens"])?.query(query))
            .await
    }

    /// `GET /v1/tokens/{id}`.
    pub async fn token(&self, id: TokenId) -> Result<TokenView, ClientError> {
        self.call(self.request(Method::GET, &["v1", "tokens", &id.to_string()])?)
            .await
    }

    /// `PATCH /v1/tokens/{id}`; a change held for approval (the allowlist, internal-only
    /// turned off) is [`ClientError::PendingApproval`].
    pub async fn update_token(
        &self,
        id: TokenId,
        patch: &TokenPatch,
    ) -> Result<TokenView, ClientError> {
        self.call_change(
            self.request(Method::PATCH, &["v1", "tokens", &id.to_string()])?
                .json(patch),
        )
        .await
    }

    /// `POST /v1/tokens/{id}/activate`: a pending token becomes usable.
    pub async fn activate_token(&self, id: TokenId) -> Result<TokenView, ClientError> {
        self.call(self.request(Method::POST, &["v1", "tokens", &id.to_string(), "activate"])?)
            .await
    }

    /// `POST /v1/tokens/{id}/revoke`: refused from now on, on every node.
    pub async fn revoke_token(&self, id: TokenId) -> Result<TokenView, ClientError> {
        self.call(self.request(Method::POST, &["v1", "tokens", &id.to_string(), "revoke"])?)
            .await
    }

    /// `DELETE /v1/tokens/{id}`.
    pub async fn delete_token(&self, id: TokenId) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &["v1", "tokens", &id.to_string()])?)
            .await
    }
}
