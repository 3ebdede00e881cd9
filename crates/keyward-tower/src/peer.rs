//! The connection's peer address, as the layer reads it from request extensions.

use std::net::SocketAddr;

/// The peer address of the connection a request came on, as a request extension; for
/// servers that are not axum (insert it where the connection is accepted) or tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The peer address of `extensions`: [`PeerAddr`], else axum's `ConnectInfo<SocketAddr>`
/// (feature `axum`), else a plain `SocketAddr`.
pub fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(a)) = extensions.get::<PeerAddr>() {
        return Some(*a);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(a)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*a);
    }
    extensions.get::<SocketAddr>().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_extension_present_wins() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2".parse().unwrap();
        let mut e = http::Extensions::new();
        assert_eq!(peer_addr(&e), None);
        e.insert(b);
        assert_eq!(peer_addr(&e), Some(b));
        #[cfg(feature = "axum")]
        {
            let c: SocketAddr = "10.0.0.3:3".parse().unwrap();
            e.insert(axum::extract::ConnectInfo(c));
            assert_eq!(peer_addr(&e), Some(c));
        }
        e.insert(PeerAddr(a));
        assert_eq!(peer_addr(&e), Some(a));
    }
}
