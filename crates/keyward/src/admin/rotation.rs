//! `keyward token rotate|family` and `keyward user revoke-tokens`.

use anyhow::bail;
use chrono::{DateTime, Duration, Utc};
use keyward_core::api::{RevokedTokens, RotateToken, RotatedToken, TokenView};
use keyward_core::{TokenId, UserId};

use super::table::{self, Table};
use super::token::details;
use super::{args, emit, print_json, Ctx};

/// `token rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    /// Token id (`tok_…`).
    id: TokenId,
    /// How long the old secret keeps working: `0` (at once) or a duration such as 1h or 7d.
    #[arg(long, value_parser = grace)]
    grace: Duration,
    /// The new token's expiry, as an RFC 3339 time (default: the old token's lifetime from now).
    #[arg(long, value_parser = args::instant, conflicts_with = "expires_in")]
    expires_at: Option<DateTime<Utc>>,
    /// The new token's expiry as a duration from now, e.g. 90d.
    #[arg(long, value_parser = args::duration)]
    expires_in: Option<Duration>,
}

/// `0`, or a duration.
fn grace(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        Ok(Duration::zero())
    } else {
        args::duration(s)
    }
}

pub(crate) async fn rotate(a: RotateArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let Ok(grace_period_secs) = u64::try_from(a.grace.num_seconds()) else {
        bail!("the grace period cannot be negative");
    };
    let expires_at = match a.expires_in {
        Some(d) => Some(args::from_now(d)?),
        None => a.expires_at,
    };
    let req = RotateToken {
        grace_period_secs,
        expires_at,
    };
    let r = ctx.client.rotate_token(a.id, &req).await?;
    show_rotated(ctx, &r)
}

fn show_rotated(ctx: &Ctx, r: &RotatedToken) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(r);
    }
    emit(&details(&r.token).render())?;
    emit("")?;
    emit(&format!(
        "The old secret ({}…) works until {}.",
        r.previous.start,
        table::time(r.previous.expires_at)
    ))?;
    emit(&format!("Secret (shown once, store it now): {}", r.secret))
}

pub(crate) async fn family(id: TokenId, ctx: &Ctx) -> anyhow::Result<()> {
    let members = ctx.client.token_family(id).await?;
    ctx.show(&members, |m: &Vec<TokenView>| family_table(m))
}

fn family_table(members: &[TokenView]) -> Table {
    let mut t = Table::new(&["ID", "START", "STATUS", "CREATED", "EXPIRES", "REPLACES"]);
    for tok in members {
        t.row([
            tok.id.to_string(),
            format!("{}…", tok.start),
            format!("{:?}", tok.status).to_lowercase(),
            table::time(Some(tok.created_at)),
            table::time(tok.expires_at),
            table::or(tok.rotated_from, "-"),
        ]);
    }
    t
}

pub(crate) async fn revoke_all(id: UserId, ctx: &Ctx) -> anyhow::Result<()> {
    let done = ctx.client.revoke_user_tokens(id).await?;
    ctx.show(&done, |d: &RevokedTokens| {
        let mut t = Table::new(&["REVOKED"]);
        for id in &d.revoked {
            t.row([id.to_string()]);
        }
        if d.revoked.is_empty() {
            t.row(["(none: no usable tokens)".to_owned()]);
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_takes_zero_or_a_duration() {
        assert_eq!(grace("0"), Ok(Duration::zero()));
        assert_eq!(grace("2h"), Ok(Duration::hours(2)));
        assert!(grace("-1h").is_err());
        assert!(grace("soon").is_err());
    }
}
