//! `org.apache.zookeeper.data`: identities, ACLs and stats.

use crate::record;

record! {
    /// An identity: a scheme ("world", "digest", "ip", "auth", "super", ...) and an id.
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

record! {
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

record! {
    /// The Stat clients see.
    #[derive(Copy)]
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

record! {
    /// The Stat as stored in snapshots (no data length or child count).
    #[derive(Copy)]
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

record! {
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Self {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Self {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }
}
