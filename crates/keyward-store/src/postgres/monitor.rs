//! The breaker's monitor: pings PostgreSQL on a connection of its own and opens or closes the
//! circuit by the answer (see [`crate::breaker`]).

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::breaker::{Breaker, PROBE_TIMEOUT};

/// The running monitor; stops when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Monitor(JoinHandle<()>);

impl Drop for Monitor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Monitor {
    /// Starts pinging with `options`.
    pub(super) fn start(options: PgConnectOptions, breaker: Arc<Breaker>) -> Monitor {
        Monitor(tokio::spawn(async move {
            let mut conn = None;
            let mut failed = 0u32;
            loop {
                let suspected = breaker.next_probe().await;
                match probe(&options, &mut conn).await {
                    Ok(()) => {
                        failed = 0;
                        breaker.close();
                    }
                    Err(why) => {
                        failed += 1;
                        if suspected || failed >= 2 {
                            breaker.trip(&why);
                        }
                    }
                }
            }
        }))
    }
}

/// One ping, on the kept connection or a new one. A kept connection that fails is replaced
/// once at once, so a connection the server closed (a restart, an idle cut) is not taken for
/// an outage.
async fn probe(options: &PgConnectOptions, conn: &mut Option<PgConnection>) -> Result<(), String> {
    if let Some(c) = conn.as_mut() {
        if matches!(timeout(PROBE_TIMEOUT, c.ping()).await, Ok(Ok(()))) {
            return Ok(());
        }
        *conn = None;
    }
    let mut fresh = match timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("connecting: {e}")),
        Err(_) => return Err(format!("no connection within {PROBE_TIMEOUT:?}")),
    };
    match timeout(PROBE_TIMEOUT, fresh.ping()).await {
        Ok(Ok(())) => {
            *conn = Some(fresh);
            Ok(())
        }
        Ok(Err(e)) => Err(format!("ping: {e}")),
        Err(_) => Err(format!("no answer to a ping within {PROBE_TIMEOUT:?}")),
    }
}
