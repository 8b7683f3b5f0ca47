//! Bytes on the election and quorum ports, as Apache ZooKeeper 3.8 writes
//! them (QuorumCnxManager, FastLeaderElection, Leader/Learner).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::election::ServerState;

/// Election-port handshake: the first long a connecting server writes.
/// V1 carries one election address, V2 several separated by '|'.
pub const PROTOCOL_V1: i64 = -65536;
pub const PROTOCOL_V2: i64 = -65535;

/// The largest election-port message or address accepted (Apache's
/// QuorumCnxManager default maxBuffer, 512 KiB).
pub const MAX_ELECTION_MESSAGE: usize = 512 * 1024;

/// Notification format version we send (with the config, since 3.5).
pub const NOTIFICATION_VERSION: i32 = 0x2;

/// Quorum packet types (Leader.java).
pub mod packet {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;

    pub fn name(t: i32) -> &'static str {
        match t {
            REQUEST => "REQUEST",
            PROPOSAL => "PROPOSAL",
            ACK => "ACK",
            COMMIT => "COMMIT",
            PING => "PING",
            REVALIDATE => "REVALIDATE",
            SYNC => "SYNC",
            INFORM => "INFORM",
            COMMITANDACTIVATE => "COMMITANDACTIVATE",
            NEWLEADER => "NEWLEADER",
            FOLLOWERINFO => "FOLLOWERINFO",
            UPTODATE => "UPTODATE",
            DIFF => "DIFF",
            TRUNC => "TRUNC",
            SNAP => "SNAP",
            OBSERVERINFO => "OBSERVERINFO",
            LEADERINFO => "LEADERINFO",
            ACKEPOCH => "ACKEPOCH",
            INFORMANDACTIVATE => "INFORMANDACTIVATE",
            _ => "UNKNOWN",
        }
    }
}

/// The protocol version a 3.x leader and learner exchange (0x10000).
pub const ZAB_PROTOCOL_VERSION: i32 = 0x10000;

/// The signature after a SNAP's serialized database.
pub const SNAP_SIGNATURE: &str = "BenWasHere";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message too short ({0} bytes)")]
    Short(usize),
    #[error("invalid config length {0} in a {1}-byte notification")]
    ConfigLength(i32, usize),
    #[error("unknown server state {0}")]
    State(i32),
    #[error("unrecognized protocol version {0}")]
    Protocol(i64),
    #[error("unreasonable length {0}")]
    Length(i32),
    #[error("bad address {0:?}")]
    Address(String),
}

/// The election-port handshake of the connecting side:
/// protocol version, server id, then its election address(es).
pub fn initial_message(my_id: u64, election_addr: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + election_addr.len());
    b.put_i64(PROTOCOL_V1);
    b.put_i64(my_id as i64);
    b.put_i32(election_addr.len() as i32);
    b.put_slice(election_addr.as_bytes());
    b.freeze()
}

/// Checks the address part of a received handshake: `host:port`
/// (several separated by '|' in V2). Returns the addresses.
pub fn parse_addresses(raw: &[u8]) -> Result<Vec<(String, u16)>, WireError> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    for a in text.split('|') {
        let (h, p) = a
            .rsplit_once(':')
            .ok_or_else(|| WireError::Address(a.to_owned()))?;
        let p: u16 = p.parse().map_err(|_| WireError::Address(a.to_owned()))?;
        let h = h.trim_start_matches('[').trim_end_matches(']');
        out.push((h.to_owned(), p));
    }
    Ok(out)
}

/// A leader-election notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    /// The proposed (or followed) leader; i64::MIN from an observer.
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    /// 0 for the 28- and 40-byte forms, else what the sender wrote.
    pub version: i32,
    /// The sender's configuration text (version > 1).
    pub config: Option<Bytes>,
}

impl Notification {
    pub fn encode(&self) -> Bytes {
        let cfg = self.config.as_deref().unwrap_or(&[]);
        let mut b = BytesMut::with_capacity(44 + cfg.len());
        b.put_i32(self.state as i32);
        b.put_i64(self.leader);
        b.put_i64(self.zxid);
        b.put_i64(self.election_epoch);
        b.put_i64(self.peer_epoch);
        b.put_i32(NOTIFICATION_VERSION);
        b.put_i32(cfg.len() as i32);
        b.put_slice(cfg);
        b.freeze()
    }

