//! The store's conformance suite: every test is written once, against `Arc<dyn Store>`, and run
//! on both backends: SQLite (a fresh file per test) and PostgreSQL (a fresh schema per test,
//! so tests run in parallel without seeing each other).
//!
//! PostgreSQL is found through `KEYWARD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, its half of each test
//! is skipped with a loud `SKIPPED:` line, or fails when `CI=true`.
//!
//! # Layout
//! - `support`: the `conformance!` macro, per-backend set-up and clean-up, pagination and error
//!   helpers.
//! - `fixtures`: builders of domain objects, millisecond normalisation.
//! - one module per area: `audit` (the trail and its chain), `workspaces`, `users`, `roles`, `catalogue`, `tokens`,
//!   `verification`, `isolation` (one workspace cannot see or change another's objects),
//!   `round_trip` (timestamps, JSON), `concurrency` (writes from several connections),
//!   `events` (webhooks, the outbox, delivery claims and expiry notices) and `usage` (usage batches, aggregates, last use, roll-up and pruning).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
mod fixtures;

mod audit;
mod catalogue;
mod concurrency;
mod events;
mod isolation;
mod legacy;
mod roles;
mod rotation;
mod round_trip;
mod tokens;
mod usage;
mod users;
mod verification;
mod versions;
mod workspaces;
