//! `keyward webhook …`: create, list, show, update, delete webhook subscriptions, rotate their
//! signing secret, and read a subscription's delivery log. The secret is printed only by
//! `create` and `rotate-secret`, once, with a warning to store it.
//!
//! The subscription's URL is `--endpoint`: `--url` is the global option naming keyward itself
//! (and `--token` the caller's secret), so no verb here defines either.

use anyhow::bail;
use keyward_client::ListParams;
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, EventType, WebhookPatch, WebhookView,
};
use keyward_core::WebhookId;

use super::table::{self, Table};
use super::{emit, print_json, Ctx, PageArgs};

/// Webhook verbs.
#[derive(clap::Subcommand, Debug)]
pub enum WebhookCmd {
    /// Subscribe a URL to events; the signing secret is shown once.
    Create(CreateArgs),
    /// List the workspace's subscriptions (never their secrets).
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one subscription.
    #[command(alias = "get")]
    Show {
        /// Webhook id (`whk_…`).
        id: WebhookId,
    },
    /// Change a subscription's URL, events, description, or enable / disable it.
    Update(UpdateArgs),
    /// Delete a subscription with its deliveries.
    Delete {
        /// Webhook id (`whk_…`).
        id: WebhookId,
    },
    /// Replace the signing secret; the new one is shown once and the old one stops at once.
    RotateSecret {
        /// Webhook id (`whk_…`).
        id: WebhookId,
    },
    /// A subscription's delivery log: every attempt, oldest first.
    Deliveries {
        /// Webhook id (`whk_…`).
        id: WebhookId,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `webhook create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Where deliveries are POSTed (`http://…` or `https://…`).
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Deliver only these event types (repeatable or comma-separated); all when absent.
    #[arg(long = "event", value_name = "EVENT", value_delimiter = ',', value_parser = event_type)]
    events: Vec<EventType>,
    /// Free text.
    #[arg(long)]
    description: Option<String>,
    /// Create it disabled: it gets no deliveries until `webhook update --enable`.
    #[arg(long)]
    disabled: bool,
}

/// `webhook update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Webhook id (`whk_…`).
    id: WebhookId,
    /// New delivery URL.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Deliver only these event types from now on (repeatable or comma-separated).
    #[arg(
        long = "event",
        value_name = "EVENT",
        value_delimiter = ',',
        value_parser = event_type,
        conflicts_with = "all_events"
    )]
    events: Vec<EventType>,
    /// Deliver every event type.
    #[arg(long)]
    all_events: bool,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// Resume deliveries.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Stop deliveries (events meanwhile are not delivered later).
    #[arg(long)]
    disable: bool,
}

/// Parses an event type name (`token.revoked`), listing the known ones when it is not one.
fn event_type(s: &str) -> Result<EventType, String> {
    EventType::parse(s.trim()).ok_or_else(|| {
        let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!("not an event type; known: {}", known.join(", "))
    })
}

fn names(types: Vec<EventType>) -> Vec<String> {
    types.into_iter().map(|t| t.as_str().to_owned()).collect()
}

pub(crate) async fn run(cmd: WebhookCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        WebhookCmd::Create(a) => {
            let created = client.create_webhook(&create_request(a)).await?;
            show_created(ctx, &created)
        }
        WebhookCmd::List { page } => {
            let limit = page.limit;
            let listed = page
                .fetch(|cursor| {
                    let params = ListParams { limit, cursor };
                    async move { client.list_webhooks(&params).await }
                })
                .await?;
            ctx.show_page(&listed, list_table)
        }
        WebhookCmd::Show { id } => ctx.show(&client.webhook(id).await?, details),
        WebhookCmd::Update(a) => {
            let id = a.id;
            let patch = patch(a)?;
            ctx.show(&client.update_webhook(id, &patch).await?, details)
        }
        WebhookCmd::Delete { id } => {
            client.delete_webhook(id).await?;
            ctx.done(&format!("Deleted webhook {id}."))
        }
        WebhookCmd::RotateSecret { id } => {
            let rotated = client.rotate_webhook_secret(id).await?;
            show_created(ctx, &rotated)
        }
        WebhookCmd::Deliveries { id, page } => {
            let limit = page.limit;
            let listed = page
                .fetch(|cursor| {
                    let params = ListParams { limit, cursor };
                    async move { client.webhook_deliveries(id, &params).await }
                })
                .await?;
            ctx.show_page(&listed, attempts_table)
        }
    }
}

/// The body of `webhook create`.
fn create_request(a: CreateArgs) -> CreateWebhook {
    CreateWebhook {
        url: a.endpoint,
        event_types: (!a.events.is_empty()).then(|| names(a.events)),
        enabled: a.disabled.then_some(false),
        description: a.description,
    }
}

