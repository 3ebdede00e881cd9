//! `keyward verify`: asks keyward whether a token may be used, as a product's backend would,
//! authenticated by the global `--token` (`KEYWARD_TOKEN`), which must hold
//! `keyward.verify:tokens`.

use anyhow::bail;
use keyward_core::api::{VerifyRequest, VerifyResponse};

use super::args::{self, SecretArg};
use super::table::{self, Table};
use super::Ctx;

/// `verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The token's secret; `-` reads it from standard input, keeping it out of the process list
    /// and the shell history.
    // Not named `token`: that id belongs to the global `--token` option.
    #[arg(value_name = "TOKEN", value_parser = args::secret)]
    secret: SecretArg,
    /// A permission the request needs (repeatable; all must be granted).
    #[arg(long = "permission", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// The client's IP address.
    #[arg(long)]
    ip: Option<String>,
    /// The request's HTTP method.
    #[arg(long)]
    method: Option<String>,
    /// The request's path.
    #[arg(long)]
    path: Option<String>,
}

pub(crate) async fn run(a: VerifyArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let req = VerifyRequest {
        token: a.secret.0.into(),
        ip: a.ip.map(Into::into),
        method: a.method.map(Into::into),
        path: a.path.map(Into::into),
        permissions: (!a.permissions.is_empty())
            .then(|| a.permissions.into_iter().map(Into::into).collect()),
    };
    let answer = ctx.client.verify(&req).await?;
    ctx.show(&answer, details)?;
    if !answer.valid {
        // A non-zero exit lets scripts use `keyward verify` as a check.
        bail!("token refused: {}", answer.code);
    }
    Ok(())
}

fn details(v: &VerifyResponse) -> Table {
    let mut pairs = vec![
        ("valid", table::yes_no(v.valid)),
        ("code", v.code.to_string()),
        ("message", v.message.clone()),
    ];
    let mut add = |key, value: Option<String>| {
        if let Some(value) = value {
            pairs.push((key, value));
        }
    };
    add("token", v.token_id.map(|t| t.to_string()));
    add("name", v.name.clone());
    add("workspace", v.workspace_id.map(|w| w.to_string()));
    add("owner", v.owner.as_ref().map(|o| o.id.to_string()));
    add(
        "role",
        v.role.as_ref().map(|r| format!("{} ({})", r.id, r.name)),
    );
    add("scope", v.scope.map(|s| s.as_str().to_owned()));
    add("permissions", v.permissions.as_deref().map(table::list));
    add("missing", v.missing_permissions.as_deref().map(table::list));
    add("metadata", v.metadata.as_ref().map(|m| m.to_string()));
    add("expires at", v.expires_at.map(|t| table::time(Some(t))));
    add(
        "refused by",
        v.refused_by.map(|l| format!("{} allowlist", l.as_str())),
    );
    add("retry after", v.retry_after.map(|s| format!("{s}s")));
    add(
        "rate limit",
        v.rate_limit.map(|r| {
            let per = r.per.map(|p| format!(" (per {p})")).unwrap_or_default();
            format!(
                "{} of {} left{per}, full again in {}s",
                r.remaining, r.limit, r.reset
            )
        }),
    );
    Table::details(pairs)
}

#[cfg(test)]
mod tests {
    use keyward_core::api::RateLimitState;
    use keyward_core::decision::IpLevel;
    use keyward_core::Code;

    use super::*;

    fn refused(code: Code) -> VerifyResponse {
        VerifyResponse {
            valid: false,
            code,
            message: "refused".to_owned(),
            token_id: None,
            workspace_id: None,
            name: None,
            owner: None,
            role: None,
            scope: None,
            permissions: None,
            missing_permissions: None,
            metadata: None,
            expires_at: None,
            refused_by: None,
            retry_after: None,
            rate_limit: None,
        }
    }

    #[test]
    fn access_policy_refusals_are_explained() {
        let plain = details(&refused(Code::NotFound)).render();
        assert!(
            !plain.contains("refused by") && !plain.contains("rate limit"),
            "{plain}"
        );

        let ip = VerifyResponse {
            refused_by: Some(IpLevel::Role),
            ..refused(Code::IpNotAllowed)
        };
        assert!(details(&ip)
            .render()
            .contains("refused by:  role allowlist"));

        let limited = VerifyResponse {
            retry_after: Some(2),
            rate_limit: Some(RateLimitState {
                limit: 60,
                remaining: 0,
                reset: 58,
                per: Some(keyward_core::RateLimitPer::User),
            }),
            ..refused(Code::RateLimited)
        };
        let shown = details(&limited).render();
        assert!(shown.contains("retry after:  2s"), "{shown}");
        assert!(
            shown.contains("rate limit:   0 of 60 left (per user), full again in 58s"),
            "{shown}"
        );
    }
}
