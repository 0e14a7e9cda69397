//! `hyperscale s3 serve` against the real clients people use: aws-cli (PyPI `awscli`)
//! and boto3, on one server per test binary (one test drives every step, so the
//! server starts once). Steps: buckets, a 100 MB multipart `cp` up and down
//! byte for byte, `ls` with prefixes, `rm`, presigned URLs, S3's exact error codes
//! (SignatureDoesNotMatch, NoSuchKey, InvalidBucketName, BadDigest), then a boto3
//! script for ranges, preconditions, metadata, copies, batch deletes, paginated
//! listings with delimiters, and multipart edge cases.
//!
//! aws-cli and boto3 are installed by `scripts/test`; without them this test fails
//! with a message saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{Guard, get, serve, wait_output};

pub(crate) struct S3 {
    _guard: Guard,
    pub(crate) endpoint: String,
    pub(crate) key: String,
    pub(crate) secret: String,
    dir: PathBuf,
}

impl S3 {
    /// `aws` with this server's endpoint and key (no config files of the machine).
    pub(crate) fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(&self.key, &self.secret, args)
    }

    fn aws_as(&self, key: &str, secret: &str, args: &[&str]) -> Output {
        let child = Command::new("aws")
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("no-credentials"),
            )
            .env("AWS_MAX_ATTEMPTS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run aws (scripts/test installs awscli)");
        wait_output(child, Duration::from_secs(300))
    }

    /// Runs a Python script (boto3; after [`PY_PRELUDE`]) with `S3_ENDPOINT` and this
    /// server's key in its environment; panics with its output unless it succeeds.
    pub(crate) fn python(&self, script: &str) -> Output {
        let child = Command::new("python3")
            .arg("-c")
            .arg(format!("{PY_PRELUDE}{script}"))
            .env("S3_ENDPOINT", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("no-credentials"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3 (scripts/test installs boto3)");
        let out = wait_output(child, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "python checks failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `aws args`; panics with its stderr unless it succeeds; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `aws args`, expects failure with S3 error `code` in its stderr.
    pub(crate) fn fails_with(&self, code: &str, out: Output) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "expected {code}, but it succeeded");
        assert!(err.contains(code), "expected {code}, got: {err}");
    }
}

fn start(dir: &Path) -> S3 {
    let data = dir.join("s3");
    let (key, secret) = crate::s3_harness::create_key(data.to_str().unwrap());
    let (guard, _lines, banner) = serve(
        [
            "s3",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--domain",
            "s3.localhost",
        ],
        Duration::from_secs(30),
    );
    let addr = banner
        .strip_prefix("s3 listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    S3 {
        _guard: guard,
        endpoint: format!("http://{addr}"),
        key,
        secret,
        dir: dir.to_path_buf(),
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

#[test]
fn aws_cli_and_boto3_work_against_hyperscale_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = start(tmp.path());
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();

    // Buckets.
    s3.ok(&["s3", "mb", "s3://photos"]);
    s3.ok(&["s3api", "head-bucket", "--bucket", "photos"]);
    assert!(s3.ok(&["s3", "ls"]).contains("photos"));
    s3.fails_with(
        "BucketAlreadyOwnedByYou",
        s3.aws(&["s3api", "create-bucket", "--bucket", "photos"]),
    );
    s3.fails_with(
        "InvalidBucketName",
        s3.aws(&["s3api", "create-bucket", "--bucket", "ab"]),
    );

    // 100 MB up and down (aws-cli switches to multipart at 8 MiB), byte for byte,
    // with versioning on.
    s3.ok(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "photos",
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    assert!(
        s3.ok(&["s3api", "get-bucket-versioning", "--bucket", "photos"])
            .contains("Enabled")
    );
    let big = bytes(7, 100_000_000);
    std::fs::write(p("big.bin"), &big).unwrap();
    s3.ok(&[
        "s3",
        "cp",
        "--only-show-errors",
        &p("big.bin"),
        "s3://photos/2026/big.bin",
    ]);
    s3.ok(&[
        "s3",
        "cp",
        "--only-show-errors",
        "s3://photos/2026/big.bin",
        &p("big.back"),
    ]);
    assert!(
        std::fs::read(p("big.back")).unwrap() == big,
        "100 MB round trip differs"
    );
    let head = s3.ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "photos",
        "--key",
        "2026/big.bin",
    ]);
    assert!(head.contains("\"ContentLength\": 100000000"), "{head}");
    assert!(
        head.contains("-12\\\""),
        "multipart ETag ends in -12 (8 MiB parts): {head}"
    );
    std::fs::remove_file(p("big.bin")).unwrap();
    std::fs::remove_file(p("big.back")).unwrap();

    // ls with prefixes.
    std::fs::write(p("small.txt"), b"hello, s3").unwrap();
    for key in ["2026/a.txt", "2026/jan/b.txt", "2025/c.txt", "top.txt"] {
        s3.ok(&[
            "s3",
            "cp",
            "--only-show-errors",
            &p("small.txt"),
            &format!("s3://photos/{key}"),
        ]);
    }
    let root = s3.ok(&["s3", "ls", "s3://photos/"]);
    assert!(
        root.contains("PRE 2025/") && root.contains("PRE 2026/") && root.contains("top.txt"),
        "{root}"
    );
    assert!(!root.contains("a.txt"), "{root}");
    let y2026 = s3.ok(&["s3", "ls", "s3://photos/2026/"]);
    assert!(
        y2026.contains("PRE jan/") && y2026.contains("a.txt") && y2026.contains("big.bin"),
        "{y2026}"
    );
    let all = s3.ok(&["s3", "ls", "--recursive", "s3://photos/"]);
    assert_eq!(all.lines().count(), 5, "{all}");

    // Presigned GET.
    let url = s3.ok(&[
        "s3",
        "presign",
        "s3://photos/top.txt",
        "--expires-in",
        "300",
    ]);
    let (status, body) = get(url.trim());
    assert_eq!((status, body.as_str()), (200, "hello, s3"));
    let (status, body) = get(&url.trim().replace("Signature=", "Signature=0"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");

    // rm: with versioning on, a delete marker hides the key; its versions remain.
    s3.ok(&["s3", "rm", "--only-show-errors", "s3://photos/top.txt"]);
    assert!(!s3.ok(&["s3", "ls", "s3://photos/"]).contains("top.txt"));
    let versions = s3.ok(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        "photos",
        "--prefix",
        "top.txt",
    ]);
    assert!(
        versions.contains("DeleteMarkers") && versions.contains("\"Versions\""),
        "{versions}"
    );

    // Errors, with S3's codes.
    s3.fails_with(
        "SignatureDoesNotMatch",
        s3.aws_as(
            &s3.key,
            "wrong-secret-wrong-secret-wrong-secret0",
            &["s3api", "list-buckets"],
        ),
    );
    s3.fails_with(
        "InvalidAccessKeyId",
        s3.aws_as(
            "HSNOSUCHKEY000000000",
            &s3.secret,
            &["s3api", "list-buckets"],
        ),
    );
    s3.fails_with(
        "NoSuchKey",
        s3.aws(&[
            "s3api",
            "get-object",
            "--bucket",
            "photos",
            "--key",
            "missing",
            &p("out"),
        ]),
    );
    // HEAD responses have no body: aws-cli reports the status.
    s3.fails_with(
        "404",
        s3.aws(&["s3api", "head-bucket", "--bucket", "no-such-bucket"]),
    );
    // The MD5 of other bytes: BadDigest, and nothing stored.
    s3.fails_with(
        "BadDigest",
        s3.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            "photos",
            "--key",
            "digest.txt",
            "--body",
            &p("small.txt"),
            "--content-md5",
            "1B2M2Y8AsgTpgAmY7PhCfg==",
        ]),
    );
    s3.fails_with(
        "404",
        s3.aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "digest.txt",
        ]),
    );
    s3.fails_with(
        "BucketNotEmpty",
        s3.aws(&["s3api", "delete-bucket", "--bucket", "photos"]),
    );

    // boto3: ranges, preconditions, metadata, copies, batch deletes, listings, multipart.
    let out = s3.python(BOTO3_CHECKS);
    assert!(String::from_utf8_lossy(&out.stdout).contains("boto3 checks passed"));

    // Bucket policies and anonymous access (on this server: one per test binary).
    crate::s3_policy::check(&s3, tmp.path());
    // `hyperscale bench s3` signs what this server verifies.
    crate::s3_bench::check(&s3);
    // UploadPartCopy and virtual-host-style addressing (boto3).
    let out = s3.python(crate::s3_copy_vhost::BOTO3_CHECKS);
    assert!(String::from_utf8_lossy(&out.stdout).contains("copy and vhost checks passed"));
}

