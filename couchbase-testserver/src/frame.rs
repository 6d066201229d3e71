//! The memcached binary protocol's framing as Couchbase documents it: couchbase/kv_engine,
//! `docs/BinaryProtocol.md`, sections "Packet Structure", "Request header", "Response header"
//! and "Defined Values" (magic bytes, response status, command opcodes).

/// Every packet starts with a 24-byte header.
pub const HEADER_LEN: usize = 24;
/// Magic of a request from a client ("Magic Byte": 0x80).
pub const REQUEST: u8 = 0x80;
/// Magic of a request with flexible framing extras ("Magic Byte": 0x08, "Alt Client Request";
/// only after HELLO granted AltRequestSupport).
pub const REQUEST_EXT: u8 = 0x08;
/// Magic of a response to a client ("Magic Byte": 0x81).
pub const RESPONSE: u8 = 0x81;
/// The largest body this server accepts (Couchbase's item limit is 20 MiB; a little more for
/// key and extras).
pub const MAX_BODY: usize = 21 * 1024 * 1024;

/// Command opcodes ("Command Opcodes", magic 0x80/0x81).
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const NOOP: u8 = 0x0a;
    pub const HELLO: u8 = 0x1f;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const SELECT_BUCKET: u8 = 0x89;
    pub const GET_CLUSTER_CONFIG: u8 = 0xb5;
    pub const SUBDOC_MULTI_MUTATION: u8 = 0xd1;
    pub const GET_ERROR_MAP: u8 = 0xfe;
}

/// Response status ("Response Status").
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const KEY_NOT_FOUND: u16 = 0x0001;
    pub const KEY_EXISTS: u16 = 0x0002;
    pub const VALUE_TOO_LARGE: u16 = 0x0003;
    pub const INVALID_ARGUMENTS: u16 = 0x0004;
    pub const NO_BUCKET: u16 = 0x0008;
    pub const AUTH_ERROR: u16 = 0x0020;
    pub const AUTH_CONTINUE: u16 = 0x0021;
    pub const UNKNOWN_COMMAND: u16 = 0x0081;
    pub const NOT_SUPPORTED: u16 = 0x0083;
    pub const SUBDOC_PATH_NOT_FOUND: u16 = 0x00c0;
    pub const SUBDOC_PATH_MISMATCH: u16 = 0x00c1;
    pub const SUBDOC_PATH_INVALID: u16 = 0x00c2;
    pub const SUBDOC_DOC_NOT_JSON: u16 = 0x00c6;
    pub const SUBDOC_NUMBER_OUT_OF_RANGE: u16 = 0x00c7;
    pub const SUBDOC_DELTA_OUT_OF_RANGE: u16 = 0x00c8;
    pub const SUBDOC_PATH_EXISTS: u16 = 0x00c9;
    pub const SUBDOC_VALUE_CANNOT_INSERT: u16 = 0x00c5;
    pub const SUBDOC_INVALID_COMBO: u16 = 0x00cb;
    pub const SUBDOC_MULTI_PATH_FAILURE: u16 = 0x00cc;
}

/// Request frame info ids ("Request Frame Info", in "Flexible Framing Extras").
pub mod frame_info {
    /// Preserve TTL: a mutation keeps the document's expiry (no value).
    pub const PRESERVE_TTL: u16 = 5;
}

/// The `Data type` bit for a JSON value ("Data Types").
pub const DATATYPE_JSON: u8 = 0x01;

/// A request as a client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub opcode: u8,
    pub datatype: u8,
    pub vbucket: u16,
    pub opaque: u32,
    pub cas: u64,
    /// The frame infos of a 0x08 request (id and value), in order.
    pub frame_infos: Vec<(u16, Vec<u8>)>,
    pub extras: Vec<u8>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Request {
    /// Whether the request carries this frame info.
    pub fn has_frame_info(&self, id: u16) -> bool {
        self.frame_infos.iter().any(|(i, _)| *i == id)
    }
}

/// A packet this server cannot read: the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

