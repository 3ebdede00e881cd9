//! The admin verbs of the CLI (`keyward token …`, `user …`, `role …`, `permission …`,
//! `workspace …`, `webhook …`, `audit …`, `change-request …`, `verify`): thin wrappers over [`keyward_client`], printing aligned tables by
//! default and the API's JSON with `--json`.
//!
//! # Layout
//! - this module: the global connection options ([`ClientArgs`]), the verbs ([`AdminCommand`]),
//!   [`run`], output and paging helpers shared by the resources.
//! - `token`, `user`, `role`, `permission`, `workspace`, `verify`: one module per resource, each
//!   with its clap subcommands and their execution.
//! - `usage`: `token usage`, a token's usage report.
//! - `webhook`: webhook subscriptions and their delivery log.
//! - `change_request`: security changes waiting for approval, and how an `update` held for
//!   approval is reported (not applied, exit 0).
//! - `args`: shared argument types and parsers (enums, instants, durations, JSON, secrets).
//! - `table`: the aligned-table renderer and cell formatting.
//!
//! Secrets appear only in the output of `token create`, `workspace create`, `webhook create`
//! and `webhook rotate-secret`; the connection
//! token is never printed, not even by `Debug`.

mod args;
mod audit;
mod change_request;
mod permission;
mod role;
mod rotation;
mod table;
mod token;
mod usage;
mod user;
mod verify;
mod webhook;
mod workspace;

use std::fmt;
use std::future::Future;
use std::io::Write;

use anyhow::Context;
use keyward_client::{Client, ClientError};
use keyward_core::api::Page;
use serde::Serialize;

use table::Table;

/// How to reach keyward; global options, valid after any verb.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// keyward's base URL.
    #[arg(
        long,
        env = "KEYWARD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true,
        help_heading = "Global options"
    )]
    pub url: String,
    /// The bearer token the admin verbs authenticate with.
    #[arg(
        long,
        env = "KEYWARD_TOKEN",
        global = true,
        hide_env_values = true,
        help_heading = "Global options"
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

impl fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .finish()
    }
}

/// The admin verbs.
#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// Create, list, change, activate, revoke and delete tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Manage users: people and integration (service) users.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage roles and their permissions.
    #[command(subcommand)]
    Role(role::RoleCmd),
    /// Manage the workspace's permission catalogue.
    #[command(subcommand)]
    Permission(permission::PermissionCmd),
    /// Show and change the workspace; create and list workspaces (operator).
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCmd),
    /// Ask keyward whether a token may be used; exits non-zero when it may not.
    Verify(verify::VerifyArgs),
    /// Read, follow, export and check the workspace's audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Subscribe URLs to token events, rotate their signing secrets, read the delivery log.
    #[command(subcommand)]
    Webhook(webhook::WebhookCmd),
    /// List, show, approve, reject and cancel security changes waiting for approval.
    #[command(subcommand, visible_alias = "cr")]
    ChangeRequest(change_request::ChangeRequestCmd),
}

/// Runs one admin verb against the keyward at `args.url`.
pub async fn run(cmd: AdminCommand, args: &ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.token.clone()).context("cannot use --url")?;
    let ctx = Ctx {
        client,
        json: args.json,
    };
    let result = match cmd {
        AdminCommand::Token(cmd) => token::run(cmd, &ctx).await,
        AdminCommand::User(cmd) => user::run(cmd, &ctx).await,
        AdminCommand::Role(cmd) => role::run(cmd, &ctx).await,
        AdminCommand::Permission(cmd) => permission::run(cmd, &ctx).await,
        AdminCommand::Workspace(cmd) => workspace::run(cmd, &ctx).await,
        AdminCommand::Verify(cmd) => verify::run(cmd, &ctx).await,
        AdminCommand::Audit(cmd) => audit::run(cmd, &ctx).await,
        AdminCommand::Webhook(cmd) => webhook::run(cmd, &ctx).await,
        AdminCommand::ChangeRequest(cmd) => change_request::run(cmd, &ctx).await,
    };
    result.map_err(|e| explain(e, &ctx.client))
}

/// Adds a hint to the errors whose cause is usually the setup rather than the call.
fn explain(e: anyhow::Error, client: &Client) -> anyhow::Error {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Http(inner)) if inner.is_connect() || inner.is_timeout() => {
            let hint = format!("cannot reach keyward at {} (see --url)", client.base_url());
            e.context(hint)
        }
        Some(ClientError::Api { status: 401, .. }) if !client.has_token() => {
            e.context("no token given: pass --token or set KEYWARD_TOKEN")
        }
        _ => e,
    }
}