/// What every boto3 script of these tests starts with: imports and `code(fn, ...)`,
/// the S3 error code a call fails with.
const PY_PRELUDE: &str = r#"
import hashlib, os, socket, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def code(fn, *a, **k):
    try:
        fn(*a, **k)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error")
"#;

const BOTO3_CHECKS: &str = r#"
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                  config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

s3.create_bucket(Bucket="docs")
data = bytes(range(256)) * 40  # 10240 bytes
put = s3.put_object(Bucket="docs", Key="a/b.bin", Body=data, ContentType="application/x-test",
                    Metadata={"owner": "ada"}, CacheControl="max-age=60")
etag = put["ETag"]
assert etag == '"%s"' % hashlib.md5(data).hexdigest(), etag

# Ranges.
assert s3.get_object(Bucket="docs", Key="a/b.bin", Range="bytes=100-199")["Body"].read() == data[100:200]
r = s3.get_object(Bucket="docs", Key="a/b.bin", Range="bytes=-10")
assert r["Body"].read() == data[-10:] and r["ContentRange"] == "bytes 10230-10239/10240", r["ContentRange"]
assert s3.get_object(Bucket="docs", Key="a/b.bin", Range="bytes=10000-")["Body"].read() == data[10000:]
assert code(s3.get_object, Bucket="docs", Key="a/b.bin", Range="bytes=20000-") == "InvalidRange"

