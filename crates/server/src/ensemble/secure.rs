//! Member connections over TLS (`sslQuorum`, `portUnification`; the
//! settings and checks are [`crate::tls::QuorumTls`]'s), and where quorum
//! SASL (`super::quorum_auth`) runs on them.
//!
//! The election port's connections are async and take the TLS stream as
//! it is. The quorum links run on blocking threads (a reader that can
//! stream a SNAP straight into a tree, and a writer), so a TLS link is
//! bridged: a task pumps between the TLS stream and one end of a local
//! socket pair, and the threads use the other end as they would a TCP
//! socket (read timeouts and shutdown included).

use std::io;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::link::Sock;
use super::Setup;
use crate::tls::QuorumTls;

/// How long an accepted connection may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake (a ClientHello):
/// how a unified port tells TLS from plain, as UnifiedServerSocket does.
const TLS_HANDSHAKE: u8 = 0x16;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An accepted member connection.
pub enum Accepted {
    Plain(TcpStream),
    Tls(Box<dyn Stream>),
}

impl Accepted {
    pub fn boxed(self) -> Box<dyn Stream> {
        match self {
            Accepted::Plain(s) => Box::new(s),
            Accepted::Tls(s) => s,
        }
    }

    /// For a quorum link's threads.
    pub fn into_sock(self) -> io::Result<Sock> {
        match self {
            Accepted::Plain(s) => {
                let s = s.into_std()?;
                s.set_nonblocking(false)?;
                Ok(Sock::Tcp(s))
            }
            Accepted::Tls(s) => bridge(s),
        }
    }
}

/// Takes a connection on a member port: TLS when the quorum uses it (with
/// portUnification, only when it starts with a TLS handshake), else plain.
pub async fn accept(tls: Option<&QuorumTls>, s: TcpStream) -> io::Result<Accepted> {
    let Some(tls) = tls else {
        return Ok(Accepted::Plain(s));
    };
    if tls.unified {
        let mut first = [0u8; 1];
        let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, s.peek(&mut first))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "nothing sent"))??;
        if n == 0 || first[0] != TLS_HANDSHAKE {
            return Ok(Accepted::Plain(s));
        }
    } else if !tls.connect_tls {
        return Ok(Accepted::Plain(s));
    }
    let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(Accepted::Tls(Box::new(s)))
}

/// A learner's connection on the quorum or observer master port, for the
/// link threads: TLS as configured, then quorum SASL (LearnerHandler
/// authenticates before anything else), within [`HANDSHAKE_TIMEOUT`].
pub async fn accept_learner(setup: &Setup, s: TcpStream) -> io::Result<Sock> {
    let a = accept(setup.tls.as_deref(), s).await?;
    match &setup.auth {
        None => a.into_sock(),
        Some(auth) => {
            let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, auth.admit(a.boxed()))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "SASL exchange timed out")
                })??;
            bridge(s)
        }
    }
}

/// Our connection to a leader or observer master at `host`, for the link
/// threads: TLS with sslQuorum, then quorum SASL, within `within`; as the
/// plain socket when neither applies.
pub fn connect_learner(
    setup: &Setup,
    host: &str,
    s: std::net::TcpStream,
    rt: &tokio::runtime::Handle,
    within: Duration,
) -> io::Result<Sock> {
    let tls = setup.tls.as_deref().filter(|t| t.connect_tls);
    if tls.is_none() && setup.auth.is_none() {
        return Ok(Sock::Tcp(s));
    }
    s.set_nonblocking(true)?;
    rt.block_on(async {
        let s = TcpStream::from_std(s)?;
        let handshake = async {
            let mut t = connect(tls, host, s).await?;
            if let Some(a) = &setup.auth {
                a.authenticate(&mut t).await?;
            }
            io::Result::Ok(t)
        };
        let t = tokio::time::timeout(within, handshake)
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "TLS or SASL handshake timed out")
            })??;
        bridge(t)
    })
}

/// Opens our side of a connection to the member at `host`: TLS with
/// sslQuorum, else as it is.
pub async fn connect(
    tls: Option<&QuorumTls>,
    host: &str,
    s: TcpStream,
) -> io::Result<Box<dyn Stream>> {
    match tls {
        Some(t) if t.connect_tls => Ok(Box::new(t.connect(host, s).await?)),
        _ => Ok(Box::new(s)),
    }
}

/// How long a bridge waits for the other direction once one has ended
/// (a dead peer never closes its side).
const LINGER: Duration = Duration::from_secs(5);

/// The plain end of a TLS stream for blocking threads: a task copies both
/// ways between the stream and a socket pair. When one direction ends, the
/// other gets [`LINGER`] to finish, then the connection is dropped.
pub fn bridge(s: Box<dyn Stream>) -> io::Result<Sock> {
    use tokio::io::AsyncWriteExt;
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let ours = tokio::net::UnixStream::from_std(ours)?;
    tokio::spawn(async move {
        let (mut tls_rd, mut tls_wr) = tokio::io::split(s);
        let (mut rd, mut wr) = ours.into_split();
        let up = async {
            let _ = tokio::io::copy(&mut rd, &mut tls_wr).await;
            let _ = tls_wr.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut tls_rd, &mut wr).await;
            let _ = wr.shutdown().await;
        };
        tokio::pin!(up, down);
        tokio::select! {
            _ = &mut up => { let _ = tokio::time::timeout(LINGER, down).await; }
            _ = &mut down => { let _ = tokio::time::timeout(LINGER, up).await; }
        }
    });
    Ok(Sock::Local(theirs))
}
