//! UploadPartCopy (ranges, whole objects, S3's errors) and virtual-host-style
//! addressing (`BUCKET.s3.localhost:PORT`, the server runs with `--domain
//! s3.localhost`), both driven by boto3 on the server of [`crate::s3_clients`].
//! `*.localhost` does not resolve here, so the script maps it to 127.0.0.1 itself:
//! boto3 still sends and signs the virtual host in `Host`.

/// The boto3 script (run after the prelude of [`crate::s3_clients`]); it prints
/// `copy and vhost checks passed`.
pub(crate) const BOTO3_CHECKS: &str = r#"
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if isinstance(host, str) and (host == "s3.localhost" or host.endswith(".s3.localhost")):
        host = "127.0.0.1"
    return real_getaddrinfo(host, *a, **k)
socket.getaddrinfo = getaddrinfo

endpoint = os.environ["S3_ENDPOINT"]
cfg = lambda style: Config(retries={"max_attempts": 1}, s3={"addressing_style": style})
s3 = boto3.client("s3", endpoint_url=endpoint, config=cfg("path"))

# UploadPartCopy: a range of one object and all of another become the parts.
s3.create_bucket(Bucket="copies")
big = os.urandom(6 * 1024 * 1024 + 100)
small = os.urandom(1000)
s3.put_object(Bucket="copies", Key="big", Body=big)
s3.put_object(Bucket="copies", Key="small", Body=small)
up = s3.create_multipart_upload(Bucket="copies", Key="joined")["UploadId"]
first = 5 * 1024 * 1024
p1 = s3.upload_part_copy(Bucket="copies", Key="joined", UploadId=up, PartNumber=1,
                         CopySource={"Bucket": "copies", "Key": "big"},
                         CopySourceRange="bytes=0-%d" % (first - 1))
assert p1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(big[:first]).hexdigest(), p1
p2 = s3.upload_part_copy(Bucket="copies", Key="joined", UploadId=up, PartNumber=2,
                         CopySource={"Bucket": "copies", "Key": "small"})
assert p2["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(small).hexdigest(), p2
for bad, want in [("bytes=5-1", "InvalidArgument"), ("0-5", "InvalidArgument"),
                  ("bytes=0-%d" % len(big), "InvalidRange")]:
    got = code(s3.upload_part_copy, Bucket="copies", Key="joined", UploadId=up, PartNumber=3,
               CopySource={"Bucket": "copies", "Key": "big"}, CopySourceRange=bad)
    assert got == want, (bad, got)
assert code(s3.upload_part_copy, Bucket="copies", Key="joined", UploadId=up, PartNumber=3,
            CopySource={"Bucket": "copies", "Key": "absent"}) == "NoSuchKey"
assert code(s3.upload_part_copy, Bucket="copies", Key="joined", UploadId="0" * 32, PartNumber=3,
            CopySource={"Bucket": "copies", "Key": "big"}) == "NoSuchUpload"
parts = [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
         {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]
s3.complete_multipart_upload(Bucket="copies", Key="joined", UploadId=up,
                             MultipartUpload={"Parts": parts})
# The parts own their bytes: deleting the sources changes nothing.
s3.delete_object(Bucket="copies", Key="big")
s3.delete_object(Bucket="copies", Key="small")
assert s3.get_object(Bucket="copies", Key="joined")["Body"].read() == big[:first] + small

# Virtual-host style: the bucket is in the Host header, signed as such.
port = endpoint.rsplit(":", 1)[1]
vh = boto3.client("s3", endpoint_url="http://s3.localhost:%s" % port, config=cfg("virtual"))
vh.create_bucket(Bucket="vhosted")
vh.put_object(Bucket="vhosted", Key="dir/a.txt", Body=b"virtual")
assert vh.get_object(Bucket="vhosted", Key="dir/a.txt")["Body"].read() == b"virtual"
keys = [o["Key"] for o in vh.list_objects_v2(Bucket="vhosted")["Contents"]]
assert keys == ["dir/a.txt"], keys
assert code(vh.get_object, Bucket="nosuchbucket", Key="dir/a.txt") == "NoSuchBucket"
# The same object, path-style.
assert s3.get_object(Bucket="vhosted", Key="dir/a.txt")["Body"].read() == b"virtual"
vh.delete_object(Bucket="vhosted", Key="dir/a.txt")
vh.delete_bucket(Bucket="vhosted")
assert "vhosted" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
print("copy and vhost checks passed")
"#;
