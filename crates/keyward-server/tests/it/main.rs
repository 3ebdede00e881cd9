//! keyward-server's integration tests: the real application on `127.0.0.1:0`, driven through
//! the typed client, on SQLite and on PostgreSQL (each test runs once per backend).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin;
mod admin_rate_limit;
mod audit;
mod audit_chain;
mod browser;
mod change_requests;
mod contract;
mod delegation;
mod denials;
mod durability;
mod events;
mod expiry;
mod forward_auth;
mod forward_auth_proxies;
mod gateway;
mod inputs;
mod leak_signature;
mod leaks;
mod lifecycle;
mod limits;
mod people;
mod policy;
mod postgres_skip;
mod races;
mod request_log;
mod rotation;
mod scale_out;
mod secrecy;
mod shared_limits;
mod tenancy;
mod usage;
mod usage_unknown;
mod user_budgets;
mod verify;
mod verify_auth;
mod webhook_delivery;
mod webhook_safety;
