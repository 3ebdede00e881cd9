//! A TCP proxy the test controls, between a node and PostgreSQL. Cut, it drops every open
//! connection and every new one at once (the database "gone"); frozen, it keeps every
//! connection open and forwards nothing (a silently dropped network); restored, it forwards
//! again on the same port.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const UP: u8 = 0;
const CUT: u8 = 1;
const FROZEN: u8 = 2;

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    frozen: watch::Sender<bool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards `127.0.0.1:<port>` to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(UP));
        let (frozen, _) = watch::channel(false);
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (mode, links, frozen) = (mode.clone(), links.clone(), frozen.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let link = match mode.load(Ordering::Acquire) {
                        CUT => {
                            drop(client);
                            continue;
                        }
                        // Accepted, never answered.
                        FROZEN => tokio::spawn(async move {
                            let _held = client;
                            std::future::pending::<()>().await
                        }),
                        _ => {
                            let upstream = upstream.clone();
                            let mut freeze = frozen.subscribe();
                            tokio::spawn(async move {
                                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                                    return;
                                };
                                let froze = tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                                    r = freeze.wait_for(|f| *f) => r.is_ok(),
                                };
                                if froze {
                                    // Both sockets stay open; nothing moves any more.
                                    std::future::pending::<()>().await
                                }
                            })
                        }
                    };
                    let mut links = links.lock().unwrap();
                    links.retain(|l| !l.is_finished());
                    links.push(link);
                }
            }
        });
        Proxy {
            port,
            mode,
            frozen,
            links,
            accept,
        }
    }

    /// The database is gone: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::Release);
        self.drop_links();
    }

    /// The network silently drops everything: connections stay open, nothing arrives.
    pub fn freeze(&self) {
        self.mode.store(FROZEN, Ordering::Release);
        self.frozen.send_replace(true);
    }

    /// The database is back (frozen connections are closed, as a network coming back after
    /// the peers gave up on them would find them).
    pub fn restore(&self) {
        self.drop_links();
        self.frozen.send_replace(false);
        self.mode.store(UP, Ordering::Release);
    }

    fn drop_links(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
