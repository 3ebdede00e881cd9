//! The embedded layer against a real keyward server: the server (on SQLite, and on PostgreSQL
//! when it answers) sets up permissions, roles, users and tokens through its admin API; an
//! axum app protected by [`keyward_tower::KeywardLayer`] over the same store admits requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layer;
mod shared_limits;
mod support;
