//! SASL between ensemble members, as Apache's QuorumAuth does it:
//! `quorum.auth.enableSasl=true` turns it on, with DIGEST-MD5 and a JAAS
//! file (`-Djava.security.auth.login.config`) holding a `QuorumServer`
//! section (`user_NAME="password"`: whom we admit) and a `QuorumLearner`
//! section (`username`, `password`: who we are).
//!
//! - A connecting member (election port, or a learner on the quorum or
//!   observer master port) authenticates right after connecting (after the
//!   election handshake) when `quorum.auth.learnerRequireSasl=true`.
//! - An accepting member looks at the first 8 bytes: the auth packet's
//!   magic number starts an exchange; anything else is let through, unless
//!   `quorum.auth.serverRequireSasl=true`. A failed exchange closes the
//!   connection when required, and is let through otherwise.
//!
//! The packets are QuorumAuthPacket records: magic, status (0 in progress,
//! 1 success, -1 error), token.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{bail, Context as _, Result};
use rand::Rng as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::{info, warn};

use super::secure::Stream;
use crate::config::Config;
use crate::sasl::{self, DigestMd5, Step, QUORUM};

// Java's -0xa0dbcafecafe1234L: the negation of a negative long.
const MAGIC: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();
const IN_PROGRESS: i32 = 0;
const SUCCESS: i32 = 1;
const ERROR: i32 = -1;
/// SaslQuorumAuthServer.MAX_RETRIES.
const MAX_ROUNDS: usize = 5;
/// Tokens are small (a DIGEST-MD5 challenge or response).
const MAX_TOKEN: i32 = 64 * 1024;

pub struct QuorumAuth {
    learner_require: bool,
    server_require: bool,
    /// QuorumServer: the members we admit.
    users: HashMap<String, String>,
    /// QuorumLearner: who we are.
    me: (String, String),
}

/// Without the passwords.
impl std::fmt::Debug for QuorumAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumAuth")
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("as", &self.me.0)
            .finish()
    }
}

fn on(c: &Config, k: &str) -> bool {
    c.raw
        .get(k)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl QuorumAuth {
    /// None unless quorum.auth.enableSasl=true. Both JAAS sections must
    /// exist, as Apache requires at startup.
    pub fn from_config(c: &Config) -> Result<Option<QuorumAuth>> {
        if !on(c, "quorum.auth.enableSasl") {
            for k in [
                "quorum.auth.learnerRequireSasl",
                "quorum.auth.serverRequireSasl",
            ] {
                if on(c, k) {
                    bail!("{k}=true needs quorum.auth.enableSasl=true");
                }
            }
            return Ok(None);
        }
        let Some(jaas) = c.prop("java.security.auth.login.config") else {
            bail!("quorum.auth.enableSasl=true needs a JAAS file (-Djava.security.auth.login.config=...)");
        };
        let text = std::fs::read_to_string(Path::new(jaas))
            .with_context(|| format!("cannot read JAAS config {jaas}"))?;
        let section =
            |k: &str, d: &'static str| c.raw.get(k).map_or(d.to_owned(), |v| v.trim().to_owned());
        let server = section("quorum.auth.server.saslLoginContext", "QuorumServer");
        let learner = section("quorum.auth.learner.saslLoginContext", "QuorumLearner");
        let users = sasl::parse_jaas_users(&text, &server);
        if users.is_empty() {
            bail!("JAAS config {jaas}: no section {server:?} with user_NAME=\"password\" entries (quorum.auth.enableSasl=true)");
        }
        let Some(me) = sasl::parse_jaas_credentials(&text, &learner) else {
            bail!("JAAS config {jaas}: no section {learner:?} with username and password (quorum.auth.enableSasl=true; rookeeper has DIGEST-MD5, not Kerberos)");
        };
        let a = QuorumAuth {
            learner_require: on(c, "quorum.auth.learnerRequireSasl"),
            server_require: on(c, "quorum.auth.serverRequireSasl"),
            users,
            me,
        };
        info!(
            "quorum SASL (DIGEST-MD5): we authenticate as {:?}{}, {} member(s) admitted{}",
            a.me.0,
            if a.learner_require {
                ""
            } else {
                " only when asked (learnerRequireSasl=false)"
            },
            a.users.len(),
            if a.server_require {
                ", required of every member"
            } else {
                ", not required (serverRequireSasl=false)"
            }
        );
        Ok(Some(a))
    }

    /// Our side as the connecting member: with learnerRequireSasl, the
    /// exchange must succeed; without it we send nothing.
    pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut S,
    ) -> io::Result<()> {
        if !self.learner_require {
            return Ok(());
        }
        let fail = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
        // DIGEST-MD5 has no initial response.
        send(s, IN_PROGRESS, &[]).await?;
        let mut expect = None;
        for _ in 0..=MAX_ROUNDS {
            let (status, token) = receive(s).await?;
            match status {
                IN_PROGRESS => {
                    let cnonce = nonce();
                    let (resp, rspauth) =
                        sasl::respond(QUORUM, &token, &self.me.0, &self.me.1, &cnonce)
                            .map_err(fail)?;
                    expect = Some(rspauth);
                    send(s, IN_PROGRESS, &resp).await?;
                }
                SUCCESS => {
                    let got = std::str::from_utf8(&token)
                        .ok()
                        .and_then(|t| t.strip_prefix("rspauth="));
                    return match (expect, got) {
                        (Some(want), Some(got)) if want.eq_ignore_ascii_case(got) => Ok(()),
                        _ => Err(fail(
                            "the server's rspauth does not prove it knows our password".into(),
                        )),
                    };
                }
                _ => return Err(fail("the member refused our SASL credentials".into())),
            }
        }
        Err(fail("SASL exchange did not end".into()))
    }

    /// Our side as the accepting member: the connection as it continues
    /// (bytes read to look for an auth packet are given back).
    pub async fn admit(&self, mut s: Box<dyn Stream>) -> io::Result<Box<dyn Stream>> {
        // What the member sends first; it may send less and hang up (an
        // election connection to a larger id does), which is no auth packet
        // either.
        let mut first = [0u8; 8];
        let mut n = 0;
        while n < 8 {
            match s.read(&mut first[n..]).await? {
                0 => break,
                k => n += k,
            }
        }
        if n < 8 || i64::from_be_bytes(first) != MAGIC {
            if self.server_require {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "member not trying to authenticate, and authentication is required (quorum.auth.serverRequireSasl)",
                ));
            }
            return Ok(Box::new(Rewind {
                head: first[..n].to_vec(),
                at: 0,
                inner: s,
            }));
        }
        // A learner's status is always IN_PROGRESS: it says nothing.
        s.read_i32().await?;
        let mut token = read_token(&mut s).await?;
        let mut m = DigestMd5::Start;
        let mut why = String::from("SASL exchange did not end");
        for _ in 0..MAX_ROUNDS {
            match m.step_as(QUORUM, &self.users, &token, &nonce()) {
                Step::Continue(ch) => {
                    send(&mut s, IN_PROGRESS, &ch).await?;
                    let (_, t) = receive(&mut s).await?;
                    token = t;
                }
                Step::Success { user, token } => {
                    send(&mut s, SUCCESS, &token).await?;
                    info!("member authenticated with SASL as {user:?}");
                    return Ok(s);
                }
                Step::Failure(w) => {
                    why = w;
                    break;
                }
            }
        }
        let _ = send(&mut s, ERROR, &[]).await;
        if self.server_require {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("SASL authentication failed: {why}"),
            ));
        }
        warn!("SASL authentication of a member failed ({why}); let through (quorum.auth.serverRequireSasl=false)");
        Ok(s)
    }
}

