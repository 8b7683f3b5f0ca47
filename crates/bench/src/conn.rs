//! A minimal pipelining ZooKeeper session over the `jute` codec: requests are
//! queued into one buffer and written together, replies are read in order.
//! The load generator drives many of these; it measures the server, so it
//! keeps per-request work to encoding a header and a body.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use jute::consts::{op, xid};
use jute::data::{Acl, Stat};
use jute::proto::{
    ConnectRequest, ConnectResponse, CreateRequest, DeleteRequest, GetDataRequest, PathRequest,
    ReplyHeader, RequestHeader, SetDataRequest, WatcherEvent,
};
use jute::{Reader, Record};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, Interest, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Bound on one reply frame (ZooKeeper's default jute.maxbuffer is 1 MiB of
/// data plus headers).
const MAX_FRAME: usize = 16 << 20;
/// How long any single read or connect may take before the run fails
/// instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One reply or notification.
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Bytes,
}

impl Reply {
    pub fn is_notification(&self) -> bool {
        self.xid == xid::NOTIFICATION
    }
    pub fn event(&self) -> Result<WatcherEvent> {
        Ok(WatcherEvent::from_bytes(self.body.clone())?)
    }
    pub fn stat(&self) -> Result<Stat> {
        Ok(Stat::from_bytes(self.body.clone())?)
    }
}

/// The read half, which can also note when the kernel received the bytes it
/// returns (SO_TIMESTAMPNS). A notification's arrival time taken that way does
/// not include the time the load generator, busy with other sockets, took to
/// get round to reading it.
struct StampedRead {
    inner: OwnedReadHalf,
    stamps: bool,
    /// Kernel receive time of the last segment of the last read.
    last_rx: Option<SystemTime>,
}

/// One `recvmsg` without waiting: the byte count and the kernel's receive
/// time of the last segment read, if it gave one.
fn recv_stamped(fd: i32, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut at = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmTimestampns(ts) = c {
            at = Some(SystemTime::UNIX_EPOCH + Duration::from(ts));
        }
    }
    Ok((msg.bytes, at))
}

