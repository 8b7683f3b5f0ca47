//! Ensemble membership: `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]`
//! lines (zoo.cfg or the dynamic config file), majority quorums, and the
//! text form of a configuration that Apache ZooKeeper exchanges (in
//! notifications, NEWLEADER and /zookeeper/config).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerType {
    Participant,
    Observer,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub kind: LearnerType,
    /// `;[host:]port`, when the line gives one.
    pub client: Option<(String, u16)>,
}

impl Member {
    /// Parses the value of `server.<id>`.
    pub fn parse(id: u64, value: &str) -> Result<Member, String> {
        let value = value.trim();
        let (addrs, client) = match value.split_once(';') {
            Some((a, c)) => (a.trim(), Some(c.trim())),
            None => (value, None),
        };
        // Several addresses (multi-address) are separated by '|'; the type
        // suffix follows the last one. We use the first address.
        let first = addrs.split('|').next().unwrap_or("");
        let last = addrs.rsplit('|').next().unwrap_or("");
        let parts = split_host_ports(first)?;
        if parts.len() < 3 {
            return Err(format!(
                "server.{id}={value}: expected host:quorumPort:electionPort"
            ));
        }
        let host = parts[0].clone();
        let port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("server.{id}={value}: bad port {s:?}"))
        };
        let quorum_port = port(&parts[1])?;
        let election_port = port(&parts[2])?;
        let last_parts = split_host_ports(last)?;
        let kind = match last_parts.get(3).map(|s| s.to_ascii_lowercase()) {
            None => LearnerType::Participant,
            Some(t) if t == "participant" => LearnerType::Participant,
            Some(t) if t == "observer" => LearnerType::Observer,
            Some(t) => return Err(format!("server.{id}={value}: unknown peer type {t:?}")),
        };
        let client = match client {
            None | Some("") => None,
            Some(c) => {
                let parts = split_host_ports(c)?;
                match parts.as_slice() {
                    [p] => Some(("0.0.0.0".to_owned(), port(p)?)),
                    [h, p] => Some((h.clone(), port(p)?)),
                    _ => return Err(format!("server.{id}={value}: bad client address {c:?}")),
                }
            }
        };
        Ok(Member {
            id,
            host,
            quorum_port,
            election_port,
            kind,
            client,
        })
    }

    pub fn quorum_addr(&self) -> String {
        format!("{}:{}", bracket(&self.host), self.quorum_port)
    }

    pub fn election_addr(&self) -> String {
        format!("{}:{}", bracket(&self.host), self.election_port)
    }
}

/// Splits `host:a:b` where host may be a bracketed IPv6 address.
fn split_host_ports(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, rest) = rest
            .split_once(']')
            .ok_or_else(|| format!("unterminated IPv6 address in {s:?}"))?;
        let mut out = vec![host.to_owned()];
        if let Some(rest) = rest.strip_prefix(':') {
            out.extend(rest.split(':').map(str::to_owned));
        } else if !rest.is_empty() {
            return Err(format!("bad address {s:?}"));
        }
        Ok(out)
    } else {
        Ok(s.split(':').map(str::to_owned).collect())
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl fmt::Display for Member {
    /// As QuorumServer.toString: `host:q:e:type[;clientHost:clientPort]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            bracket(&self.host),
            self.quorum_port,
            self.election_port,
            match self.kind {
                LearnerType::Participant => "participant",
                LearnerType::Observer => "observer",
            }
        )?;
        if let Some((h, p)) = &self.client {
            write!(f, ";{}:{}", bracket(h), p)?;
        }
        Ok(())
    }
}

/// The membership of an ensemble at one configuration version, with
/// majority quorums over its participants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumConfig {
    pub members: BTreeMap<u64, Member>,
    /// The zxid that made this configuration (0 for a static one).
    pub version: i64,
}

impl QuorumConfig {
    /// From `server.N` (and `version`) keys; other keys are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<QuorumConfig, String> {
        let mut c = QuorumConfig::default();
        for (k, v) in pairs {
            if let Some(id) = k.strip_prefix("server.") {
                let id: u64 = id.parse().map_err(|_| format!("bad server id in {k:?}"))?;
                let m = Member::parse(id, v)?;
                c.members.insert(id, m);
            } else if k == "version" {
                c.version = i64::from_str_radix(v.trim(), 16)
                    .map_err(|_| format!("bad config version {v:?}"))?;
            }
        }
        Ok(c)
    }

    /// Parses the text form (`server.N=...` lines and `version=hex`).
    pub fn parse(text: &str) -> Result<QuorumConfig, String> {
        let pairs: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        QuorumConfig::from_pairs(pairs)
    }

    pub fn voters(&self) -> impl Iterator<Item = u64> + '_ {
        self.members
            .values()
            .filter(|m| m.kind == LearnerType::Participant)
            .map(|m| m.id)
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| m.kind == LearnerType::Participant)
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    /// More than half of the voters are in `set` (QuorumMaj).
    pub fn is_quorum(&self, set: &BTreeSet<u64>) -> bool {
        let n = set.iter().filter(|id| self.is_voter(**id)).count();
        n > self.voter_count() / 2
    }
}

impl fmt::Display for QuorumConfig {
    /// As QuorumMaj.toString: one `server.N=` line each, then `version=hex`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.members.values() {
            writeln!(f, "server.{}={}", m.id, m)?;
        }
        write!(f, "version={:x}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let m = Member::parse(1, "127.0.0.1:2888:3888").unwrap();
        assert_eq!((m.quorum_port, m.election_port), (2888, 3888));
        assert_eq!(m.kind, LearnerType::Participant);
        assert_eq!(m.client, None);
        let m = Member::parse(2, "zk2:2888:3888:observer;2181").unwrap();
        assert_eq!(m.kind, LearnerType::Observer);
        assert_eq!(m.client, Some(("0.0.0.0".into(), 2181)));
        let m = Member::parse(3, "[::1]:2888:3888:participant;[::1]:2181").unwrap();
        assert_eq!(m.host, "::1");
        assert_eq!(m.to_string(), "[::1]:2888:3888:participant;[::1]:2181");
        assert!(Member::parse(4, "host:2888").is_err());
        assert!(Member::parse(4, "host:x:3888").is_err());
        assert!(Member::parse(4, "host:1:2:voter").is_err());
    }

    #[test]
    fn text_form_round_trips_and_counts_majorities() {
        let text = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                    server.2=127.0.0.1:2889:3889:participant\n\
                    server.3=127.0.0.1:2890:3890:participant\n\
                    server.4=127.0.0.1:2891:3891:observer\nversion=100000000";
        let c = QuorumConfig::parse(text).unwrap();
        assert_eq!(c.to_string(), text);
        assert_eq!(c.version, 0x1_0000_0000);
        assert_eq!(c.voter_count(), 3);
        assert!(c.is_quorum(&[1, 2].into()));
        assert!(!c.is_quorum(&[1, 4].into()));
        assert!(!c.is_quorum(&[3].into()));
    }
}
