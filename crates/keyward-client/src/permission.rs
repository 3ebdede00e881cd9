//! The permission catalogue: `/v1/permissions`. Permission names go into the path as one
//! percent-encoded segment.

use keyward_core::api::{Catalogue, PutPermission};
use keyward_core::CatalogueEntry;
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `GET /v1/permissions`: the workspace's catalogue, built-in entries included.
    pub async fn permissions(&self) -> Result<Catalogue, ClientError> {
        self.call(self.request(Method::GET, &["v1", "permissions"])?)
            .await
    }

    /// `PUT /v1/permissions/{permission}`: adds the permission or changes its description.
    pub async fn put_permission(
        &self,
        permission: &str,
        req: &PutPermission,
    ) -> Result<CatalogueEntry, ClientError> {
        self.call(
            self.request(Method::PUT, &["v1", "permissions", permission])?
                .json(req),
        )
        .await
    }

    /// `DELETE /v1/permissions/{permission}`.
    pub async fn delete_permission(&self, permission: &str) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &["v1", "permissions", permission])?)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::Client;

    #[test]
    fn permission_names_stay_one_path_segment() {
        let c = Client::new("http://127.0.0.1:8080", None).unwrap();
        let url = c
            .url(&["v1", "permissions", "keyward.tokens:create"])
            .unwrap();
        assert_eq!(url.path(), "/v1/permissions/keyward.tokens:create");
        let url = c.url(&["v1", "permissions", "../x/y"]).unwrap();
        assert_eq!(url.path(), "/v1/permissions/..%2Fx%2Fy");
    }
}
