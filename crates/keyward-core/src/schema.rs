//! OpenAPI schemas of the types whose JSON form is written by hand (ids, permissions, IP
//! lists, secrets): each is a string, or a list of strings, with the pattern the parser
//! accepts, so the published contract refuses what the server refuses. The derived types get
//! theirs from `#[derive(utoipa::ToSchema)]`.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A string schema with `pattern` and `description`.
pub fn string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// Implements `PartialSchema` and `ToSchema` for a type shown as a string.
macro_rules! string_schema {
    ($t:ty, $pattern:expr, $description:expr) => {
        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::string($pattern, $description)
            }
        }
        impl utoipa::ToSchema for $t {}
    };
}
pub(crate) use string_schema;

/// Permission names: dotted lower-case resource segments, a colon, an action.
pub const PERMISSION_PATTERN: &str = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*:[a-z0-9_-]+$";
/// Permission patterns: as [`PERMISSION_PATTERN`], with `*` allowed in place of segments.
pub const PATTERN_PATTERN: &str = r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?:([a-z0-9_-]+|\*)|[a-z0-9_-]+(\.[a-z0-9_-]+)*\.\*|\*:[a-z0-9_-]+)$";

string_schema!(
    crate::Permission,
    PERMISSION_PATTERN,
    "a permission, `resource:action` (e.g. `orders:read`, `keyward.tokens:create`)"
);
string_schema!(
    crate::PermissionPattern,
    PATTERN_PATTERN,
    "a permission or a wildcard pattern (`*`, `orders:*`, `billing.*:read`, `keyward.*`)"
);
string_schema!(
    crate::events::WebhookSecret,
    r"^whsec_[A-Za-z0-9+/=]+$",
    "a webhook signing secret, shown once"
);

impl utoipa::PartialSchema for crate::ip::IpAllowlist {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("an address or CIDR block, canonical")),
            )
            .description(Some("an IP allowlist; empty restricts nothing"))
            .into()
    }
}
impl utoipa::ToSchema for crate::ip::IpAllowlist {}
