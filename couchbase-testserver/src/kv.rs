//! The key-value service: one task a connection, reading pipelined requests and answering each
//! in order. Bootstrap as the SDK does it (`docs/BinaryProtocol.md` "0x1f HELO", `docs/sasl.md`,
//! "0x89 Select bucket" and "0xb5 Get Cluster Config"), then GET, SET,
//! ADD, REPLACE, DELETE with CAS, flags and expiry, and sub-document multi-mutations.
//! The configuration JSON holds the fields the SDK's parser reads (`rev`, `nodesExt` with
//! each service's port, `clusterCapabilities`; for a bucket also `name`, `nodeLocator`,
//! `nodes` and the `vBucketServerMap`).

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frame::{self, frame_info, opcode, status, Request, Response, DATATYPE_JSON};
use crate::scram;
use crate::store::{expiry, Doc, Store};
use crate::subdoc;

/// HELLO features this server acknowledges (`docs/BinaryProtocol.md`, "0x1f HELO"): XERROR
/// (0x07), SELECT_BUCKET (0x08), JSON (0x0b), AltRequestSupport (0x10: flexible framing extras)
/// and PreserveTtl (0x14). Collections, snappy, sync replication and the rest stay off.
const FEATURES: [u16; 5] = [0x07, 0x08, 0x0b, 0x10, 0x14];
/// The largest document Couchbase stores (20 MiB).
const MAX_DOCUMENT: usize = 20 * 1024 * 1024;
/// vBuckets in the bucket's map (the client hashes keys to them; this one node owns all).
const VBUCKETS: usize = 64;

/// What every connection shares: the bucket, and the server's configuration with the ports it
/// actually bound.
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<Store>,
    pub config: crate::Config,
}

impl Shared {
    fn cluster_config(&self, bucket: bool) -> serde_json::Value {
        let mut config = json!({
            "rev": 1,
            "revEpoch": 1,
            "nodesExt": [{
                "hostname": self.config.host,
                "thisNode": true,
                "services": {"kv": self.config.kv_port, "mgmt": self.config.query_port, "n1ql": self.config.query_port},
            }],
            "clusterCapabilitiesVer": [1, 0],
            "clusterCapabilities": {"n1ql": ["enhancedPreparedStatements"]},
        });
        if bucket {
            let server = format!("{}:{}", self.config.host, self.config.kv_port);
            config["name"] = json!(self.config.bucket);
            config["uuid"] = json!("00000000000000000000000000000001");
            config["nodeLocator"] = json!("vbucket");
            config["bucketCapabilitiesVer"] = json!("");
            config["bucketCapabilities"] = json!([
                "xattr",
                "cbhello",
                "touch",
                "cccp",
                "nodesExt",
                "subdoc.ReplaceBodyWithXattr"
            ]);
            config["nodes"] = json!([{
                "hostname": format!("{}:{}", self.config.host, self.config.query_port),
                "ports": {"direct": self.config.kv_port},
            }]);
            config["vBucketServerMap"] = json!({
                "hashAlgorithm": "CRC",
                "numReplicas": 0,
                "serverList": [server],
                "vBucketMap": vec![[0]; VBUCKETS],
            });
        }
        config
    }
}

/// One client connection's state.
#[derive(Default)]
struct Connection {
    authenticated: bool,
    bucket: bool,
    exchange: Option<scram::Exchange>,
}

