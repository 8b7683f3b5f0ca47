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

/// A host as it goes before `:port`: IPv6 addresses in brackets.
pub fn bracket(host: &str) -> String {
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
/// majority quorums over its participants (QuorumMaj), or hierarchical
/// ones when `group.N` / `weight.N` lines are given (QuorumHierarchical).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumConfig {
    pub members: BTreeMap<u64, Member>,
    /// The zxid that made this configuration (0 for a static one).
    pub version: i64,
    /// Hierarchical quorums: each grouped server's group (`group.G=a:b:c`).
    /// Empty for majority quorums.
    pub groups: BTreeMap<u64, u64>,
    /// Hierarchical quorums: each server's weight (`weight.N=w`; a
    /// participant without one weighs 1).
    pub weights: BTreeMap<u64, u64>,
    /// Hierarchical quorums: how many `group.G` lines there are.
    pub group_lines: usize,
}

impl QuorumConfig {
    /// From `server.N` (and `version`) keys; other keys are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<QuorumConfig, String> {
        let mut c = QuorumConfig::default();
        let mut hierarchical = false;
        let id_of = |k: &str, rest: &str| -> Result<u64, String> {
            rest.trim().parse().map_err(|_| format!("bad id in {k:?}"))
        };
        for (k, v) in pairs {
            if let Some(id) = k.strip_prefix("server.") {
                let id = id_of(k, id)?;
                let m = Member::parse(id, v)?;
                c.members.insert(id, m);
            } else if k == "version" {
                c.version = i64::from_str_radix(v.trim(), 16)
                    .map_err(|_| format!("bad config version {v:?}"))?;
            } else if let Some(g) = k.strip_prefix("group.") {
                hierarchical = true;
                let gid = id_of(k, g)?;
                c.group_lines += 1;
                for sid in v.split(':') {
                    let sid: u64 = sid
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad server id {sid:?} in {k}"))?;
                    if c.groups.insert(sid, gid).is_some() {
                        return Err(format!("Server {sid} is in multiple groups"));
                    }
                }
            } else if let Some(id) = k.strip_prefix("weight.") {
                hierarchical = true;
                let sid = id_of(k, id)?;
                let w: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad weight {v:?} in {k}"))?;
                c.weights.insert(sid, w);
            }
        }
        if hierarchical {
            // As QuorumHierarchical.parse: every participant in a group,
            // weighing 1 unless told otherwise.
            for m in c.members.values() {
                if m.kind == LearnerType::Participant {
                    if !c.groups.contains_key(&m.id) {
                        return Err(format!("Server {} is not in a group", m.id));
                    }
                    c.weights.entry(m.id).or_insert(1);
                }
            }
        }
        Ok(c)
    }

    /// Hierarchical quorums (group/weight lines), not majorities.
    pub fn is_hierarchical(&self) -> bool {
        !self.groups.is_empty() || !self.weights.is_empty()
    }

    /// A server's weight: 1 for every voter under majority quorums; under
    /// hierarchical ones its `weight.N` (a server of weight 0 is never
    /// elected, as FastLeaderElection skips it).
    pub fn weight(&self, id: u64) -> u64 {
        if self.is_hierarchical() {
            self.weights.get(&id).copied().unwrap_or(0)
        } else {
            1
        }
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

    /// More than half of the voters are in `set` (QuorumMaj); with groups,
    /// more than half of the groups of non-zero weight each have more than
    /// half of their weight in `set` (QuorumHierarchical.containsQuorum).
    pub fn is_quorum(&self, set: &BTreeSet<u64>) -> bool {
        if !self.is_hierarchical() {
            let n = set.iter().filter(|id| self.is_voter(**id)).count();
            return n > self.voter_count() / 2;
        }
        let weight = |sid: &u64| self.weights.get(sid).copied().unwrap_or(0);
        let mut total: BTreeMap<u64, u64> = BTreeMap::new();
        for (sid, gid) in &self.groups {
            *total.entry(*gid).or_default() += weight(sid);
        }
        let groups = self.group_lines - total.values().filter(|w| **w == 0).count();
        let mut have: BTreeMap<u64, u64> = BTreeMap::new();
        for sid in set {
            if let Some(gid) = self.groups.get(sid) {
                *have.entry(*gid).or_default() += weight(sid);
            }
        }
        let majorities = have.iter().filter(|(gid, w)| **w > total[gid] / 2).count();
        !set.is_empty() && majorities > groups / 2
    }
}

impl fmt::Display for QuorumConfig {
    /// As QuorumMaj.toString: one `server.N=` line each, then `version=hex`;
    /// as QuorumHierarchical's, `group.G=a:b` and `weight.N=w` lines between.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.members.values() {
            writeln!(f, "server.{}={}", m.id, m)?;
        }
        let mut groups: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (sid, gid) in &self.groups {
            groups.entry(*gid).or_default().push(sid.to_string());
        }
        for (gid, sids) in groups {
            writeln!(f, "group.{gid}={}", sids.join(":"))?;
        }
        for (sid, w) in &self.weights {
            writeln!(f, "weight.{sid}={w}")?;
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
        assert!(!c.is_hierarchical());
        assert_eq!(c.weight(3), 1);
    }

    #[test]
    fn hierarchical_quorums_need_a_majority_of_groups_each_by_weight() {
        let servers = "server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n\
                       server.3=127.0.0.1:5:6\nserver.4=127.0.0.1:7:8\n\
                       server.5=127.0.0.1:9:10\nserver.6=127.0.0.1:11:12:observer\n";
        // Two groups: both need a weighted majority.
        let c = QuorumConfig::parse(&format!(
            "{servers}group.1=1:2:3\ngroup.2=4:5\nweight.1=3\nversion=0"
        ))
        .unwrap();
        assert!(c.is_hierarchical());
        assert_eq!(c.weight(1), 3);
        assert_eq!(c.weight(2), 1);
        assert_eq!(c.weight(6), 0);
        // Group 1 weighs 5: server 1 alone (3) is its majority.
        assert!(c.is_quorum(&[1, 4, 5].into()));
        assert!(!c.is_quorum(&[2, 3, 4, 5].into()));
        // Four of five servers, but group 2 has only half its weight.
        assert!(!c.is_quorum(&[1, 2, 3, 4].into()));
        assert!(!c.is_quorum(&[].into()));
        // The text form is Apache's, and reads back the same.
        let text = c.to_string();
        assert!(
            text.ends_with("group.1=1:2:3\ngroup.2=4:5\nweight.1=3\nweight.2=1\nweight.3=1\nweight.4=1\nweight.5=1\nversion=0"),
            "{text}"
        );
        assert_eq!(QuorumConfig::parse(&text).unwrap(), c);

        // A group of weight 0 does not count among the groups.
        let c = QuorumConfig::parse(&format!(
            "{servers}group.1=1:2:3\ngroup.2=4:5\nweight.4=0\nweight.5=0"
        ))
        .unwrap();
        assert!(c.is_quorum(&[1, 2].into()));
        assert!(!c.is_quorum(&[1, 4, 5].into()));

        let e = QuorumConfig::parse(&format!("{servers}group.1=1:2:3")).unwrap_err();
        assert!(e.contains("Server 4 is not in a group"), "{e}");
        let e = QuorumConfig::parse(&format!("{servers}group.1=1:2:3\ngroup.2=3:4:5")).unwrap_err();
        assert!(e.contains("Server 3 is in multiple groups"), "{e}");
    }
}
