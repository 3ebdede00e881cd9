//! Rotation and bulk revocation: `POST /v1/tokens/{id}/rotate`, `GET /v1/tokens/{id}/family`,
//! `POST /v1/users/{id}/revoke-tokens`.

use keyward_core::api::{RevokedTokens, RotateToken, RotatedToken, TokenView};
use keyward_core::{TokenId, UserId};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/tokens/{id}/rotate`: a new secret; the old one works until the grace ends.
    pub async fn rotate_token(
        &self,
        id: TokenId,
        req: &RotateToken,
    ) -> Result<RotatedToken, ClientError> {
        let path = ["v1", "tokens", &id.to_string(), "rotate"];
        self.call(self.request(Method::POST, &path)?.json(req))
            .await
    }

    /// `GET /v1/tokens/{id}/family`: the token's rotation family, oldest first.
    pub async fn token_family(&self, id: TokenId) -> Result<Vec<TokenView>, ClientError> {
        let path = ["v1", "tokens", &id.to_string(), "family"];
        self.call(self.request(Method::GET, &path)?).await
    }

    /// `POST /v1/users/{id}/revoke-tokens`: revokes every token of the user.
    pub async fn revoke_user_tokens(&self, id: UserId) -> Result<RevokedTokens, ClientError> {
        let path = ["v1", "users", &id.to_string(), "revoke-tokens"];
        self.call(self.request(Method::POST, &path)?).await
    }
}
