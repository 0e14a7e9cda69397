//! The supervisor runs systems together, reports their health over HTTP, and
//! stops them all on shutdown or on the first failure.

use std::time::Duration;

use service::{Shutdown, Supervisor, SystemInfo};

fn info(name: &str) -> SystemInfo {
    SystemInfo {
        name: name.into(),
        title: format!("test system {name}"),
        chapter: "test".into(),
        protocol: "none".into(),
        endpoint: "-".into(),
        link: None,
    }
}

async fn admin_listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    (listener, url)
}

#[tokio::test]
async fn healthz_is_503_until_every_system_is_up_then_shutdown_drains() {
    let shutdown = Shutdown::new();
    let mut supervisor = Supervisor::new(shutdown.clone());
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    supervisor.add(info("fast"), |ctx| async move {
        ctx.health.set_up();
        ctx.shutdown.cancelled().await;
        Ok(())
    });
    supervisor.add(info("slow"), |ctx| async move {
        let _ = release_rx.await;
        ctx.health.set_up();
        ctx.shutdown.cancelled().await;
        Ok(())
    });
    let (listener, url) = admin_listener().await;
    let running = tokio::spawn(supervisor.run(Some(listener), Duration::from_secs(2)));
    let client = reqwest::Client::new();
    let first = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(first.status(), 503, "one system still starting");
    let body = first.text().await.unwrap();
    assert!(body.contains("\"starting\""), "{body}");
    release_tx.send(()).unwrap();
    let mut status = 0;
    for _ in 0..100 {
        status = client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "all systems up");
    let metrics = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hyperscale_system_up{system=\"slow\"} 1"),
        "{metrics}"
    );
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok());
}

#[tokio::test]
async fn a_failing_system_stops_the_process_with_its_error() {
    let shutdown = Shutdown::new();
    let mut supervisor = Supervisor::new(shutdown.clone());
    supervisor.add(info("steady"), |ctx| async move {
        ctx.shutdown.cancelled().await;
        Ok(())
    });
    supervisor.add(info("broken"), |_ctx| async move {
        anyhow::bail!("disk on fire")
    });
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        supervisor.run(None, Duration::from_secs(1)),
    )
    .await
    .expect("run returns once a system fails");
    let text = format!("{:#}", result.unwrap_err());
    assert!(
        text.contains("broken failed") && text.contains("disk on fire"),
        "{text}"
    );
    assert!(
        shutdown.is_cancelled(),
        "the other systems were told to stop"
    );
}

#[tokio::test]
async fn drain_timeout_bounds_a_stuck_system() {
    let shutdown = Shutdown::new();
    let mut supervisor = Supervisor::new(shutdown.clone());
    supervisor.add(info("stuck"), |_ctx| async move {
        // Ignores shutdown entirely.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    shutdown.cancel();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        supervisor.run(None, Duration::from_millis(200)),
    )
    .await;
    assert!(result.expect("drain timeout ends the wait").is_ok());
}