/// Parses the request at the front of `buf`: `None` while it is incomplete (clients pipeline:
/// a read may hold part of a packet or several), else the request and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    // "Request header": 0x80 has a 2-byte key length; 0x08 ("Request header with Flexible
    // Framing Extras") splits it into framing extras length and a 1-byte key length.
    let (framing_len, key_len) = match header[0] {
        REQUEST => (0, usize::from(u16::from_be_bytes([header[2], header[3]]))),
        REQUEST_EXT => (usize::from(header[2]), usize::from(header[3])),
        magic => {
            return Err(FrameError(format!(
                "magic 0x{magic:02x} is not a request (0x80 or 0x08)"
            )))
        }
    };
    let extras_len = usize::from(header[4]);
    let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if body_len > MAX_BODY {
        return Err(FrameError(format!("body of {body_len} bytes is too large")));
    }
    if framing_len + key_len + extras_len > body_len {
        return Err(FrameError(format!(
            "framing extras ({framing_len}), key ({key_len}) and extras ({extras_len}) are \
             longer than the body ({body_len})"
        )));
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + body_len) else {
        return Ok(None);
    };
    let request = Request {
        opcode: header[1],
        datatype: header[5],
        vbucket: u16::from_be_bytes([header[6], header[7]]),
        opaque: u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
        cas: u64::from_be_bytes([
            header[16], header[17], header[18], header[19], header[20], header[21], header[22],
            header[23],
        ]),
        frame_infos: frame_infos(&body[..framing_len])?,
        extras: body[framing_len..framing_len + extras_len].to_vec(),
        key: body[framing_len + extras_len..framing_len + extras_len + key_len].to_vec(),
        value: body[framing_len + extras_len + key_len..].to_vec(),
    };
    Ok(Some((request, HEADER_LEN + body_len)))
}

