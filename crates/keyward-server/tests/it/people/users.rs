//! (filled by the users section's tests)