fn nonce() -> String {
    let b: [u8; 16] = rand::rng().random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, status: i32, token: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(16 + token.len());
    b.extend_from_slice(&MAGIC.to_be_bytes());
    b.extend_from_slice(&status.to_be_bytes());
    b.extend_from_slice(&(token.len() as i32).to_be_bytes());
    b.extend_from_slice(token);
    s.write_all(&b).await?;
    s.flush().await
}

async fn read_token<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    let n = s.read_i32().await?;
    if n < 0 {
        return Ok(Vec::new());
    }
    if n > MAX_TOKEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("SASL token of {n} bytes"),
        ));
    }
    let mut t = vec![0u8; n as usize];
    s.read_exact(&mut t).await?;
    Ok(t)
}

async fn receive<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<(i32, Vec<u8>)> {
    let magic = s.read_i64().await?;
    if magic != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a quorum auth packet",
        ));
    }
    let status = s.read_i32().await?;
    Ok((status, read_token(s).await?))
}

/// A stream with bytes already read put back in front.
struct Rewind {
    head: Vec<u8>,
    at: usize,
    inner: Box<dyn Stream>,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(learner_require: bool, server_require: bool, me: (&str, &str)) -> QuorumAuth {
        QuorumAuth {
            learner_require,
            server_require,
            users: HashMap::from([("member".to_string(), "secret".to_string())]),
            me: (me.0.to_owned(), me.1.to_owned()),
        }
    }

    /// Runs a learner and a server over an in-memory pipe; the server's
    /// stream then carries what the learner sends next.
    async fn run(learner: QuorumAuth, server: QuorumAuth) -> (io::Result<()>, io::Result<Vec<u8>>) {
        let (mut a, b) = tokio::io::duplex(4096);
        let l = async move {
            let r = learner.authenticate(&mut a).await;
            if r.is_ok() {
                a.write_all(b"after the exchange").await.unwrap();
            }
            drop(a);
            r
        };
        let s = async move {
            let mut s = server.admit(Box::new(b)).await?;
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await?;
            Ok(rest)
        };
        tokio::join!(l, s)
    }

    #[tokio::test]
    async fn exchanges_pass_fail_and_let_through_as_apache_does() {
        let ok = ("member", "secret");
        let bad = ("member", "wrong");
        // Required both ways, right password: the stream goes on.
        let (l, s) = run(auth(true, true, ok), auth(true, true, ok)).await;
        l.unwrap();
        assert_eq!(s.unwrap(), b"after the exchange");
        // Wrong password: refused on both sides.
        let (l, s) = run(auth(true, true, bad), auth(true, true, ok)).await;
        assert!(l.is_err());
        assert!(s.is_err());
        // The learner does not authenticate: let through unless required;
        // the bytes read to look are given back.
        let (l, s) = run(auth(false, false, bad), auth(false, false, ok)).await;
        l.unwrap();
        assert_eq!(s.unwrap(), b"after the exchange");
        let (_, s) = run(auth(false, false, bad), auth(false, true, ok)).await;
        assert!(s.is_err());
        // A member that says less than an auth packet and hangs up (an
        // election connection to a larger id): let through with its bytes.
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"hi").await.unwrap();
        drop(a);
        let mut s = auth(false, false, ok).admit(Box::new(b)).await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"hi");
        // A failed exchange with a server that does not require it: the
        // server lets it through, the learner gives up.
        let (l, s) = run(auth(true, false, bad), auth(false, false, ok)).await;
        assert!(l.is_err());
        assert!(s.is_ok());
    }
}
