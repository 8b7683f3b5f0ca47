//! Member connections over TLS (`sslQuorum`, `portUnification`; the
//! settings and checks are [`crate::tls::QuorumTls`]'s).
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

/// The plain end of a TLS stream for blocking threads: a task copies both
/// ways between the stream and a socket pair until either side ends.
pub fn bridge(s: Box<dyn Stream>) -> io::Result<Sock> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let mut ours = tokio::net::UnixStream::from_std(ours)?;
    let mut s = s;
    tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut s, &mut ours).await;
    });
    Ok(Sock::Local(theirs))
}