impl AsyncRead for StampedRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.stamps {
            return Pin::new(&mut me.inner).poll_read(cx, buf);
        }
        let stream = me.inner.as_ref();
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            // try_io clears the readiness on WouldBlock, so the next
            // poll_read_ready waits for new data.
            match stream.try_io(Interest::READABLE, || recv_stamped(stream.as_raw_fd(), dst)) {
                Ok((n, at)) => {
                    buf.advance(n);
                    if at.is_some() {
                        me.last_rx = at;
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

pub struct Conn {
    rd: BufReader<StampedRead>,
    wr: OwnedWriteHalf,
    out: BytesMut,
    next_xid: i32,
    pub session_id: i64,
    pub addr: String,
}

pub fn open_acl() -> Vec<Acl> {
    vec![Acl::new(jute::consts::perms::ALL, "world", "anyone")]
}

impl Conn {
    /// Connects and creates a new session.
    pub async fn connect(addr: &str, session_timeout_ms: i32) -> Result<Conn> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect to {addr}: timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut c = Conn {
            rd: BufReader::with_capacity(
                64 << 10,
                StampedRead {
                    inner: r,
                    stamps: false,
                    last_rx: None,
                },
            ),
            wr: w,
            out: BytesMut::with_capacity(64 << 10),
            next_xid: 0,
            session_id: 0,
            addr: addr.to_owned(),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: session_timeout_ms,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: false,
        };
        c.frame(|b| req.write(b));
        c.flush().await?;
        let body = c
            .read_frame()
            .await
            .with_context(|| format!("session handshake with {addr}"))?;
        let resp = ConnectResponse::from_bytes(body)?;
        if resp.session_id == 0 || resp.time_out <= 0 {
            bail!("{addr} refused the session (not serving?)");
        }
        c.session_id = resp.session_id;
        Ok(c)
    }

    fn frame(&mut self, f: impl FnOnce(&mut BytesMut)) {
        let start = self.out.len();
        self.out.put_i32(0);
        f(&mut self.out);
        let len = (self.out.len() - start - 4) as i32;
        self.out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Queues a request; returns its xid. Nothing is sent until `flush`.
    pub fn push<R: Record>(&mut self, opcode: i32, body: &R) -> i32 {
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        let hdr = RequestHeader {
            xid: self.next_xid,
            op: opcode,
        };
        self.frame(|b| {
            hdr.write(b);
            body.write(b);
        });
        self.next_xid
    }

    pub fn push_get(&mut self, path: &str, watch: bool) -> i32 {
        let req = GetDataRequest {
            path: path.to_owned(),
            watch,
        };
        self.push(op::GET_DATA, &req)
    }

    pub fn push_exists(&mut self, path: &str, watch: bool) -> i32 {
        // exists has getData's shape on the wire.
        let req = GetDataRequest {
            path: path.to_owned(),
            watch,
        };
        self.push(op::EXISTS, &req)
    }

    pub fn push_set(&mut self, path: &str, data: &Bytes) -> i32 {
        let req = SetDataRequest {
            path: path.to_owned(),
            data: Some(data.clone()),
            version: -1,
        };
        self.push(op::SET_DATA, &req)
    }

    pub fn push_create(&mut self, path: &str, data: &Bytes, ephemeral: bool) -> i32 {
        let req = CreateRequest {
            path: path.to_owned(),
            data: Some(data.clone()),
            acl: open_acl(),
            flags: ephemeral as i32,
        };
        self.push(op::CREATE, &req)
    }

    pub fn push_delete(&mut self, path: &str) -> i32 {
        let req = DeleteRequest {
            path: path.to_owned(),
            version: -1,
        };
        self.push(op::DELETE, &req)
    }

    /// Waits until the server this session is on has caught up with the
    /// leader (matters in an ensemble: the data set was made through
    /// another member).
    pub async fn sync(&mut self, path: &str) -> Result<()> {
        let x = self.push(
            op::SYNC,
            &PathRequest {
                path: path.to_owned(),
            },
        );
        self.flush().await?;
        let r = self.reply_to(x).await?;
        if r.err != 0 {
            bail!("sync {path} on {}: error {}", self.addr, r.err);
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            tokio::time::timeout(IO_TIMEOUT, self.wr.write_all(&self.out))
                .await
                .context("write timed out")??;
            self.out.clear();
        }
        Ok(())
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let len = self.rd.read_i32().await.context("connection closed")?;
        if len < 0 || len as usize > MAX_FRAME {
            bail!("bad frame length {len} from {}", self.addr);
        }
        let mut buf = vec![0u8; len as usize];
        self.rd.read_exact(&mut buf).await?;
        Ok(Bytes::from(buf))
    }

    /// Reads the next reply or notification, failing after `IO_TIMEOUT`.
    pub async fn read(&mut self) -> Result<Reply> {
        self.read_within(IO_TIMEOUT).await
    }

    pub async fn read_within(&mut self, limit: Duration) -> Result<Reply> {
        let frame = tokio::time::timeout(limit, self.read_frame())
            .await
            .with_context(|| format!("no reply from {} within {limit:?}", self.addr))??;
        let mut r = Reader::new(frame);
        let hdr = ReplyHeader::read(&mut r)?;
        Ok(Reply {
            xid: hdr.xid,
            zxid: hdr.zxid,
            err: hdr.err,
            body: Bytes::copy_from_slice(r.rest()),
        })
    }

    /// Reads until the reply to `want`, skipping notifications and pings.
    pub async fn reply_to(&mut self, want: i32) -> Result<Reply> {
        loop {
            let r = self.read().await?;
            if r.xid == want {
                return Ok(r);
            }
            if r.xid >= 0 {
                bail!("reply xid {} while waiting for {want}", r.xid);
            }
        }
    }

    /// From now on, notes the kernel's receive time of what is read
    /// (`last_rx`).
    pub fn stamp_arrivals(&mut self) -> Result<()> {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        setsockopt(self.rd.get_ref().inner.as_ref(), ReceiveTimestampns, &true)
            .context("SO_TIMESTAMPNS")?;
        self.rd.get_mut().stamps = true;
        Ok(())
    }

    /// When the kernel received the last bytes read from this connection
    /// (after `stamp_arrivals`). Bytes read together share one stamp, that of
    /// the last segment, so it is exact for a frame that arrived alone.
    pub fn last_arrival(&self) -> Option<SystemTime> {
        self.rd.get_ref().last_rx
    }

    /// True if a whole frame is already buffered, so reading it will not
    /// wait on the socket.
    pub fn frame_buffered(&self) -> bool {
        let b = self.rd.buffer();
        if b.len() < 4 {
            return false;
        }
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        len >= 0 && b.len() >= 4 + len as usize
    }

    /// Closes the session (closeSession request, wait for its reply).
    pub async fn close(mut self) -> Result<()> {
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        let hdr = RequestHeader {
            xid: self.next_xid,
            op: op::CLOSE_SESSION,
        };
        self.frame(|b| hdr.write(b));
        self.flush().await?;
        let want = self.next_xid;
        self.reply_to(want).await?;
        Ok(())
    }

    /// Sends a ping (keeps an idle session alive).
    pub fn push_ping(&mut self) {
        let hdr = RequestHeader {
            xid: xid::PING,
            op: op::PING,
        };
        self.frame(|b| hdr.write(b));
    }
}

/// Sends a four-letter word and returns the whole answer.
pub async fn four_letter(addr: &str, word: &str) -> Result<String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(word.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        anyhow::Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .context("four-letter word timed out")?
}
