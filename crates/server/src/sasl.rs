//! SASL DIGEST-MD5 (RFC 2831), as ZooKeeper offers it: on the client port
//! with a JAAS `Server` section listing `user_<name>="<password>"`
//! (successful clients gain the identity `sasl:<name>`), and between
//! ensemble members (`QuorumServer` / `QuorumLearner` sections), where we
//! are also the client ([`respond`]).

use std::collections::HashMap;
use std::path::Path;

use md5::{Digest, Md5};

/// The realm (the server name) and digest-uri (protocol/server name) of
/// one use of DIGEST-MD5: ZooKeeper hard-codes both.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    pub realm: &'static str,
    pub digest_uri: &'static str,
}

/// The client port's (ZooKeeperSaslServer).
pub const CLIENTS: Names = Names {
    realm: "zk-sasl-md5",
    digest_uri: "zookeeper/zk-sasl-md5",
};

/// Between members (QuorumAuth: protocol zookeeper-quorum, server name
/// zk-quorum-sasl-md5).
pub const QUORUM: Names = Names {
    realm: "zk-quorum-sasl-md5",
    digest_uri: "zookeeper-quorum/zk-quorum-sasl-md5",
};

/// Users from the JAAS configuration file, section `section`.
pub fn load_jaas_users(path: &Path, section: &str) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read JAAS config {}: {e}", path.display()))?;
    Ok(parse_jaas_users(&text, section))
}

/// Extracts `user_NAME="PASSWORD"` options of the login module(s) in the
/// named section of a JAAS file.
pub fn parse_jaas_users(text: &str, section: &str) -> HashMap<String, String> {
    jaas_options(text, section)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|n| (n.to_owned(), v)))
        .collect()
}

/// The `username` and `password` options of a section (a learner's
/// DigestLoginModule), if both are there.
pub fn parse_jaas_credentials(text: &str, section: &str) -> Option<(String, String)> {
    let o: HashMap<String, String> = jaas_options(text, section).into_iter().collect();
    Some((o.get("username")?.clone(), o.get("password")?.clone()))
}