/// Serves one connection until the client closes it or sends a packet that cannot be read.
pub async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut connection = Connection::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..read]);
        let mut used = 0;
        loop {
            match frame::parse(&buf[used..]) {
                Ok(Some((request, len))) => {
                    used += len;
                    handle(&mut connection, &shared, &request).encode(&mut out);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e.0, "closing a connection on a bad packet");
                    return;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn handle(connection: &mut Connection, shared: &Shared, request: &Request) -> Response {
    // Preserve TTL is the one frame info known here, and only on mutations.
    let mutation = matches!(
        request.opcode,
        opcode::SET | opcode::REPLACE | opcode::SUBDOC_MULTI_MUTATION
    );
    if request
        .frame_infos
        .iter()
        .any(|(id, value)| *id != frame_info::PRESERVE_TTL || !value.is_empty() || !mutation)
    {
        return Response::to(request, status::NOT_SUPPORTED);
    }
    match request.opcode {
        opcode::HELLO => {
            let asked: Vec<u16> = request
                .value
                .chunks_exact(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .collect();
            let granted: Vec<u8> = FEATURES
                .iter()
                .filter(|f| asked.contains(f))
                .flat_map(|f| f.to_be_bytes())
                .collect();
            Response::to(request, status::SUCCESS).value(granted)
        }
        opcode::NOOP => Response::to(request, status::SUCCESS),
        // No error map here: "unknown command", which the SDK takes as a warning.
        opcode::GET_ERROR_MAP => Response::to(request, status::UNKNOWN_COMMAND),
        opcode::SASL_LIST_MECHS => {
            Response::to(request, status::SUCCESS).value(scram::MECHANISM.as_bytes().to_vec())
        }
        opcode::SASL_AUTH => {
            if request.key != scram::MECHANISM.as_bytes() {
                return Response::to(request, status::AUTH_ERROR);
            }
            match scram::start(&request.value, &shared.config.user, &shared.config.password) {
                Ok((exchange, server_first)) => {
                    connection.exchange = Some(exchange);
                    Response::to(request, status::AUTH_CONTINUE).value(server_first)
                }
                Err(e) => {
                    tracing::debug!(why = %e.0, "SASL auth refused");
                    Response::to(request, status::AUTH_ERROR)
                }
            }
        }
        opcode::SASL_STEP => match connection.exchange.take() {
            Some(exchange) => match scram::finish(&exchange, &request.value) {
                Ok(server_final) => {
                    connection.authenticated = true;
                    Response::to(request, status::SUCCESS).value(server_final)
                }
                Err(e) => {
                    tracing::debug!(why = %e.0, "SASL step refused");
                    Response::to(request, status::AUTH_ERROR)
                }
            },
            None => Response::to(request, status::AUTH_ERROR),
        },
        _ if !connection.authenticated => Response::to(request, status::AUTH_ERROR),
        opcode::SELECT_BUCKET => {
            if request.key == shared.config.bucket.as_bytes() {
                connection.bucket = true;
                Response::to(request, status::SUCCESS)
            } else {
                Response::to(request, status::KEY_NOT_FOUND)
            }
        }
        opcode::GET_CLUSTER_CONFIG => {
            let mut response = Response::to(request, status::SUCCESS).value(
                shared
                    .cluster_config(connection.bucket)
                    .to_string()
                    .into_bytes(),
            );
            response.datatype = DATATYPE_JSON;
            response
        }
        opcode::GET
        | opcode::SET
        | opcode::ADD
        | opcode::REPLACE
        | opcode::DELETE
        | opcode::SUBDOC_MULTI_MUTATION
            if !connection.bucket =>
        {
            Response::to(request, status::NO_BUCKET)
        }
        opcode::GET => get(shared, request),
        opcode::SET | opcode::ADD | opcode::REPLACE => store(shared, request),
        opcode::DELETE => delete(shared, request),
        opcode::SUBDOC_MULTI_MUTATION => mutate(shared, request),
        _ => Response::to(request, status::UNKNOWN_COMMAND),
    }
}

fn get(shared: &Shared, request: &Request) -> Response {
    shared.store.with(|state| match state.live(&request.key) {
        Some(doc) => {
            let mut response = Response::to(request, status::SUCCESS).value(doc.value.clone());
            response.extras = doc.flags.to_be_bytes().to_vec();
            response.datatype = doc.datatype;
            response.cas = doc.cas;
            response
        }
        None => Response::to(request, status::KEY_NOT_FOUND),
    })
}

/// SET, ADD and REPLACE: extras are flags (4 bytes) and expiry (4 bytes).
fn store(shared: &Shared, request: &Request) -> Response {
    let Some(extras) = request.extras.get(..8) else {
        return Response::to(request, status::INVALID_ARGUMENTS);
    };
    let flags = u32::from_be_bytes([extras[0], extras[1], extras[2], extras[3]]);
    let expires = expiry(u32::from_be_bytes([
        extras[4], extras[5], extras[6], extras[7],
    ]));
    if request.value.len() > MAX_DOCUMENT {
        return Response::to(request, status::VALUE_TOO_LARGE);
    }
    shared.store.with(|state| {
        let existing = state.live(&request.key).map(|doc| (doc.cas, doc.expires));
        let refused = match (request.opcode, existing.map(|(cas, _)| cas)) {
            (opcode::ADD, Some(_)) => Some(status::KEY_EXISTS),
            (opcode::REPLACE, None) => Some(status::KEY_NOT_FOUND),
            (opcode::SET, None) if request.cas != 0 => Some(status::KEY_NOT_FOUND),
            (_, Some(cas)) if request.cas != 0 && request.cas != cas => Some(status::KEY_EXISTS),
            _ => None,
        };
        if let Some(refused) = refused {
            return Response::to(request, refused);
        }
        let expires = match existing {
            Some((_, kept)) if request.has_frame_info(frame_info::PRESERVE_TTL) => kept,
            _ => expires,
        };
        let cas = state.next_cas();
        state.docs.insert(
            request.key.clone(),
            Doc {
                value: request.value.clone(),
                flags,
                datatype: request.datatype,
                cas,
                expires,
            },
        );
        let mut response = Response::to(request, status::SUCCESS);
        response.cas = cas;
        response
    })
}

fn delete(shared: &Shared, request: &Request) -> Response {
    shared.store.with(|state| {
        let Some(cas) = state.live(&request.key).map(|doc| doc.cas) else {
            return Response::to(request, status::KEY_NOT_FOUND);
        };
        if request.cas != 0 && request.cas != cas {
            return Response::to(request, status::KEY_EXISTS);
        }
        state.docs.remove(&request.key);
        let mut response = Response::to(request, status::SUCCESS);
        response.cas = state.next_cas();
        response
    })
}

/// Doc flags in a multi-mutation's extras (`docs/SubDocument.md`): create the document when
/// missing (Mkdoc), or only when missing (Add).
const MKDOC: u8 = 0x01;
const ADD: u8 = 0x02;

/// SUBDOC_MULTI_MUTATION (0xd1): every spec applies or none does. Extras: optional expiry
/// (4 bytes) and optional doc flags (1 byte). A failing spec answers 0xcc with its index and
/// status; success carries, for each spec that returns a value, its index, status and value.
fn mutate(shared: &Shared, request: &Request) -> Response {
    let (expires, doc_flags) = match request.extras.as_slice() {
        [] => (None, 0),
        [flags] => (None, *flags),
        [a, b, c, d] => (expiry(u32::from_be_bytes([*a, *b, *c, *d])), 0),
        [a, b, c, d, flags] => (expiry(u32::from_be_bytes([*a, *b, *c, *d])), *flags),
        _ => return Response::to(request, status::INVALID_ARGUMENTS),
    };
    let specs = match subdoc::parse_specs(&request.value) {
        Ok(specs) => specs,
        Err(code) => return Response::to(request, code),
    };
    shared.store.with(|state| {
        let existing = state.live(&request.key).cloned();
        let mut doc = match &existing {
            Some(_) if doc_flags & ADD != 0 => return Response::to(request, status::KEY_EXISTS),
            Some(doc) if request.cas != 0 && request.cas != doc.cas => {
                return Response::to(request, status::KEY_EXISTS)
            }
            Some(doc) => match serde_json::from_slice(&doc.value) {
                Ok(value) => value,
                Err(_) => return Response::to(request, status::SUBDOC_DOC_NOT_JSON),
            },
            None if doc_flags & (MKDOC | ADD) != 0 => serde_json::Value::Object(Default::default()),
            None => return Response::to(request, status::KEY_NOT_FOUND),
        };
        let mut results = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            match subdoc::apply(&mut doc, spec) {
                Ok(Some(value)) => {
                    results.push(index as u8);
                    results.extend_from_slice(&status::SUCCESS.to_be_bytes());
                    results.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    results.extend_from_slice(&value);
                }
                Ok(None) => {}
                Err(code) if code == status::UNKNOWN_COMMAND || code == status::NOT_SUPPORTED => {
                    return Response::to(request, code);
                }
                Err(code) => {
                    let mut body = vec![index as u8];
                    body.extend_from_slice(&code.to_be_bytes());
                    return Response::to(request, status::SUBDOC_MULTI_PATH_FAILURE).value(body);
                }
            }
        }
        let value = doc.to_string().into_bytes();
        if value.len() > MAX_DOCUMENT {
            return Response::to(request, status::VALUE_TOO_LARGE);
        }
        let expires = match &existing {
            Some(doc) if request.has_frame_info(frame_info::PRESERVE_TTL) => doc.expires,
            _ => expires,
        };
        let cas = state.next_cas();
        state.docs.insert(
            request.key.clone(),
            Doc {
                value,
                flags: existing.as_ref().map_or(0x0200_0000, |d| d.flags),
                datatype: DATATYPE_JSON,
                cas,
                expires,
            },
        );
        let mut response = Response::to(request, status::SUCCESS).value(results);
        response.cas = cas;
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            store: Arc::new(Store::default()),
            config: crate::Config {
                bucket: "b".into(),
                user: "u".into(),
                password: "p".into(),
                host: "127.0.0.1".into(),
                kv_port: 11210,
                query_port: 8093,
                data_file: None,
            },
        }
    }

    fn ready() -> Connection {
        Connection {
            authenticated: true,
            bucket: true,
            exchange: None,
        }
    }

    fn request(opcode: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Request {
        Request {
            opcode,
            opaque: 9,
            key: key.to_vec(),
            extras: extras.to_vec(),
            value: value.to_vec(),
            ..Request::default()
        }
    }

    /// One mutation spec as `docs/SubDocument.md` encodes it: opcode, flags, path length (2),
    /// value length (4), path, value.
    fn spec_bytes(op: u8, path: &str, value: &str) -> Vec<u8> {
        let mut bytes = vec![op, 0];
        bytes.extend_from_slice(&(path.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
        bytes.extend_from_slice(path.as_bytes());
        bytes.extend_from_slice(value.as_bytes());
        bytes
    }

    /// flags 0x02000006, expiry 0 (`docs/BinaryProtocol.md`, "0x01 Set": extras are flags then
    /// expiration, 4 bytes each).
    const EXTRAS: [u8; 8] = [0x02, 0, 0, 0x06, 0, 0, 0, 0];

    /// "0x1f HELO": the server answers with the features it enables, a subset of those asked.
    #[test]
    fn hello_grants_only_what_this_server_speaks() {
        let asked: Vec<u8> = [0x07u16, 0x08, 0x0b, 0x12, 0x0a, 0x10]
            .iter()
            .flat_map(|f| f.to_be_bytes())
            .collect();
        let response = handle(
            &mut Connection::default(),
            &shared(),
            &request(opcode::HELLO, b"agent", &[], &asked),
        );
        assert_eq!(response.status, status::SUCCESS);
        assert_eq!(response.value, vec![0, 0x07, 0, 0x08, 0, 0x0b, 0, 0x10]);
        assert_eq!(response.opaque, 9);
    }

    #[test]
    fn nothing_but_bootstrap_before_authentication() {
        let shared = shared();
        let mut fresh = Connection::default();
        let mechs = handle(
            &mut fresh,
            &shared,
            &request(opcode::SASL_LIST_MECHS, b"", &[], b""),
        );
        assert_eq!(mechs.value, b"SCRAM-SHA512");
        for opcode in [
            opcode::GET,
            opcode::SELECT_BUCKET,
            opcode::GET_CLUSTER_CONFIG,
        ] {
            let response = handle(&mut fresh, &shared, &request(opcode, b"k", &[], b""));
            assert_eq!(response.status, status::AUTH_ERROR, "opcode {opcode:#x}");
        }
        let mut no_bucket = ready();
        no_bucket.bucket = false;
        let response = handle(
            &mut no_bucket,
            &shared,
            &request(opcode::GET, b"k", &[], b""),
        );
        assert_eq!(response.status, status::NO_BUCKET);
        let response = handle(
            &mut no_bucket,
            &shared,
            &request(opcode::SELECT_BUCKET, b"other", &[], b""),
        );
        assert_eq!(response.status, status::KEY_NOT_FOUND);
    }

    /// "Response Status" 0x01 key not found, 0x02 key exists (also a CAS mismatch), 0x81 unknown
    /// command; GET returns the flags as its 4 bytes of extras and the CAS in the header.
    #[test]
    fn key_value_answers_the_documented_statuses() {
        let (shared, mut c) = (shared(), ready());
        let mut run = |r: Request| handle(&mut c, &shared, &r);
        assert_eq!(
            run(request(opcode::GET, b"k", &[], b"")).status,
            status::KEY_NOT_FOUND
        );
        assert_eq!(
            run(request(opcode::REPLACE, b"k", &EXTRAS, b"{}")).status,
            status::KEY_NOT_FOUND
        );
        let added = run(request(opcode::ADD, b"k", &EXTRAS, b"{\"a\":1}"));
        assert_eq!(added.status, status::SUCCESS);
        assert_ne!(added.cas, 0);
        assert_eq!(
            run(request(opcode::ADD, b"k", &EXTRAS, b"{}")).status,
            status::KEY_EXISTS
        );
        let got = run(request(opcode::GET, b"k", &[], b""));
        assert_eq!((got.status, got.cas), (status::SUCCESS, added.cas));
        assert_eq!(got.extras, vec![0x02, 0, 0, 0x06]);
        assert_eq!(got.value, b"{\"a\":1}");
        let mut stale = request(opcode::REPLACE, b"k", &EXTRAS, b"{}");
        stale.cas = added.cas + 1;
        assert_eq!(run(stale).status, status::KEY_EXISTS);
        let mut delete = request(opcode::DELETE, b"k", &[], b"");
        delete.cas = added.cas + 1;
        assert_eq!(run(delete.clone()).status, status::KEY_EXISTS);
        delete.cas = added.cas;
        assert_eq!(run(delete.clone()).status, status::SUCCESS);
        assert_eq!(run(delete).status, status::KEY_NOT_FOUND);
        assert_eq!(
            run(request(0x05, b"k", &[], b"")).status,
            status::UNKNOWN_COMMAND
        );
        assert_eq!(
            run(request(0xfe, b"", &[], &[0, 2])).status,
            status::UNKNOWN_COMMAND
        );
    }

    /// "Request Frame Info" 5, Preserve TTL: a mutation keeps the document's expiry whatever
    /// its extras say; a frame info this server does not know answers "not supported" (0x83).
    #[test]
    fn preserve_ttl_keeps_the_expiry_and_other_frame_infos_are_refused() {
        let (shared, mut c) = (shared(), ready());
        let mut run = |r: Request| handle(&mut c, &shared, &r);
        let expires = |key: &[u8]| {
            shared
                .store
                .with(|state| state.live(key).map(|d| d.expires))
        };
        let mut with_ttl = EXTRAS;
        with_ttl[7] = 100; // 100 s
        assert_eq!(
            run(request(opcode::SET, b"k", &with_ttl, b"{}")).status,
            status::SUCCESS
        );
        let set_at = expires(b"k").flatten();
        assert!(set_at.is_some());
        let mut keep = request(opcode::SET, b"k", &EXTRAS, b"{\"a\":1}");
        keep.frame_infos = vec![(frame_info::PRESERVE_TTL, vec![])];
        assert_eq!(run(keep).status, status::SUCCESS);
        assert_eq!(expires(b"k").flatten(), set_at, "SET kept the expiry");
        let mut mutation = request(
            opcode::SUBDOC_MULTI_MUTATION,
            b"k",
            &[],
            &spec_bytes(subdoc::spec::DICT_UPSERT, "b", "2"),
        );
        mutation.frame_infos = vec![(frame_info::PRESERVE_TTL, vec![])];
        assert_eq!(run(mutation).status, status::SUCCESS);
        assert_eq!(expires(b"k").flatten(), set_at, "the mutation kept it");
        assert_eq!(
            run(request(opcode::SET, b"k", &EXTRAS, b"{}")).status,
            status::SUCCESS
        );
        assert_eq!(
            expires(b"k").flatten(),
            None,
            "without the frame info it is cleared"
        );
        let mut durable = request(opcode::SET, b"k", &EXTRAS, b"{}");
        durable.frame_infos = vec![(1, vec![0x01])];
        assert_eq!(run(durable).status, status::NOT_SUPPORTED);
        let mut get = request(opcode::GET, b"k", &[], b"");
        get.frame_infos = vec![(frame_info::PRESERVE_TTL, vec![])];
        assert_eq!(run(get).status, status::NOT_SUPPORTED);
    }

    #[test]
    fn the_bucket_config_maps_every_vbucket_to_this_node() -> Result<(), serde_json::Error> {
        let (shared, mut c) = (shared(), ready());
        let response = handle(
            &mut c,
            &shared,
            &request(opcode::GET_CLUSTER_CONFIG, b"", &[], b""),
        );
        assert_eq!(response.datatype, DATATYPE_JSON);
        let config: serde_json::Value = serde_json::from_slice(&response.value)?;
        assert_eq!(config["name"], "b");
        assert_eq!(config["nodesExt"][0]["services"]["kv"], 11210);
        assert_eq!(config["nodesExt"][0]["services"]["n1ql"], 8093);
        let map = &config["vBucketServerMap"];
        assert_eq!(map["serverList"][0], "127.0.0.1:11210");
        assert_eq!(map["vBucketMap"].as_array().map(Vec::len), Some(VBUCKETS));
        Ok(())
    }

    /// A failing spec answers 0xcc with its index and status and changes nothing; a counter
    /// returns its new value as index, status, length, value.
    #[test]
    fn multi_mutations_are_all_or_nothing() {
        let (shared, mut c) = (shared(), ready());
        let mut run = |r: Request| handle(&mut c, &shared, &r);
        run(request(
            opcode::SET,
            b"d",
            &EXTRAS,
            b"{\"v\":1,\"s\":\"x\"}",
        ));
        let spec = spec_bytes;
        let mut body = spec(0xcf, "v", "2");
        body.extend(spec(0xcf, "s", "1"));
        let failed = run(request(opcode::SUBDOC_MULTI_MUTATION, b"d", &[], &body));
        assert_eq!(failed.status, status::SUBDOC_MULTI_PATH_FAILURE);
        assert_eq!(failed.value, vec![1, 0, 0xc1]);
        let unchanged = run(request(opcode::GET, b"d", &[], b""));
        assert_eq!(unchanged.value, b"{\"v\":1,\"s\":\"x\"}");
        let done = run(request(
            opcode::SUBDOC_MULTI_MUTATION,
            b"d",
            &[],
            &spec(0xcf, "v", "2"),
        ));
        assert_eq!(done.status, status::SUCCESS);
        assert_eq!(done.value, vec![0, 0, 0, 0, 0, 0, 1, b'3']);
        let missing = run(request(
            opcode::SUBDOC_MULTI_MUTATION,
            b"none",
            &[],
            &spec(0xcf, "v", "2"),
        ));
        assert_eq!(missing.status, status::KEY_NOT_FOUND);
    }
}
