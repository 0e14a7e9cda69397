//! The data-node protocol over a real socket: put, get, delete and heartbeat round
//! trips; a wrong cluster secret, an unknown verb and an oversized frame are refused
//! without the server allocating or serving anything; a corrupt record comes back as
//! [`Error::Corrupt`], never as bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use objstore::cluster::datanode::{self, DataNode, ServerConfig};
use objstore::cluster::wire::{self, Remote};
use objstore::{Error, Node, ObjectId};

use crate::support::small;

const SECRET: &[u8] = b"sixteen-plus-bytes-secret";

fn server() -> (tempfile::TempDir, Arc<Node>, std::net::SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path(), small(1 << 20)).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = ServerConfig {
        node_id: "dn-test".into(),
        zone: "rack-t".into(),
        secret: SECRET.to_vec(),
        connections_max: 8,
        idle_timeout_ms: 5_000,
        capacity_bytes: 1 << 30,
    };
    let n = node.clone();
    // The server thread lives as long as the test binary.
    std::thread::spawn(move || datanode::serve(listener, n, cfg));
    (dir, node, addr)
}

fn hello(s: &mut TcpStream, secret: &[u8]) -> u8 {
    let mut h = wire::MAGIC.to_vec();
    h.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    h.extend_from_slice(secret);
    s.write_all(&h).unwrap();
    let mut st = [9u8];
    s.read_exact(&mut st).unwrap();
    st[0]
}

#[test]
fn verbs_round_trip_over_the_socket() {
    let (_dir, node, addr) = server();
    let r = Remote::new(addr, SECRET.to_vec(), 1_000, 5_000);
    let id = ObjectId::generate();
    r.put(id, b"over the wire").unwrap();
    assert_eq!(
        node.get(id, ..).unwrap().as_deref(),
        Some(&b"over the wire"[..])
    );
    assert_eq!(
        DataNode::get(&r, id).unwrap().as_deref(),
        Some(&b"over the wire"[..])
    );
    let info = r.ping().unwrap();
    assert_eq!(
        (info.node_id.as_str(), info.zone.as_str(), info.objects),
        ("dn-test", "rack-t", 1)
    );
    assert!(DataNode::delete(&r, id).unwrap());
    assert!(!DataNode::delete(&r, id).unwrap());
    assert_eq!(DataNode::get(&r, id).unwrap(), None);
}

#[test]
fn a_wrong_secret_is_refused() {
    let (_dir, node, addr) = server();
    let r = Remote::new(addr, b"not-the-cluster-secret".to_vec(), 1_000, 5_000);
    let e = r.put(ObjectId::generate(), b"x").unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(ref m) if m.contains("refused")),
        "{e}"
    );
    assert_eq!(node.stats().objects, 0);
    // A secret longer than the limit is refused before it is read.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut h = wire::MAGIC.to_vec();
    h.extend_from_slice(&u16::MAX.to_be_bytes());
    s.write_all(&h).unwrap();
    let mut st = [9u8];
    s.read_exact(&mut st).unwrap();
    assert_eq!(st[0], wire::status::BAD_REQUEST);
}

#[test]
fn unknown_verbs_and_oversized_frames_are_refused() {
    let (_dir, node, addr) = server();
    let mut s = TcpStream::connect(addr).unwrap();
    assert_eq!(hello(&mut s, SECRET), wire::status::OK);
    wire::write_frame(&mut s, &[77u8; 17], b"").unwrap();
    let mut st = [9u8];
    s.read_exact(&mut st).unwrap();
    assert_eq!(st[0], wire::status::BAD_REQUEST);
    wire::read_payload(&mut s).unwrap();
    // A frame claiming 4 GiB: the server closes the connection without allocating.
    let mut head = vec![1u8];
    head.extend_from_slice(&[0u8; 16]);
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&head).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(node.stats().objects, 0);
}

#[test]
fn a_corrupt_record_is_an_error_not_bytes() {
    let (_dir, node, addr) = server();
    let r = Remote::new(addr, SECRET.to_vec(), 1_000, 5_000);
    let id = ObjectId::generate();
    r.put(id, &[7u8; 500]).unwrap();
    let file = std::fs::read_dir(node.path().join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[16 + 36 + 100] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(DataNode::get(&r, id), Err(Error::Corrupt { .. })));
}
