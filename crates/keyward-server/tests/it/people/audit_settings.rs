//! (filled by the audit_settings section's tests)
