//! Systems that can be stopped and started again while the process runs:
//! `POST /systems/{name}/stop` and `POST /systems/{name}/start` on the admin
//! endpoint. `hyperscale up` runs every system in one process; stopping one
//! of them (and seeing the metrics server notice, an alert fire and resolve
//! when it returns) needs a way to take one down without the others.
//!
//! A restartable system is added with a start function called on every
//! start ([`crate::Supervisor::add_restartable`]). Stopping cancels a token
//! of that run only (a child of the process's shutdown), waits up to
//! [`STOP_DRAIN`] for the run to return, and marks the system `Down`
//! ("stopped"); starting calls the start function again. The process's
//! shutdown still stops everything, and a run that fails still stops the
//! process (the supervisor's fail-fast policy).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::watch;

use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::supervisor::SystemContext;

/// How long a stopped run may take to drain before it is dropped.
pub const STOP_DRAIN: Duration = Duration::from_secs(5);

/// The reason a stopped system reports.
pub const STOPPED: &str = "stopped (POST /systems/NAME/start on the admin endpoint starts it)";

/// Whether each restartable system should run; clones share the switches.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    wanted: Arc<Mutex<BTreeMap<String, watch::Sender<bool>>>>,
}

impl Switches {
    /// Registers `name` (wanted running); the receiver follows its switch.
    pub(crate) fn register(&self, name: &str) -> watch::Receiver<bool> {
        let (send, receive) = watch::channel(true);
        self.lock().insert(name.to_string(), send);
        receive
    }

    /// Asks `name` to run (`true`) or stop; `false` if no restartable system
    /// has that name.
    pub fn set(&self, name: &str, running: bool) -> bool {
        match self.lock().get(name) {
            Some(switch) => {
                switch.send_replace(running);
                true
            }
            None => false,
        }
    }

    /// The names of the restartable systems.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<bool>>> {
        self.wanted
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Runs a restartable system until the process's `shutdown`: start, run
/// until the switch says stop (or the run ends), wait for the switch to say
/// start, and again. An error of a run is returned (the process stops).
pub(crate) async fn run<F, Fut>(
    mut start: F,
    shutdown: Shutdown,
    health: Health,
    mut switch: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    F: FnMut(SystemContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        let run_token = shutdown.child_token();
        let ctx = SystemContext {
            shutdown: run_token.clone(),
            health: health.clone(),
        };
        let mut running = std::pin::pin!(start(ctx));
        let result = tokio::select! {
            result = &mut running => result,
            () = wanted(&mut switch, false) => {
                run_token.cancel();
                match tokio::time::timeout(STOP_DRAIN, &mut running).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("a stopped system did not drain in {STOP_DRAIN:?}; dropped");
                        Ok(())
                    }
                }
            }
        };
        if shutdown.is_cancelled() {
            return result;
        }
        result?;
        health.set_down(STOPPED);
        // Waits for the next "start" (a run that ended by itself waits too:
        // only a request starts it again, never a loop of restarts).
        switch.borrow_and_update();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = switch.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if *switch.borrow_and_update() {
                        break;
                    }
                }
            }
        }
    }
}

/// Returns once the switch says `running`; never if the switches are gone
/// (no admin endpoint: nothing can stop the system).
async fn wanted(switch: &mut watch::Receiver<bool>, running: bool) {
    if switch.wait_for(|wanted| *wanted == running).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `POST /systems/{name}/stop` and `POST /systems/{name}/start`: 202 when
/// asked, 404 (naming the systems that can) for any other name. With a
/// `token`, both need `Authorization: Bearer <token>` (401 otherwise).
pub fn router(switches: Switches, token: Option<String>) -> Router {
    Router::new()
        .route("/systems/{name}/stop", post(stop))
        .route("/systems/{name}/start", post(start))
        .with_state(Admin {
            switches,
            token: token.map(Arc::from),
        })
}

/// What the stop/start routes read.
#[derive(Clone)]
struct Admin {
    switches: Switches,
    token: Option<Arc<str>>,
}

async fn stop(
    State(admin): State<Admin>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    flip(&admin, &headers, &name, false)
}

async fn start(
    State(admin): State<Admin>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    flip(&admin, &headers, &name, true)
}

fn flip(admin: &Admin, headers: &HeaderMap, name: &str, running: bool) -> Response {
    if let Some(token) = &admin.token
        && !crate::auth::bearer_matches(headers, token)
    {
        let body = "stopping and starting systems needs the admin token: \
                    Authorization: Bearer <admin.token>\n";
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    let switches = &admin.switches;
    if switches.set(name, running) {
        let verb = if running { "starting" } else { "stopping" };
        (StatusCode::ACCEPTED, format!("{verb} {name}\n")).into_response()
    } else {
        let names = switches.names().join(", ");
        let body = format!("no restartable system named {name:?}; these are: {names}\n");
        (StatusCode::NOT_FOUND, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::health::Status;

    /// Waits (bounded) until `done` holds.
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not reached in 5 s");
    }

    /// Stop ends the run and marks the system down; start runs it again;
    /// the process's shutdown ends it; an unknown name is refused.
    #[tokio::test]
    async fn stop_and_start_rerun_the_system() {
        let shutdown = Shutdown::new();
        let health = Health::default();
        let switches = Switches::default();
        let switch = switches.register("kv");
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let start = move |ctx: SystemContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                ctx.health.set_up();
                ctx.shutdown.cancelled().await;
                Ok(())
            }
        };
        let task = tokio::spawn(run(start, shutdown.clone(), health.clone(), switch));
        until(|| health.status() == Status::Up).await;
        assert!(switches.set("kv", false));
        until(|| matches!(health.status(), Status::Down(_))).await;
        assert_eq!(health.status(), Status::Down(STOPPED.into()));
        assert!(switches.set("kv", true));
        until(|| starts.load(Ordering::SeqCst) == 2 && health.status() == Status::Up).await;
        assert!(!switches.set("nope", false));
        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }
}
