//! Pages of the admin lists: `limit` (1–200, default 50) and an opaque `cursor` in, one page
//! of `{items, next_cursor}` out. Keyset paging on `(created_at, id)`; the store is asked for
//! one item more than the page holds, to learn whether there is a next page.

use keyward_core::DomainError;
use keyward_store::{Cursor, PageRequest};
use serde::Deserialize;

use crate::error::ApiError;

/// Items per page unless the caller asks otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 200;

/// `?limit=&cursor=`: which page a list operation answers.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Items per page (1–200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The store request: one more item than asked, to learn whether there is a next page.
    pub fn request(&self) -> Result<(PageRequest, usize), ApiError> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

/// Parses limit and cursor; returns the store request and the page size.
pub fn page_request(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(PageRequest, usize), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(DomainError::field(
            "INVALID_LIMIT",
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )
        .into());
    }
    let after = cursor
        .map(|c| {
            Cursor::decode(c).ok_or_else(|| {
                DomainError::field(
                    "INVALID_CURSOR",
                    "cursor",
                    "cursor is not one this API gave out",
                )
            })
        })
        .transpose()?;
    Ok((
        PageRequest {
            limit: limit + 1,
            after,
        },
        limit as usize,
    ))
}

/// Cuts the extra item off and names the cursor of the next page.
pub fn into_page<T, V>(
    mut items: Vec<T>,
    size: usize,
    cursor: impl Fn(&T) -> Cursor,
    view: impl Fn(T) -> V,
) -> keyward_core::api::Page<V> {
    let more = items.len() > size;
    items.truncate(size);
    let next_cursor = if more {
        items.last().map(|t| cursor(t).encode())
    } else {
        None
    };
    keyward_core::api::Page {
        items: items.into_iter().map(view).collect(),
        next_cursor,
    }
}