/// Decodes flexible framing extras ("Flexible Framing Extras"): each frame info starts with a
/// byte holding its id (high nibble) and value length (low nibble); a nibble of 15 means "15
/// plus the next byte".
fn frame_infos(mut framing: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, FrameError> {
    let truncated = || FrameError("truncated frame info".into());
    let mut infos = Vec::new();
    while let Some((&first, rest)) = framing.split_first() {
        framing = rest;
        let mut nibble = |n: u8| -> Result<usize, FrameError> {
            if n < 15 {
                return Ok(usize::from(n));
            }
            let (&more, rest) = framing.split_first().ok_or_else(truncated)?;
            framing = rest;
            Ok(15 + usize::from(more))
        };
        let id = nibble(first >> 4)?;
        let len = nibble(first & 0x0f)?;
        let value = framing.get(..len).ok_or_else(truncated)?;
        infos.push((id as u16, value.to_vec()));
        framing = &framing[len..];
    }
    Ok(infos)
}

/// A response to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub opcode: u8,
    pub status: u16,
    pub datatype: u8,
    pub opaque: u32,
    pub cas: u64,
    pub extras: Vec<u8>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Response {
    /// An empty response with this status to `request` (same opcode and opaque).
    pub fn to(request: &Request, status: u16) -> Self {
        Response {
            opcode: request.opcode,
            status,
            opaque: request.opaque,
            ..Response::default()
        }
    }

    /// The same response carrying `value`.
    pub fn value(mut self, value: Vec<u8>) -> Self {
        self.value = value;
        self
    }

    /// Appends the encoded response ("Response header") to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let body_len = self.extras.len() + self.key.len() + self.value.len();
        out.push(RESPONSE);
        out.push(self.opcode);
        out.extend_from_slice(&(self.key.len() as u16).to_be_bytes());
        out.push(self.extras.len() as u8);
        out.push(self.datatype);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&(body_len as u32).to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
        out.extend_from_slice(&self.extras);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GET of key "Hello" as "Request header" and the 0x00 Get example show it.
    fn get_hello() -> Vec<u8> {
        let mut packet = vec![
            0x80, 0x00, 0x00, 0x05, // magic, opcode, key length
            0x00, 0x00, 0x00, 0x00, // extras length, data type, vbucket
            0x00, 0x00, 0x00, 0x05, // total body
            0x00, 0x00, 0x00, 0x00, // opaque
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // cas
        ];
        packet.extend_from_slice(b"Hello");
        packet
    }

    #[test]
    fn a_request_is_read_from_its_header() -> Result<(), FrameError> {
        let packet = get_hello();
        let Some((request, used)) = parse(&packet)? else {
            panic!("a whole packet was not read");
        };
        assert_eq!(used, 29);
        assert_eq!(
            (request.opcode, request.key.as_slice()),
            (0x00, &b"Hello"[..])
        );
        assert!(request.extras.is_empty() && request.value.is_empty());
        Ok(())
    }

    #[test]
    fn partial_and_pipelined_packets() -> Result<(), FrameError> {
        let packet = get_hello();
        for cut in 0..packet.len() {
            assert_eq!(parse(&packet[..cut])?, None, "cut at {cut}");
        }
        let mut two = packet.clone();
        two.extend_from_slice(&packet);
        let Some((_, used)) = parse(&two)? else {
            panic!("no packet");
        };
        assert!(parse(&two[used..])?.is_some());
        Ok(())
    }

    #[test]
    fn bad_packets_are_refused() {
        let mut response_magic = get_hello();
        response_magic[0] = 0x81;
        assert!(parse(&response_magic).is_err());
        let mut key_past_body = get_hello();
        key_past_body[3] = 0x06;
        assert!(parse(&key_past_body).is_err());
    }

    /// "Request header with Flexible Framing Extras": magic 0x08, framing extras length in byte
    /// 2, a 1-byte key length in byte 3; the framing extras come first in the body. Here a
    /// Preserve TTL frame info (id 5, no value: byte 0x50) and an id past 14 (15 + 3, with a
    /// 1-byte value) on a SET of "k" with 8 bytes of extras and value "v".
    #[test]
    fn flexible_framing_extras_are_read() -> Result<(), FrameError> {
        let mut packet = vec![
            0x08, 0x01, 0x04, 0x01, // magic, opcode, framing extras length, key length
            0x08, 0x00, 0x00, 0x00, // extras length, data type, vbucket
            0x00, 0x00, 0x00, 0x0e, // total body: 4 + 8 + 1 + 1
            0x00, 0x00, 0x00, 0x07, // opaque
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // cas
            0x50, 0xf1, 0x03, 0xaa, // frame infos
        ];
        packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        packet.extend_from_slice(b"kv");
        let Some((request, used)) = parse(&packet)? else {
            panic!("a whole packet was not read");
        };
        assert_eq!(used, packet.len());
        assert_eq!(
            request.frame_infos,
            vec![(frame_info::PRESERVE_TTL, vec![]), (18, vec![0xaa])]
        );
        assert!(request.has_frame_info(frame_info::PRESERVE_TTL));
        assert_eq!(request.extras, [0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(
            (request.key.as_slice(), request.value.as_slice()),
            (&b"k"[..], &b"v"[..])
        );
        let mut truncated = packet.clone();
        truncated[2] = 0x03; // the second frame info loses its value byte
        truncated[4] = 0x00;
        assert!(parse(&truncated).is_err());
        Ok(())
    }

    /// The "Response header" layout: magic 0x81, status in bytes 6-7, body length, opaque, CAS.
    #[test]
    fn responses_follow_the_response_header() {
        let request = Request {
            opcode: 0x00,
            opaque: 0xdeadbeef,
            ..Request::default()
        };
        let mut response =
            Response::to(&request, status::KEY_NOT_FOUND).value(b"Not found".to_vec());
        response.cas = 1;
        let mut out = Vec::new();
        response.encode(&mut out);
        assert_eq!(out.len(), 24 + 9);
        assert_eq!(&out[..2], &[0x81, 0x00]);
        assert_eq!(&out[6..8], &[0x00, 0x01]);
        assert_eq!(&out[8..12], &[0, 0, 0, 9]);
        assert_eq!(&out[12..16], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&out[16..24], &1u64.to_be_bytes());
    }
}