    /// Decodes every generation FastLeaderElection accepts: 28 bytes (no
    /// peer epoch), 40 bytes (no version), and the versioned form.
    pub fn decode(mut m: &[u8]) -> Result<Notification, WireError> {
        let len = m.len();
        if len < 28 {
            return Err(WireError::Short(len));
        }
        let state_raw = m.get_i32();
        let state = ServerState::from_i32(state_raw).ok_or(WireError::State(state_raw))?;
        let leader = m.get_i64();
        let zxid = m.get_i64();
        let election_epoch = m.get_i64();
        if len == 28 {
            return Ok(Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch: crate::epoch_of(zxid),
                version: 0,
                config: None,
            });
        }
        if m.remaining() < 8 {
            return Err(WireError::Short(len));
        }
        let peer_epoch = m.get_i64();
        // Exactly 40 bytes: the form before versions were read (Apache
        // reads no version from it either).
        if len == 40 {
            return Ok(Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version: 0,
                config: None,
            });
        }
        if m.remaining() < 4 {
            return Err(WireError::Short(len));
        }
        let version = m.get_i32();
        let mut config = None;
        if version > 1 {
            if m.remaining() < 4 {
                return Err(WireError::Short(len));
            }
            let n = m.get_i32();
            if n < 0 || n as usize > m.remaining() {
                return Err(WireError::ConfigLength(n, len));
            }
            config = Some(Bytes::copy_from_slice(&m[..n as usize]));
        }
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// A learner's PING reply: the sessions it saw activity on, with their
/// timeouts (Learner.ping).
pub fn encode_touches(touches: &[(i64, i32)]) -> Bytes {
    let mut b = BytesMut::with_capacity(touches.len() * 12);
    for (sid, to) in touches {
        b.put_i64(*sid);
        b.put_i32(*to);
    }
    b.freeze()
}

pub fn decode_touches(mut d: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::with_capacity(d.len() / 12);
    while d.remaining() >= 12 {
        out.push((d.get_i64(), d.get_i32()));
    }
    out
}

/// A forwarded client request (Learner.request): session, cxid, op, then
/// the request record.
pub fn encode_request(session: i64, cxid: i32, op: i32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + body.len());
    b.put_i64(session);
    b.put_i32(cxid);
    b.put_i32(op);
    b.put_slice(body);
    b.freeze()
}

/// (session, cxid, op, body) of a forwarded request.
pub fn decode_request(d: &Bytes) -> Result<(i64, i32, i32, Bytes), WireError> {
    if d.len() < 16 {
        return Err(WireError::Short(d.len()));
    }
    let mut h = &d[..16];
    Ok((h.get_i64(), h.get_i32(), h.get_i32(), d.slice(16..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_forms() {
        let n = Notification {
            state: ServerState::Looking,
            leader: 3,
            zxid: 0x1_0000_0005,
            election_epoch: 2,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: Some(Bytes::from_static(b"server.1=a:1:2:participant\nversion=0")),
        };
        let b = n.encode();
        assert_eq!(Notification::decode(&b).unwrap(), n);
        // 40-byte (no config length) and 28-byte (no peer epoch) forms.
        let old = Notification::decode(&b[..40]).unwrap();
        assert_eq!((old.version, old.config.is_none()), (0, true));
        assert_eq!(old.peer_epoch, 1);
        let oldest = Notification::decode(&b[..28]).unwrap();
        assert_eq!(oldest.peer_epoch, 1);
        assert!(Notification::decode(&b[..20]).is_err());
        let mut bad = BytesMut::from(&b[..44]);
        bad.put_i32(1 << 30);
        assert!(Notification::decode(&bad).is_err());
    }

    #[test]
    fn addresses_and_touches() {
        assert_eq!(
            parse_addresses(b"127.0.0.1:3888|[::1]:3889").unwrap(),
            vec![("127.0.0.1".into(), 3888), ("::1".into(), 3889)]
        );
        assert!(parse_addresses(b"nohost").is_err());
        let t = vec![(1i64, 3000i32), (0x7f00_0000_0000_0001, 40000)];
        assert_eq!(decode_touches(&encode_touches(&t)), t);
    }
}
