//! What the HTTP tests share: a shortener on a free port over a temp-dir
//! store, and a client that does not follow redirects.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shortener::{Config, Shortener};

/// A shortener serving on 127.0.0.1 at a free port.
pub struct Server {
    pub base: String,
    shutdown: service::Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            bind: addr,
            ..config
        };
        let shortener = Shortener::open(config).await.unwrap();
        let shutdown = service::Shutdown::new();
        let ctx = service::SystemContext::new(shutdown.clone());
        let task = tokio::spawn(shortener.serve(listener, ctx));
        Self {
            base: format!("http://{addr}"),
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub fn config(dir: &tempfile::TempDir) -> Config {
    Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn shorten(base: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/api/v1/data/shorten"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `GET url` without following redirects.
pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// The body of `GET url`.
pub async fn get_text(url: &str) -> String {
    get(url).await.text().await.unwrap()
}
