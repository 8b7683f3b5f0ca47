//! ZooKeeper's text trace mask (ZooTrace): which kinds of events are
//! logged at TRACE level, read with `gtmk` and set with `stmk` (or the
//! admin `get_trace_mask` / `set_trace_mask`). The log level still
//! decides: with TRACE off nothing is traced whatever the mask.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::info;

pub const CLIENT_REQUEST: u64 = 1 << 1;
pub const CLIENT_PING: u64 = 1 << 3;
pub const SERVER_PACKET: u64 = 1 << 4;
/// Sessions entering and leaving the tracker (besides their INFO lines).
pub const SESSION: u64 = 1 << 5;
pub const EVENT_DELIVERY: u64 = 1 << 6;
pub const WARNING: u64 = 1 << 8;

/// ZooTrace's initial mask: requests, quorum packets, sessions, warnings.
pub const DEFAULT: u64 = CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING;

#[derive(Debug)]
pub struct TraceMask(AtomicU64);

impl Default for TraceMask {
    fn default() -> Self {
        TraceMask(AtomicU64::new(DEFAULT))
    }
}

impl TraceMask {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, mask: u64) {
        self.0.store(mask, Ordering::Relaxed);
        info!("set text trace mask to 0x{mask:x}");
    }

    /// Events of kind `bit` are traced.
    pub fn on(&self, bit: u64) -> bool {
        self.get() & bit != 0
    }

    /// A session added to or removed from the tracker (SESSION), in
    /// SessionTrackerImpl's words.
    pub fn session(&self, what: &str, sid: i64) {
        if self.on(SESSION) {
            tracing::trace!("SessionTrackerImpl --- {what} session 0x{sid:x}");
        }
    }

    /// A quorum packet received `from` a peer (SERVER_PACKET).
    pub fn quorum_packet(&self, from: std::fmt::Arguments, pkt: &jute::quorum::QuorumPacket) {
        if self.on(SERVER_PACKET) {
            tracing::trace!(
                "from {from}: {} zxid 0x{:x}, {} bytes",
                zab::wire::packet::name(pkt.packet_type),
                pkt.zxid,
                pkt.data.len()
            );
        }
    }
}
