//! (filled by the roles section's tests)
