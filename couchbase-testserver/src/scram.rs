//! SCRAM-SHA512 as the server side of RFC 5802 ("Salted Challenge Response Authentication
//! Mechanism"), which Couchbase uses over SASL_AUTH (0x21) and SASL_STEP (0x22):
//! couchbase/kv_engine `docs/sasl.md`. The client checks the server's signature (`v=`), so it
//! must be right.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

/// The mechanism name this server lists and accepts.
pub const MECHANISM: &str = "SCRAM-SHA512";
const ITERATIONS: u32 = 4096;

/// Why an exchange failed (the client gets "Authentication error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramError(pub String);

/// An exchange between its first and final client messages.
#[derive(Debug, Clone)]
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    salted_password: Vec<u8>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// RFC 5802 5.1: `=2C` and `=3D` in a user name stand for `,` and `=`.
fn unescape_user(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

/// The salted password: Hi(password, salt, i), which is PBKDF2 with HMAC-SHA512.
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// Reads the client's first message (`n,,n=<user>,r=<nonce>`) for the one user this server
/// knows; returns the exchange and the server's first message
/// (`r=<nonce>,s=<salt>,i=<iterations>`).
pub fn start(
    client_first: &[u8],
    user: &str,
    password: &str,
) -> Result<(Exchange, Vec<u8>), ScramError> {
    let text = std::str::from_utf8(client_first)
        .map_err(|_| ScramError("client-first is not UTF-8".into()))?;
    // gs2 header: "n,," (no channel binding) or "y,,"; the bare message follows.
    let bare = text
        .strip_prefix("n,,")
        .or_else(|| text.strip_prefix("y,,"))
        .ok_or_else(|| ScramError("client-first lacks the gs2 header n,,".into()))?;
    let name = attribute(bare, 'n').ok_or_else(|| ScramError("no user name".into()))?;
    let client_nonce = attribute(bare, 'r').ok_or_else(|| ScramError("no nonce".into()))?;
    if unescape_user(name) != user {
        return Err(ScramError(format!("unknown user {name:?}")));
    }
    let mut random = [0u8; 18];
    getrandom::fill(&mut random).map_err(|e| ScramError(format!("no randomness: {e}")))?;
    let nonce = format!("{client_nonce}{}", BASE64.encode(random));
    let salt = Sha512::digest(format!("databank-testserver:{user}").as_bytes());
    let server_first = format!("r={nonce},s={},i={ITERATIONS}", BASE64.encode(&salt[..16]));
    let exchange = Exchange {
        client_first_bare: bare.to_owned(),
        server_first: server_first.clone(),
        nonce,
        salted_password: salted_password(password, &salt[..16], ITERATIONS),
    };
    Ok((exchange, server_first.into_bytes()))
}

/// Checks the client's final message (`c=biws,r=<nonce>,p=<proof>`); returns the server's
/// final message (`v=<server signature>`).
pub fn finish(exchange: &Exchange, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
    let text = std::str::from_utf8(client_final)
        .map_err(|_| ScramError("client-final is not UTF-8".into()))?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| ScramError("client-final has no proof".into()))?;
    if attribute(without_proof, 'r') != Some(exchange.nonce.as_str()) {
        return Err(ScramError("the nonce does not match".into()));
    }
    let proof = BASE64
        .decode(proof)
        .map_err(|_| ScramError("the proof is not base64".into()))?;
    let auth_message = format!(
        "{},{},{}",
        exchange.client_first_bare, exchange.server_first, without_proof
    );
    let client_key = hmac(&exchange.salted_password, b"Client Key");
    let stored_key = Sha512::digest(&client_key);
    let client_signature = hmac(&stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Err(ScramError("the proof has the wrong length".into()));
    }
    // ClientKey = ClientProof XOR ClientSignature; it must hash to StoredKey.
    let recovered: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    if Sha512::digest(&recovered)[..] != stored_key[..] {
        return Err(ScramError("wrong password".into()));
    }
    let server_key = hmac(&exchange.salted_password, b"Server Key");
    let signature = hmac(&server_key, auth_message.as_bytes());
    Ok(format!("v={}", BASE64.encode(signature)).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side of RFC 5802 section 3, to drive the server through a whole exchange.
    fn client_final(
        server_first: &str,
        client_first_bare: &str,
        password: &str,
    ) -> (String, Vec<u8>) {
        let nonce = attribute(server_first, 'r').unwrap_or_default();
        let salt = BASE64
            .decode(attribute(server_first, 's').unwrap_or_default())
            .unwrap_or_default();
        let iterations: u32 = attribute(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let salted = salted_password(password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let client_key = hmac(&salted, b"Client Key");
        let signature = hmac(&Sha512::digest(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = hmac(&hmac(&salted, b"Server Key"), auth.as_bytes());
        (
            format!("{without_proof},p={}", BASE64.encode(proof)),
            server_signature,
        )
    }

    #[test]
    fn a_whole_exchange_proves_both_sides() -> Result<(), ScramError> {
        let bare = "n=ada,r=fyko+d2lbbFgONRv9qkxdawL";
        let (exchange, server_first) = start(format!("n,,{bare}").as_bytes(), "ada", "secret")?;
        let server_first = String::from_utf8(server_first).unwrap_or_default();
        assert!(server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        assert!(server_first.ends_with(",i=4096"));
        let (message, expected) = client_final(&server_first, bare, "secret");
        let server_final = finish(&exchange, message.as_bytes())?;
        assert_eq!(
            server_final,
            format!("v={}", BASE64.encode(expected)).into_bytes()
        );
        let (wrong, _) = client_final(&server_first, bare, "guess");
        assert!(finish(&exchange, wrong.as_bytes()).is_err());
        Ok(())
    }

    #[test]
    fn unknown_users_and_bad_messages_are_refused() {
        assert!(start(b"n,,n=eve,r=abc", "ada", "secret").is_err());
        assert!(start(b"n=ada,r=abc", "ada", "secret").is_err());
        assert!(start(b"n,,r=abc", "ada", "secret").is_err());
    }

    /// RFC 5802 5.1: `=2C` and `=3D` escape `,` and `=`.
    #[test]
    fn user_names_are_unescaped() {
        assert_eq!(unescape_user("a=2Cb=3Dc"), "a,b=c");
    }
}