/// The PATCH body of `webhook update`; refuses an update that changes nothing.
fn patch(a: UpdateArgs) -> anyhow::Result<WebhookPatch> {
    let event_types = if a.all_events {
        Some(None)
    } else {
        (!a.events.is_empty()).then(|| Some(names(a.events)))
    };
    let enabled = match (a.enable, a.disable) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let patch = WebhookPatch {
        url: a.endpoint,
        event_types,
        enabled,
        description: a.description,
    };
    if patch == WebhookPatch::default() {
        bail!("nothing to change: give at least one option (see `keyward webhook update --help`)");
    }
    Ok(patch)
}

/// The answer to `create` and `rotate-secret`: the subscription, then its secret, once.
fn show_created(ctx: &Ctx, created: &CreatedWebhook) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(created);
    }
    emit(&details(&created.webhook).render())?;
    emit("")?;
    emit(&format!(
        "Signing secret (shown once, store it now): {}",
        created.secret
    ))
}

fn events(w: &WebhookView) -> String {
    match &w.event_types {
        None => "(all)".to_owned(),
        Some(ts) => {
            let names: Vec<_> = ts.iter().map(|t| t.as_str()).collect();
            table::list(&names)
        }
    }
}

fn list_table(hooks: &[WebhookView]) -> Table {
    let mut t = Table::new(&["ID", "URL", "EVENTS", "ENABLED", "DESCRIPTION"]);
    for w in hooks {
        t.row([
            w.id.to_string(),
            w.url.clone(),
            events(w),
            table::yes_no(w.enabled),
            w.description.clone(),
        ]);
    }
    t
}

fn details(w: &WebhookView) -> Table {
    Table::details([
        ("id", w.id.to_string()),
        ("url", w.url.clone()),
        ("events", events(w)),
        ("enabled", table::yes_no(w.enabled)),
        ("description", w.description.clone()),
        ("created at", table::time(Some(w.created_at))),
        ("updated at", table::time(Some(w.updated_at))),
    ])
}

fn attempts_table(attempts: &[DeliveryAttempt]) -> Table {
    let mut t = Table::new(&["AT", "EVENT", "TYPE", "ATTEMPT", "RESULT", "DELIVERY"]);
    for a in attempts {
        let result = match (a.succeeded, a.status_code, &a.error) {
            (true, Some(code), _) => format!("ok ({code})"),
            (_, Some(code), _) => format!("HTTP {code}"),
            (_, None, Some(e)) => e.clone(),
            _ => "-".to_owned(),
        };
        t.row([
            table::time(Some(a.at)),
            a.event_id.to_string(),
            a.event_type.as_str().to_owned(),
            a.attempt.to_string(),
            result,
            a.delivery_status.as_str().to_owned(),
        ]);
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: WebhookCmd,
    }

    const WHK: &str = "whk_0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<WebhookCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("webhook").chain(args.iter().copied())).map(|c| c.cmd)
    }

    fn update(args: &[&str]) -> anyhow::Result<WebhookPatch> {
        let all: Vec<&str> = ["update", WHK].iter().chain(args).copied().collect();
        match parse(&all).unwrap() {
            WebhookCmd::Update(a) => patch(a),
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn create_takes_events_and_checks_their_names() {
        let WebhookCmd::Create(a) = parse(&[
            "create",
            "--endpoint",
            "http://h/x",
            "--event",
            "token.revoked,token.leaked",
            "--event",
            "token.created",
        ])
        .unwrap() else {
            unreachable!()
        };
        let req = create_request(a);
        let names = req.event_types.unwrap();
        assert_eq!(names, ["token.revoked", "token.leaked", "token.created"]);
        assert_eq!(req.enabled, None);
        let WebhookCmd::Create(a) = parse(&["create", "--endpoint", "http://h/x"]).unwrap() else {
            unreachable!()
        };
        assert_eq!(create_request(a).event_types, None);
        assert!(parse(&[
            "create",
            "--endpoint",
            "http://h/x",
            "--event",
            "token.nope"
        ])
        .is_err());
    }

    #[test]
    fn update_sends_only_what_changes() {
        let p = update(&["--disable"]).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"enabled": false})
        );
        let p = update(&["--all-events", "--enable"]).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"event_types": null, "enabled": true})
        );
        let p = update(&["--event", "token.expired", "--endpoint", "http://h/y"]).unwrap();
        assert_eq!(p.event_types, Some(Some(vec!["token.expired".to_owned()])));
        assert!(update(&[]).is_err());
        assert!(parse(&["update", WHK, "--enable", "--disable"]).is_err());
        assert!(parse(&["update", WHK, "--all-events", "--event", "token.expired"]).is_err());
    }
}
