//! Typed identifiers. Each is a UUID shown with a type prefix (`tok_9f…`), so an id of one kind
//! can never be passed where another is expected, in Rust or over the API.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// The prefix this kind of id is shown with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn random(rng: &mut impl rand_core::RngCore) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            /// Wraps a UUID read from storage.
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            /// The UUID, for storage.
            pub fn uuid(&self) -> uuid::Uuid {
                self.0
            }

            /// Parses `prefix_<32 hex>`; the prefix must be this kind's. The refusal never
            /// echoes the input: a token secret pasted where an id belongs must not come back.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                let invalid = || {
                    DomainError::rule(
                        "INVALID_ID",
                        concat!("not a ", stringify!($name), " (expected ", $prefix, "_ and 32 hex digits)"),
                    )
                };
                let hex = s
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or_else(invalid)?;
                uuid::Uuid::try_parse(hex).map(Self).map_err(|_| invalid())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        $crate::schema::string_schema!(
            $name,
            concat!("^", $prefix, "_[0-9a-f]{32}$"),
            concat!("a ", stringify!($name), ": `", $prefix, "_` and 32 hex digits")
        );

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A workspace (tenant).
    WorkspaceId, "ws"
);
typed_id!(
    /// A user, human or service.
    UserId, "usr"
);
typed_id!(
    /// A role.
    RoleId, "rol"
);
typed_id!(
    /// A token (not its secret).
    TokenId, "tok"
);
typed_id!(
    /// A webhook subscription.
    WebhookId, "whk"
);
typed_id!(
    /// An event (the `webhook-id` header of its deliveries).
    EventId, "msg"
);
typed_id!(
    /// One event's delivery to one subscription.
    DeliveryId, "dlv"
);
typed_id!(
    /// A request for a security change that needs a second person's approval.
    ChangeRequestId, "chg"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_kinds() {
        let id = TokenId::random(&mut rand_core::OsRng);
        let shown = id.to_string();
        assert!(shown.starts_with("tok_"));
        assert_eq!(TokenId::parse(&shown), Ok(id));
        let err = UserId::parse(&shown).unwrap_err();
        assert_eq!(err.code, "INVALID_ID");
        assert!(TokenId::parse("tok_nothex").is_err());
    }
}
