//! Webhook subscriptions: `/v1/webhooks`, the secret's rotation and each subscription's
//! delivery log. Only [`Client::create_webhook`]'s and [`Client::rotate_webhook_secret`]'s
//! answers carry the signing secret.

use keyward_core::api::Page;
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, WebhookPatch, WebhookView,
};
use keyward_core::WebhookId;
use reqwest::Method;

use crate::{Client, ClientError, ListParams};

impl Client {
    /// `POST /v1/webhooks`: the answer carries the signing secret, shown only this once.
    pub async fn create_webhook(&self, req: &CreateWebhook) -> Result<CreatedWebhook, ClientError> {
        self.call(self.request(Method::POST, &["v1", "webhooks"])?.json(req))
            .await
    }

    /// `GET /v1/webhooks`: a page of the workspace's subscriptions.
    pub async fn list_webhooks(
        &self,
        params: &ListParams,
    ) -> Result<Page<WebhookView>, ClientError> {
        self.call(
            self.request(Method::GET, &["v1", "webhooks"])?
                .query(params),
        )
        .await
    }

    /// `GET /v1/webhooks/{id}`.
    pub async fn webhook(&self, id: WebhookId) -> Result<WebhookView, ClientError> {
        self.call(self.request(Method::GET, &["v1", "webhooks", &id.to_string()])?)
            .await
    }

    /// `PATCH /v1/webhooks/{id}`: absent fields are kept.
    pub async fn update_webhook(
        &self,
        id: WebhookId,
        patch: &WebhookPatch,
    ) -> Result<WebhookView, ClientError> {
        self.call(
            self.request(Method::PATCH, &["v1", "webhooks", &id.to_string()])?
                .json(patch),
        )
        .await
    }

    /// `DELETE /v1/webhooks/{id}`: the subscription and its deliveries.
    pub async fn delete_webhook(&self, id: WebhookId) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &["v1", "webhooks", &id.to_string()])?)
            .await
    }

    /// `POST /v1/webhooks/{id}/rotate-secret`: a new signing secret, shown only this once; the
    /// old one stops being used at once.
    pub async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
    ) -> Result<CreatedWebhook, ClientError> {
        let id = id.to_string();
        self.call(self.request(Method::POST, &["v1", "webhooks", &id, "rotate-secret"])?)
            .await
    }

    /// `GET /v1/webhooks/{id}/deliveries`: a page of the delivery attempts, oldest first.
    pub async fn webhook_deliveries(
        &self,
        id: WebhookId,
        params: &ListParams,
    ) -> Result<Page<DeliveryAttempt>, ClientError> {
        let id = id.to_string();
        self.call(
            self.request(Method::GET, &["v1", "webhooks", &id, "deliveries"])?
                .query(params),
        )
        .await
    }
}
