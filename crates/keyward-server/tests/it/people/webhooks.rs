//! (filled by the webhooks section's tests)
