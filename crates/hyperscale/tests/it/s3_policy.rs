//! Bucket policies and anonymous access, with aws-cli (`s3api put-bucket-policy` and
//! friends) and unsigned `curl` requests: anonymous reads only where a policy allows
//! `Principal: "*"`, an explicit Deny beating an Allow (and a signed key), malformed
//! and oversized policies refused with `MalformedPolicy`. Runs on the server of
//! [`crate::s3_clients`] (one server per test binary).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::wait_output;
use crate::s3_clients::S3;

/// `curl` without credentials: (status, body).
fn anonymous(method: &str, url: &str) -> (u16, String) {
    let child = Command::new("curl")
        .args([
            "-s",
            "-X",
            method,
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    let out = wait_output(child, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("curl prints the status");
    (
        code.trim().parse().expect("a status code"),
        body.to_string(),
    )
}

fn assert_denied(method: &str, url: &str) {
    let (status, body) = anonymous(method, url);
    assert_eq!(status, 403, "{method} {url}: {body}");
    if method != "HEAD" {
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    }
}

const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
     "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::web/public/*"]},
    {"Sid": "NotThese", "Effect": "Deny", "Principal": {"AWS": "*"},
     "Action": ["s3:Get*", "s3:DeleteObject"], "Resource": "arn:aws:s3:::web/public/blocked*"}
  ]
}"#;

/// The policy steps against `s3` (files go under `dir`).
pub(crate) fn check(s3: &S3, dir: &Path) {
    let file = dir.join("page.html");
    std::fs::write(&file, "<h1>hello</h1>").unwrap();
    let file = file.to_str().unwrap();
    s3.ok(&["s3", "mb", "s3://web"]);
    for key in ["public/index.html", "public/blocked.html", "private/a.html"] {
        s3.ok(&[
            "s3",
            "cp",
            "--only-show-errors",
            file,
            &format!("s3://web/{key}"),
        ]);
    }
    let url = |key: &str| format!("{}/web/{key}", s3.endpoint);

    // No policy: anonymous requests are refused; listing buckets too.
    assert_denied("GET", &url("public/index.html"));
    assert_denied("GET", &format!("{}/", s3.endpoint));
    s3.fails_with(
        "NoSuchBucketPolicy",
        s3.aws(&["s3api", "get-bucket-policy", "--bucket", "web"]),
    );

    // Malformed policies: S3's MalformedPolicy, nothing stored.
    for bad in [
        "{not json".to_string(),
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#.to_string(),
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::web/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#.to_string(),
        format!(r#"{{"Id":"{}","Statement":[]}}"#, "x".repeat(21 * 1024)),
    ] {
        s3.fails_with(
            "MalformedPolicy",
            s3.aws(&["s3api", "put-bucket-policy", "--bucket", "web", "--policy", &bad]),
        );
    }
    assert_denied("GET", &url("public/index.html"));

    // A public-read prefix with a Deny carved out of it.
    s3.ok(&[
        "s3api",
        "put-bucket-policy",
        "--bucket",
        "web",
        "--policy",
        POLICY,
    ]);
    let stored = s3.ok(&["s3api", "get-bucket-policy", "--bucket", "web"]);
    assert!(stored.contains("PublicRead"), "{stored}");
    let (status, body) = anonymous("GET", &url("public/index.html"));
    assert_eq!((status, body.as_str()), (200, "<h1>hello</h1>"));
    assert_eq!(anonymous("HEAD", &url("public/index.html")).0, 200);
    assert_denied("GET", &url("private/a.html"));
    assert_denied("GET", &url("public/blocked.html"));
    assert_denied("PUT", &url("public/new.html"));
    assert_denied("DELETE", &url("public/index.html"));
    assert_denied("GET", &format!("{}/web?list-type=2", s3.endpoint));
    // The Deny names everyone, signed keys included; the Allow adds nothing for them.
    let out = dir.join("out").to_string_lossy().into_owned();
    let signed_get =
        |key: &str| s3.aws(&["s3api", "get-object", "--bucket", "web", "--key", key, &out]);
    s3.fails_with("AccessDenied", signed_get("public/blocked.html"));
    assert!(signed_get("private/a.html").status.success());
    // A batch delete naming a denied key is denied as a whole (and deletes nothing).
    s3.fails_with(
        "AccessDenied",
        s3.aws(&[
            "s3api",
            "delete-objects",
            "--bucket",
            "web",
            "--delete",
            "Objects=[{Key=private/a.html},{Key=public/blocked.html}]",
        ]),
    );
    s3.ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "web",
        "--key",
        "private/a.html",
    ]);
    // Copying out of a denied source is denied too.
    s3.fails_with(
        "AccessDenied",
        s3.aws(&[
            "s3api",
            "copy-object",
            "--bucket",
            "web",
            "--key",
            "private/copy.html",
            "--copy-source",
            "web/public/blocked.html",
        ]),
    );

    // Removing the policy closes the bucket again.
    s3.ok(&["s3api", "delete-bucket-policy", "--bucket", "web"]);
    assert_denied("GET", &url("public/index.html"));
    assert!(signed_get("public/blocked.html").status.success());
}
