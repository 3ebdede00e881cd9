//! Cursor pagination. Listings are ordered by creation time, then id; a cursor names the last
//! item seen, so pages stay stable while rows are added.

use chrono::{DateTime, Utc};

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Items to return at most.
    pub limit: u32,
    /// Start after this item.
    pub after: Option<Cursor>,
}

/// The position of one item in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The item's creation time.
    pub created_at: DateTime<Utc>,
    /// The item's id.
    pub id: uuid::Uuid,
}

impl Cursor {
    /// The opaque text form handed to API callers.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.timestamp_millis(),
            self.id.simple()
        )
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('.')?;
        Some(Self {
            created_at: DateTime::from_timestamp_millis(ms.parse().ok()?)?,
            id: uuid::Uuid::try_parse(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            id: uuid::Uuid::from_u128(42),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("garbage"), None);
    }
}