# Headers and metadata.
h = s3.head_object(Bucket="docs", Key="a/b.bin")
assert h["ContentType"] == "application/x-test" and h["Metadata"] == {"owner": "ada"}, h
assert h["CacheControl"] == "max-age=60" and h["ContentLength"] == 10240, h

# Preconditions.
assert code(s3.get_object, Bucket="docs", Key="a/b.bin", IfNoneMatch=etag) == "304"
assert code(s3.get_object, Bucket="docs", Key="a/b.bin", IfMatch='"0000"') == "PreconditionFailed"
assert s3.get_object(Bucket="docs", Key="a/b.bin", IfMatch=etag)["Body"].read() == data

# Copies: metadata copied, or replaced.
s3.copy_object(Bucket="docs", Key="copy.bin", CopySource={"Bucket": "docs", "Key": "a/b.bin"})
c = s3.get_object(Bucket="docs", Key="copy.bin")
assert c["Body"].read() == data and c["Metadata"] == {"owner": "ada"} and c["ETag"] == etag
s3.copy_object(Bucket="docs", Key="copy.bin", CopySource="docs/a/b.bin", MetadataDirective="REPLACE",
               Metadata={"owner": "grace"}, ContentType="text/plain")
c = s3.head_object(Bucket="docs", Key="copy.bin")
assert c["Metadata"] == {"owner": "grace"} and c["ContentType"] == "text/plain", c
assert code(s3.copy_object, Bucket="docs", Key="x", CopySource="docs/nope") == "NoSuchKey"

# Limits.
assert code(s3.put_object, Bucket="docs", Key="k" * 1025, Body=b"x") == "KeyTooLongError"
assert code(s3.put_object, Bucket="docs", Key="m", Body=b"x", Metadata={"big": "v" * 3000}) == "MetadataTooLarge"
assert code(s3.get_object, Bucket="docs", Key="nope") == "NoSuchKey"
assert code(s3.get_object, Bucket="nobucket", Key="nope") == "NoSuchBucket"

