//! The change feed: how a node learns that another node changed something a cached
//! verification was compiled from.
//!
//! On PostgreSQL a trigger on each such table announces the change with `pg_notify` inside the
//! changing transaction (migration 14), so a change is announced exactly when it commits, by
//! whoever makes it. A node follows the announcements with one listening connection
//! ([`ChangeFeed`]). A notification sent while that connection was down is lost for good, so
//! after any (re)connection the feed says [`FeedEvent::Resumed`]: the follower must then
//! treat everything it cached as unconfirmed. SQLite serves one node and has no feed.

use async_trait::async_trait;
use keyward_core::{RoleId, TokenId, UserId, WorkspaceId};

/// The channel the triggers announce on.
pub const CHANNEL: &str = "keyward_changes";

/// What changed: the entries compiled from it must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A token (revoked, rotated, edited, deleted, expired early).
    Token(TokenId),
    /// A user (disabled, role changed, deleted): every token it owns.
    User(UserId),
    /// A role (permissions, allowlist, limit): every token acting with it.
    Role(RoleId),
    /// A workspace's settings or its catalogue: every token in it.
    Workspace(WorkspaceId),
}

impl Change {
    /// Reads a trigger's payload (`<schema> <kind> <id> <micros>`), if it is about `schema`:
    /// the change, and when it was made (Unix microseconds) if the payload says. Another
    /// schema's announcement (another deployment sharing the database), or a payload this
    /// version does not know, is `None`.
    pub fn parse(payload: &str, schema: &str) -> Option<(Change, Option<i64>)> {
        let mut parts = payload.split(' ');
        if parts.next()? != schema {
            return None;
        }
        let kind = parts.next()?;
        // Ids are stored as plain UUIDs.
        let id = uuid::Uuid::try_parse(parts.next()?).ok()?;
        let at = parts.next().and_then(|t| t.parse().ok());
        let change = match kind {
            "token" => Change::Token(TokenId::from_uuid(id)),
            "user" => Change::User(UserId::from_uuid(id)),
            "role" => Change::Role(RoleId::from_uuid(id)),
            "workspace" => Change::Workspace(WorkspaceId::from_uuid(id)),
            _ => return None,
        };
        Some((change, at))
    }
}

/// What the feed reports next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEvent {
    /// Something changed.
    Changed {
        /// What.
        change: Change,
        /// When the change was made, in Unix microseconds by the database's clock, if known.
        announced_us: Option<i64>,
    },
    /// The feed is (again) listening after a time in which announcements may have been lost:
    /// the first connection, or a reconnection after the connection dropped.
    Resumed,
}

/// A stream of announcements. Each call waits for the next one.
#[async_trait]
pub trait ChangeFeed: Send {
    /// The next event; an error when the database cannot be reached (the caller waits a
    /// little and calls again, which reconnects).
    async fn next(&mut self) -> crate::Result<FeedEvent>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_this_schema_are_read_and_others_ignored() {
        let token: TokenId = "tok_0123456789abcdef0123456789abcdef".parse().unwrap();
        let ws: WorkspaceId = "ws_0123456789abcdef0123456789abcdef".parse().unwrap();
        let (token_u, ws_u) = (token.uuid(), ws.uuid());
        assert_eq!(
            Change::parse(&format!("kw token {token_u} 1700000000000000"), "kw"),
            Some((Change::Token(token), Some(1_700_000_000_000_000)))
        );
        assert_eq!(
            Change::parse(&format!("kw workspace {ws_u}"), "kw"),
            Some((Change::Workspace(ws), None))
        );
        assert_eq!(Change::parse(&format!("other token {token_u}"), "kw"), None);
        assert_eq!(Change::parse(&format!("kw token {token}"), "kw"), None);
        assert_eq!(Change::parse("kw token nonsense", "kw"), None);
        assert_eq!(Change::parse(&format!("kw gadget {token_u}"), "kw"), None);
        assert_eq!(Change::parse("kw", "kw"), None);
    }
}