/// What every verb needs: the client and the output mode.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) json: bool,
}

impl Ctx {
    /// Prints `value` as JSON, or as the table `render` makes of it.
    pub(crate) fn show<T: Serialize>(
        &self,
        value: &T,
        render: impl FnOnce(&T) -> Table,
    ) -> anyhow::Result<()> {
        if self.json {
            print_json(value)
        } else {
            emit(&render(value).render())
        }
    }

    /// Prints a page as JSON, or as a table followed by a hint when there is more.
    pub(crate) fn show_page<T: Serialize>(
        &self,
        page: &Page<T>,
        render: impl FnOnce(&[T]) -> Table,
    ) -> anyhow::Result<()> {
        if self.json {
            return print_json(page);
        }
        emit(&render(&page.items).render())?;
        if let Some(cursor) = &page.next_cursor {
            eprintln!("(more: pass --cursor {cursor}, or --all for everything)");
        }
        Ok(())
    }

    /// Confirms an action that has no answer body (a delete). Silent with `--json`.
    pub(crate) fn done(&self, message: &str) -> anyhow::Result<()> {
        if self.json {
            Ok(())
        } else {
            emit(message)
        }
    }
}

/// Paging options shared by the listings.
#[derive(clap::Args, Debug)]
pub(crate) struct PageArgs {
    /// Most items per page.
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// Continue from a previous listing's cursor.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Follow the cursors and list everything.
    #[arg(long)]
    pub(crate) all: bool,
}

impl PageArgs {
    /// The first page, or with `--all` every page merged into one.
    pub(crate) async fn fetch<T, F, Fut>(&self, mut fetch: F) -> Result<Page<T>, ClientError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>, ClientError>>,
    {
        let mut page = fetch(self.cursor.clone()).await?;
        if !self.all {
            return Ok(page);
        }
        let mut items = std::mem::take(&mut page.items);
        let mut previous = self.cursor.clone();
        while let Some(cursor) = page.next_cursor.take() {
            // A server that hands back the cursor it was given would loop forever.
            if previous.as_ref() == Some(&cursor) {
                break;
            }
            previous = Some(cursor.clone());
            page = fetch(Some(cursor)).await?;
            items.append(&mut page.items);
        }
        Ok(Page {
            items,
            next_cursor: None,
        })
    }
}

/// Prints pretty JSON.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    emit(&serde_json::to_string_pretty(value)?)
}

/// Writes a line to standard output; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// The shape `main` gives the admin verbs.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: AdminCommand,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("keyward").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let cli = parse(&["verify", "kw_checked", "--token", "kw_admin", "--json"]).unwrap();
        assert!(cli.client.json);
        assert_eq!(cli.client.token.as_deref(), Some("kw_admin"));
        let AdminCommand::Verify(v) = &cli.command else {
            panic!("not verify: {cli:?}");
        };
        assert!(format!("{v:?}").contains("redacted"));
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("kw_checked") && !shown.contains("kw_admin"),
            "{shown}"
        );
    }

    #[test]
    fn webhook_endpoints_do_not_take_the_global_url() {
        let cli = parse(&[
            "webhook",
            "create",
            "--endpoint",
            "http://hooks.internal/x",
            "--url",
            "http://keyward.internal",
        ])
        .unwrap();
        assert_eq!(cli.client.url, "http://keyward.internal");
        assert!(format!("{:?}", cli.command).contains("http://hooks.internal/x"));
    }

    #[test]
    fn contradictory_options_are_refused() {
        let tok = "tok_0123456789abcdef0123456789abcdef";
        let rol = "rol_0123456789abcdef0123456789abcdef";
        assert!(parse(&["token", "update", tok, "--role", rol, "--no-role"]).is_err());
        assert!(parse(&["token", "update", tok, "--expires-in", "1d", "--no-expiry"]).is_err());
        let usr = "usr_0123456789abcdef0123456789abcdef";
        assert!(parse(&["user", "update", usr, "--disable", "--enable"]).is_err());
        assert!(parse(&["user", "update", "tok_0123456789abcdef0123456789abcdef"]).is_err());
        assert!(
            parse(&["role", "create", "--name", "r", "--kind", "api", "--scope", "user"]).is_err()
        );
        assert!(parse(&["token", "list", "--all", "--status", "expired"]).is_ok());
    }
}
