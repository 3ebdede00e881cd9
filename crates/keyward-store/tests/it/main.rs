//! The store's conformance suite: every test is written once, against `Arc<dyn Store>`, and run
//! on both backends: SQLite (a fresh file per test) and PostgreSQL (a fresh schema per test,
//! so tests run in parallel without seeing each other).
//!
//! PostgreSQL is found through `KEYWARD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When nothing accepts connections at its host and
//! port, its half of each test is skipped with a numbered `SKIPPED on PostgreSQL` line written
//! past libtest's capture (so `cargo test` shows it), or fails when `CI=true`; any other
//! PostgreSQL error (login, missing database, migrations) fails the test.
//!
//! # Layout
//! - `support`: the `conformance!` macro, per-backend set-up and clean-up, pagination and error
//!   helpers.
//! - `fixtures`: builders of domain objects, millisecond normalisation.
//! - one module per area: `audit` (the trail and its chain), `workspaces`, `users`, `roles`, `catalogue`, `tokens`,
//!   `verification`, `isolation` (one workspace cannot see or change another's objects),
//!   `round_trip` (timestamps, JSON), `concurrency` (writes from several connections),
//!   `events` (webhooks, the outbox, delivery claims and expiry notices), `usage` (usage
//!   batches, aggregates, last use, roll-up and pruning) and `people` (credentials, TOTP
//!   steps, recovery codes, invitations, sessions) and `change_requests` (two-person approval:
//!   approvals, decisions, applying a change with its target's versioned update).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
mod fixtures;

mod audit;
mod catalogue;
mod change_requests;
mod concurrency;
mod events;
mod isolation;
mod legacy;
mod people;
mod postgres_skip;
mod roles;
mod rotation;
mod round_trip;
mod tokens;
mod usage;
mod users;
mod verification;
mod versions;
mod workspaces;