# Paginated listing with a delimiter, across shards, V2 and V1.
for i in range(25):
    s3.put_object(Bucket="docs", Key="list/f%02d" % i, Body=b"x")
for d in range(3):
    for i in range(4):
        s3.put_object(Bucket="docs", Key="list/dir%d/g%d" % (d, i), Body=b"y")
keys, prefixes, token, pages = [], [], None, 0
while True:
    kw = dict(Bucket="docs", Prefix="list/", Delimiter="/", MaxKeys=7)
    if token:
        kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    pages += 1
    assert r["KeyCount"] <= 7
    keys += [o["Key"] for o in r.get("Contents", [])]
    prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
assert keys == ["list/f%02d" % i for i in range(25)], keys
assert prefixes == ["list/dir0/", "list/dir1/", "list/dir2/"], prefixes
assert pages == 4, pages
r = s3.list_objects_v2(Bucket="docs", Prefix="list/", StartAfter="list/f20")
assert [o["Key"] for o in r["Contents"]] == ["list/f21", "list/f22", "list/f23", "list/f24"], r["Contents"]
v1, marker = [], ""
while True:
    r = s3.list_objects(Bucket="docs", Prefix="list/", Delimiter="/", MaxKeys=5, Marker=marker)
    v1 += [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    if not r["IsTruncated"]:
        break
    marker = r["NextMarker"]
assert sorted(v1) == sorted(keys + prefixes), v1
assert code(s3.list_objects_v2, Bucket="docs", ContinuationToken="zz") == "InvalidArgument"

# Batch delete.
r = s3.delete_objects(Bucket="docs", Delete={"Objects": [{"Key": "list/f%02d" % i} for i in range(10)]})
assert len(r["Deleted"]) == 10
assert len(s3.list_objects_v2(Bucket="docs", Prefix="list/f")["Contents"]) == 15

# Multipart: S3's ETag, listings, ordering, small parts, abort.
part = os.urandom(5 << 20)
up = s3.create_multipart_upload(Bucket="docs", Key="mp.bin", Metadata={"kind": "mp"})
uid = up["UploadId"]
e1 = s3.upload_part(Bucket="docs", Key="mp.bin", UploadId=uid, PartNumber=1, Body=part)["ETag"]
e2 = s3.upload_part(Bucket="docs", Key="mp.bin", UploadId=uid, PartNumber=2, Body=b"tail")["ETag"]
assert [p["PartNumber"] for p in s3.list_parts(Bucket="docs", Key="mp.bin", UploadId=uid)["Parts"]] == [1, 2]
assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="docs")["Uploads"]] == [uid]
assert code(s3.upload_part, Bucket="docs", Key="mp.bin", UploadId=uid, PartNumber=10001, Body=b"x") == "InvalidArgument"
assert code(s3.complete_multipart_upload, Bucket="docs", Key="mp.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}) == "InvalidPartOrder"
assert code(s3.complete_multipart_upload, Bucket="docs", Key="mp.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]}) == "InvalidPart"
r = s3.complete_multipart_upload(Bucket="docs", Key="mp.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
want = hashlib.md5(hashlib.md5(part).digest() + hashlib.md5(b"tail").digest()).hexdigest() + "-2"
assert r["ETag"] == '"%s"' % want, (r["ETag"], want)
g = s3.get_object(Bucket="docs", Key="mp.bin")
assert g["Body"].read() == part + b"tail" and g["Metadata"] == {"kind": "mp"}
assert code(s3.list_parts, Bucket="docs", Key="mp.bin", UploadId=uid) == "NoSuchUpload"
small = s3.create_multipart_upload(Bucket="docs", Key="small.bin")["UploadId"]
s1 = s3.upload_part(Bucket="docs", Key="small.bin", UploadId=small, PartNumber=1, Body=b"a")["ETag"]
s2 = s3.upload_part(Bucket="docs", Key="small.bin", UploadId=small, PartNumber=2, Body=b"b")["ETag"]
assert code(s3.complete_multipart_upload, Bucket="docs", Key="small.bin", UploadId=small,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]}) == "EntityTooSmall"
s3.abort_multipart_upload(Bucket="docs", Key="small.bin", UploadId=small)
assert code(s3.abort_multipart_upload, Bucket="docs", Key="small.bin", UploadId=small) == "NoSuchUpload"
assert "Uploads" not in s3.list_multipart_uploads(Bucket="docs") or s3.list_multipart_uploads(Bucket="docs")["Uploads"] == []
assert code(s3.head_object, Bucket="docs", Key="small.bin") == "404"

# Versioning: versions, delete markers, reads and deletes by version id, suspension.
s3.create_bucket(Bucket="vers")
assert "Status" not in s3.get_bucket_versioning(Bucket="vers")
s3.put_object(Bucket="vers", Key="k", Body=b"before")  # the null version
s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
assert s3.get_bucket_versioning(Bucket="vers")["Status"] == "Enabled"
v1 = s3.put_object(Bucket="vers", Key="k", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket="vers", Key="k", Body=b"two")["VersionId"]
assert v1 != v2 and "null" not in (v1, v2)
assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"two"
assert s3.get_object(Bucket="vers", Key="k", VersionId=v1)["Body"].read() == b"one"
assert s3.get_object(Bucket="vers", Key="k", VersionId="null")["Body"].read() == b"before"
assert s3.head_object(Bucket="vers", Key="k", VersionId=v1)["VersionId"] == v1
r = s3.list_object_versions(Bucket="vers")
assert [(v["VersionId"], v["IsLatest"]) for v in r["Versions"]] == [(v2, True), (v1, False), ("null", False)], r["Versions"]
d = s3.delete_object(Bucket="vers", Key="k")
assert d["DeleteMarker"] is True and d["VersionId"] not in (v1, v2)
marker = d["VersionId"]
assert code(s3.get_object, Bucket="vers", Key="k") == "NoSuchKey"
assert code(s3.head_object, Bucket="vers", Key="k", VersionId=marker) == "405"
assert "Contents" not in s3.list_objects_v2(Bucket="vers")
r = s3.list_object_versions(Bucket="vers")
assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [(marker, True)]
assert len(r["Versions"]) == 3
# Paginated one entry at a time, the same entries.
seen, kw = [], {}
while True:
    r = s3.list_object_versions(Bucket="vers", MaxKeys=1, **kw)
    seen += [v["VersionId"] for v in r.get("Versions", []) + r.get("DeleteMarkers", [])]
    if not r["IsTruncated"]:
        break
    kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
assert seen == [marker, v2, v1, "null"], seen
# Deleting the marker by id brings the key back; deleting v2 makes v1 current.
s3.delete_object(Bucket="vers", Key="k", VersionId=marker)
assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"two"
s3.delete_object(Bucket="vers", Key="k", VersionId=v2)
assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"one"
assert code(s3.get_object, Bucket="vers", Key="k", VersionId=v2) == "NoSuchVersion"
# Suspended: new writes replace the null version.
s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Suspended"})
assert s3.put_object(Bucket="vers", Key="k", Body=b"s1").get("VersionId") in (None, "null")
s3.put_object(Bucket="vers", Key="k", Body=b"s2")
r = s3.list_object_versions(Bucket="vers")
assert [v["VersionId"] for v in r["Versions"]] == ["null", v1], r["Versions"]
assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"s2"
assert code(s3.delete_bucket, Bucket="vers") == "BucketNotEmpty"
for v in s3.list_object_versions(Bucket="vers")["Versions"]:
    s3.delete_object(Bucket="vers", Key="k", VersionId=v["VersionId"])
s3.delete_bucket(Bucket="vers")

# Empty the bucket, then delete it.
for o in s3.list_objects_v2(Bucket="docs")["Contents"]:
    s3.delete_object(Bucket="docs", Key=o["Key"])
s3.delete_bucket(Bucket="docs")
assert code(s3.head_bucket, Bucket="docs") == "404"
print("boto3 checks passed")
"#;
