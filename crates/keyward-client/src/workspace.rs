//! Workspaces: the caller's own (`/v1/workspace`) and, for the operator, all of them
//! (`/v1/workspaces`).

use keyward_core::api::{CreateWorkspace, CreatedWorkspace, Page, WorkspacePatch};
use keyward_core::Workspace;
use reqwest::Method;

use crate::{Client, ClientError, ListParams};

impl Client {
    /// `GET /v1/workspace`: the caller's workspace.
    pub async fn workspace(&self) -> Result<Workspace, ClientError> {
        self.call(self.request(Method::GET, &["v1", "workspace"])?)
            .await
    }

    /// `PATCH /v1/workspace`: changes the caller's workspace. When the workspace requires
    /// approval and this is a security change, nothing is applied and the answer is
    /// [`ClientError::PendingApproval`] with the change request.
    pub async fn update_workspace(&self, patch: &WorkspacePatch) -> Result<Workspace, ClientError> {
        self.call_change(
            self.request(Method::PATCH, &["v1", "workspace"])?
                .json(patch),
        )
        .await
    }

    /// `POST /v1/workspaces` (operator only): a new workspace with its admin user, role and
    /// token. The answer carries the admin token's secret, shown only this once.
    pub async fn create_workspace(
        &self,
        req: &CreateWorkspace,
    ) -> Result<CreatedWorkspace, ClientError> {
        self.call(self.request(Method::POST, &["v1", "workspaces"])?.json(req))
            .await
    }

    /// `GET /v1/workspaces` (operator only).
    pub async fn list_workspaces(
        &self,
        params: &ListParams,
    ) -> Result<Page<Workspace>, ClientError> {
        self.call(
            self.request(Method::GET, &["v1", "workspaces"])?
                .query(params),
        )
        .await
    }
}