/// `name=value` options (values quoted or bare) of the login module(s) in
/// the named section: `section { module flag opt=v ...; };`.
fn jaas_options(text: &str, section: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Drop comments, then find `section {` ... `};`.
    let cleaned: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = cleaned.as_str();
    while let Some(i) = rest.find(section) {
        let after = &rest[i + section.len()..];
        let starts_word = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let body_start = after.trim_start();
        if starts_word && body_start.starts_with('{') {
            let body = &body_start[1..];
            let end = body.find("};").unwrap_or(body.len());
            let mut s = &body[..end];
            while let Some(eq) = s.find('=') {
                let name = s[..eq]
                    .rsplit(|c: char| c.is_whitespace() || c == ';')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let v = s[eq + 1..].trim_start();
                let (value, tail) = if let Some(q) = v.strip_prefix('"') {
                    let close = q.find('"').unwrap_or(q.len());
                    (q[..close].to_owned(), &q[(close + 1).min(q.len())..])
                } else {
                    let stop = v
                        .find(|c: char| c.is_whitespace() || c == ';')
                        .unwrap_or(v.len());
                    (v[..stop].to_owned(), &v[stop..])
                };
                if !name.is_empty() {
                    out.push((name, value));
                }
                s = tail;
            }
            break;
        }
        rest = after;
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Parses `k=v,k="v",...` (values may be quoted, with `\` escapes).
fn parse_directives(s: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut chars = s[i..].char_indices();
            let mut closed = false;
            while let Some((off, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => {
                        i += off + 1;
                        closed = true;
                        break;
                    }
                    c => val.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_owned();
        }
        out.insert(key, val);
    }
    Some(out)
}

/// Bytes of a user name or password under `charset=utf-8`: ISO-8859-1 when
/// every character fits (RFC 2831 2.1.2.1), UTF-8 otherwise.
fn credential_bytes(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug)]
pub enum DigestMd5 {
    Start,
    Challenged { nonce: String },
    Done,
}

/// What one step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next one.
    Continue(Vec<u8>),
    /// Authenticated as this user; send the final token.
    Success {
        user: String,
        token: Vec<u8>,
    },
    Failure(String),
}

impl DigestMd5 {
    /// Feeds a client's token on the client port; `nonce` is fresh
    /// randomness for the challenge.
    pub fn step(&mut self, users: &HashMap<String, String>, token: &[u8], nonce: &str) -> Step {
        self.step_as(CLIENTS, users, token, nonce)
    }

    /// [`DigestMd5::step`] under the given realm and digest-uri.
    pub fn step_as(
        &mut self,
        names: Names,
        users: &HashMap<String, String>,
        token: &[u8],
        nonce: &str,
    ) -> Step {
        let realm = names.realm;
        match std::mem::replace(self, DigestMd5::Done) {
            DigestMd5::Start => {
                let ch = format!(
                    "realm=\"{realm}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
                );
                *self = DigestMd5::Challenged {
                    nonce: nonce.to_owned(),
                };
                Step::Continue(ch.into_bytes())
            }
            DigestMd5::Challenged { nonce } => verify(names, users, token, &nonce),
            DigestMd5::Done => Step::Failure("SASL exchange already complete".into()),
        }
    }
}

fn verify(names: Names, users: &HashMap<String, String>, token: &[u8], nonce: &str) -> Step {
    let Ok(text) = std::str::from_utf8(token) else {
        return Step::Failure("response is not UTF-8".into());
    };
    let Some(d) = parse_directives(text) else {
        return Step::Failure("malformed DIGEST-MD5 response".into());
    };
    let get = |k: &str| d.get(k).map(String::as_str).unwrap_or("");
    let user = get("username");
    if get("nonce") != nonce {
        return Step::Failure("nonce mismatch".into());
    }
    let qop = if d.contains_key("qop") {
        get("qop")
    } else {
        "auth"
    };
    if qop != "auth" {
        return Step::Failure(format!("unsupported qop {qop}"));
    }
    if get("digest-uri") != names.digest_uri {
        return Step::Failure(format!("unexpected digest-uri {:?}", get("digest-uri")));
    }
    let Some(password) = users.get(user) else {
        return Step::Failure(format!("unknown user {user:?}"));
    };
    let realm = get("realm");
    let (cnonce, nc, authzid) = (get("cnonce"), get("nc"), d.get("authzid"));
    let k = Keys::new(
        names,
        user,
        realm,
        password,
        nonce,
        cnonce,
        nc,
        authzid.map(String::as_str),
    );
    if !k.response().eq_ignore_ascii_case(get("response")) {
        return Step::Failure(format!("bad password for user {user:?}"));
    }
    let who = authzid.cloned().unwrap_or_else(|| user.to_owned());
    Step::Success {
        user: who,
        token: format!("rspauth={}", k.rspauth()).into_bytes(),
    }
}

/// RFC 2831's digests for one exchange (qop=auth, md5-sess).
struct Keys<'a> {
    digest_uri: &'a str,
    ha1: String,
    tail: String,
}

impl<'a> Keys<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        names: Names,
        user: &str,
        realm: &str,
        password: &str,
        nonce: &str,
        cnonce: &str,
        nc: &str,
        authzid: Option<&str>,
    ) -> Keys<'a> {
        let inner = md5(&[
            &credential_bytes(user),
            b":",
            realm.as_bytes(),
            b":",
            &credential_bytes(password),
        ]);
        let mut a1 = inner.to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        if let Some(z) = authzid {
            a1.extend_from_slice(format!(":{z}").as_bytes());
        }
        Keys {
            digest_uri: names.digest_uri,
            ha1: hex(&md5(&[&a1])),
            tail: format!("{nonce}:{nc}:{cnonce}:auth"),
        }
    }

    fn kd(&self, a2: &str) -> String {
        let ha2 = hex(&md5(&[a2.as_bytes()]));
        hex(&md5(&[
            format!("{}:{}:{ha2}", self.ha1, self.tail).as_bytes()
        ]))
    }

    /// The client's `response`.
    fn response(&self) -> String {
        self.kd(&format!("AUTHENTICATE:{}", self.digest_uri))
    }

    /// The server's `rspauth`.
    fn rspauth(&self) -> String {
        self.kd(&format!(":{}", self.digest_uri))
    }
}

/// The client's side: its response to a server's challenge, and the
/// `rspauth` the server must then send (proof that it knew the password).
pub fn respond(
    names: Names,
    challenge: &[u8],
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<(Vec<u8>, String), String> {
    let text = std::str::from_utf8(challenge).map_err(|_| "challenge is not UTF-8".to_owned())?;
    let d = parse_directives(text).ok_or_else(|| "malformed DIGEST-MD5 challenge".to_owned())?;
    let nonce = d
        .get("nonce")
        .ok_or_else(|| "challenge without a nonce".to_owned())?;
    let realm = d.get("realm").map_or(names.realm, String::as_str);
    let k = Keys::new(
        names, user, realm, password, nonce, cnonce, "00000001", None,
    );
    let token = format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{}\",maxbuf=65536,response={},qop=auth",
        names.digest_uri,
        k.response()
    );
    Ok((token.into_bytes(), k.rspauth()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_users() {
        let t = "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_super=\"super_secret\"\n  user_jaasuser=\"jaas_password\";\n};\nClient { x required user_other=\"no\"; };";
        let u = parse_jaas_users(t, "Server");
        assert_eq!(u.len(), 2);
        assert_eq!(u["jaasuser"], "jaas_password");
    }

    /// A client computing the response as RFC 2831 says must be accepted,
    /// and a wrong password refused.
    #[test]
    fn exchange() {
        let users = HashMap::from([("u".to_string(), "p".to_string())]);
        for (pw, ok) in [("p", true), ("wrong", false)] {
            let mut s = DigestMd5::Start;
            let Step::Continue(ch) = s.step(&users, b"", "abc") else {
                panic!()
            };
            let ch = parse_directives(std::str::from_utf8(&ch).unwrap()).unwrap();
            assert_eq!(ch["realm"], CLIENTS.realm);
            let inner = md5(&[b"u:", CLIENTS.realm.as_bytes(), b":", pw.as_bytes()]);
            let mut a1 = inner.to_vec();
            a1.extend_from_slice(b":abc:xyz");
            let ha1 = hex(&md5(&[&a1]));
            let ha2 = hex(&md5(&[
                format!("AUTHENTICATE:{}", CLIENTS.digest_uri).as_bytes()
            ]));
            let resp = hex(&md5(&[
                format!("{ha1}:abc:00000001:xyz:auth:{ha2}").as_bytes()
            ]));
            let tok = format!(
                "username=\"u\",realm=\"{}\",nonce=\"abc\",cnonce=\"xyz\",nc=00000001,qop=auth,digest-uri=\"{}\",response={resp},charset=utf-8",
                CLIENTS.realm, CLIENTS.digest_uri
            );
            match s.step(&users, tok.as_bytes(), "unused") {
                Step::Success { user, token } => {
                    assert!(ok);
                    assert_eq!(user, "u");
                    assert!(token.starts_with(b"rspauth="));
                }
                Step::Failure(_) => assert!(!ok),
                Step::Continue(_) => panic!(),
            }
        }
    }

    /// Our client side against our server side, under the quorum's names;
    /// the server's rspauth is the one the client expects.
    #[test]
    fn quorum_client_and_server_agree() {
        let users = HashMap::from([("learner".to_string(), "pw".to_string())]);
        for (pw, ok) in [("pw", true), ("nope", false)] {
            let mut s = DigestMd5::Start;
            let Step::Continue(ch) = s.step_as(QUORUM, &users, b"", "n0nce") else {
                panic!()
            };
            let (resp, want) = respond(QUORUM, &ch, "learner", pw, "cn").unwrap();
            match s.step_as(QUORUM, &users, &resp, "unused") {
                Step::Success { user, token } => {
                    assert!(ok);
                    assert_eq!(user, "learner");
                    assert_eq!(token, format!("rspauth={want}").into_bytes());
                }
                Step::Failure(_) => assert!(!ok),
                Step::Continue(_) => panic!(),
            }
        }
        // The client port's names are not the quorum's.
        let mut s = DigestMd5::Start;
        let Step::Continue(ch) = s.step(&users, b"", "n") else {
            panic!()
        };
        let (resp, _) = respond(QUORUM, &ch, "learner", "pw", "cn").unwrap();
        assert!(matches!(s.step(&users, &resp, "x"), Step::Failure(_)));
    }

    #[test]
    fn jaas_learner_credentials() {
        let t = "QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_test=\"secret\";\n};\n\
                 QuorumLearner {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n username=\"test\"\n password=\"secret\";\n};\n";
        assert_eq!(
            parse_jaas_credentials(t, "QuorumLearner"),
            Some(("test".into(), "secret".into()))
        );
        assert_eq!(parse_jaas_users(t, "QuorumServer")["test"], "secret");
        assert_eq!(parse_jaas_credentials(t, "QuorumServer"), None);
    }
}
