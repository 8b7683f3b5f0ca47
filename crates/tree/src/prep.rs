//! Turning a write request into a txn (ZooKeeper's PrepRequestProcessor):
//! every check a write must pass, in ZooKeeper's order so that clients see
//! the same error code, against the tree plus the changes of txns prepared
//! but not yet applied (`Pending`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use jute::consts::{op, perms, CreateMode, ErrorCode};
use jute::data::{Acl, Id, StatPersisted};
use jute::request::{MultiOp, Request};
use jute::txn::*;

use crate::acl;
use crate::digest::{finish, prefix_crc};
use crate::path;
use crate::tree::{owner_kind, ttl_owner, DataTree, OwnerKind, CONFIG, CONTAINER_OWNER, MAX_TTL};

/// Settings that change how requests are checked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types: bool,
    /// `zookeeper.skipACL`.
    pub skip_acl: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `zookeeper.enforceQuota`: refuse writes past a hard quota limit.
    pub enforce_quota: bool,
}

/// Who is asking, and the zxid and time the txn will carry.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub session_id: i64,
    pub auth: &'a [Id],
    pub zxid: i64,
    pub time: i64,
    pub opts: &'a Options,
}

/// What prep needs to know of a node.
#[derive(Debug, Clone)]
struct Rec {
    stat: StatPersisted,
    children: i32,
    acl: Arc<Vec<Acl>>,
    /// The CRC of the node's path and data (`digest::prefix_crc`), kept
    /// only while digests are predicted: a later change to the node's Stat
    /// alone then needs no copy of its data.
    prefix: Option<u32>,
}

/// Changes of prepared-but-unapplied txns, newest per path; `None` marks a
/// deleted node. Empty whenever every prepared txn has been applied.
/// A path's newest in-flight change: its txn's zxid and the node after it.
type Change = (i64, Option<Rec>);

#[derive(Debug, Default, Clone)]
pub struct Pending {
    /// ahash, not std's SipHash: every write hashes its path here three
    /// times.
    changes: HashMap<String, Change, ahash::RandomState>,
    /// Every change in zxid order, so that forgetting the applied ones
    /// costs what was applied, not what is in flight (a leader may have
    /// thousands of txns in flight, and applies them one commit at a time).
    /// Each with what it changes in the tree digest.
    order: VecDeque<(i64, String, i64)>,
    /// Predict the tree digest each txn leaves (a leader's proposals carry
    /// it, as ZooKeeper's do).
    digests: bool,
    /// The digest change of every change in `order`: the tree's digest plus
    /// this is the digest once every prepared txn is applied.
    delta: i64,
    /// Changes recorded and forgotten since `take_counts` last ran.
    queued: u64,
    removed: u64,
}

impl Pending {
    /// Forgets everything in flight (a new leader, a log failure), keeping
    /// the counts.
    pub fn clear(&mut self) {
        self.changes.clear();
        self.order.clear();
        self.delta = 0;
    }

    /// From now on, predict tree digests (`predicted_digest`).
    pub fn track_digests(&mut self) {
        self.digests = true;
    }

    /// The digest `tree` will have once every txn prepared so far is
    /// applied (ZooKeeper's leader puts it in each proposal).
    pub fn predicted_digest(&self, tree: &DataTree) -> i64 {
        tree.digest().wrapping_add(self.delta)
    }

    /// (changes recorded, changes forgotten as applied) since the last call:
    /// ZooKeeper's outstanding_changes_queued and _removed.
    pub fn take_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.queued),
            std::mem::take(&mut self.removed),
        )
    }

    /// Forgets changes of txns up to `zxid`, now visible in the tree.
    pub fn applied(&mut self, zxid: i64) {
        while self.order.front().is_some_and(|(z, _, _)| *z <= zxid) {
            let (_, p, d) = self.order.pop_front().expect("checked");
            self.delta = self.delta.wrapping_sub(d);
            self.removed += 1;
            // A later txn's change to the same path stays.
            if let Entry::Occupied(e) = self.changes.entry(p) {
                if e.get().0 <= zxid {
                    e.remove();
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

struct Prep<'a> {
    tree: &'a DataTree,
    pending: &'a mut Pending,
    ctx: Ctx<'a>,
    /// Inside a multi: what each change replaced, to roll back a failure.
    undo: Option<Vec<(String, Option<Change>)>>,
}

impl Prep<'_> {
    fn get(&self, p: &str) -> Result<Rec, ErrorCode> {
        match self.pending.changes.get(p) {
            Some((_, Some(r))) => Ok(r.clone()),
            Some((_, None)) => Err(ErrorCode::NoNode),
            None => {
                let n = self.tree.node(p).ok_or(ErrorCode::NoNode)?;
                Ok(Rec {
                    stat: n.stat,
                    children: n.num_children as i32,
                    acl: self.tree.acl_of(n),
                    prefix: self
                        .pending
                        .digests
                        .then(|| n.crc.unwrap_or_else(|| prefix_crc(p, n.data))),
                })
            }
        }
    }

    /// What a `Rec` of node `p` with `data` keeps: only to predict digests.
    fn prefix(&self, p: &str, data: &Option<bytes::Bytes>) -> Option<u32> {
        self.pending.digests.then(|| prefix_crc(p, data.as_deref()))
    }

    /// What `r`, as fetched for `p`, adds to the tree digest (0 when
    /// digests are not predicted). A Rec made before digests were predicted
    /// keeps no CRC, and counts as null data.
    fn digest_of(&self, p: &str, r: &Rec) -> i64 {
        if self.pending.digests {
            finish(p, r.prefix.unwrap_or_else(|| prefix_crc(p, None)), &r.stat)
        } else {
            0
        }
    }

    /// Records `r` for `p`, finding what it replaces itself: for paths the
    /// caller has not fetched.
    fn put(&mut self, p: &str, r: Option<Rec>) {
        let old = if self.pending.digests {
            match self.pending.changes.get(p) {
                Some((_, Some(o))) => self.digest_of(p, o),
                Some((_, None)) => 0,
                None => self.tree.node(p).map_or(0, |n| crate::digest::of(p, &n)),
            }
        } else {
            0
        };
        self.replace(p, old, r);
    }

    /// Records `r` for `p` over a record whose digest (`digest_of` of what
    /// `get` returned, 0 for none) the caller has: a write fetched its node
    /// already, and a second walk of the store cost as much as the first.
    fn replace(&mut self, p: &str, old: i64, r: Option<Rec>) {
        let new = r.as_ref().map_or(0, |n| self.digest_of(p, n));
        let d = new.wrapping_sub(old);
        self.pending.delta = self.pending.delta.wrapping_add(d);
        let before = self
            .pending
            .changes
            .insert(p.to_owned(), (self.ctx.zxid, r));
        self.pending
            .order
            .push_back((self.ctx.zxid, p.to_owned(), d));
        self.pending.queued += 1;
        if let Some(u) = self.undo.as_mut() {
            u.push((p.to_owned(), before));
        }
    }

    fn check_acl(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.ctx.opts.skip_acl || acl::check(acl, perm, self.ctx.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn fixup(&self, acl: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
        acl::fixup(acl, self.ctx.auth).ok_or(ErrorCode::InvalidAcl)
    }

    /// `ZooKeeperServer.checkQuota`: hard limits refuse when quotas are
    /// enforced; any limit passed and not refused is logged (ZooKeeper 3.8
    /// logs only when enforcing; before 3.7 it always warned).
    fn check_quota(&self, p: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        let mut refused = false;
        for e in self.tree.quota_check(p, bytes_diff, count_diff) {
            tracing::warn!("{}", e.message);
            refused |= e.hard && self.ctx.opts.enforce_quota;
        }
        if refused {
            Err(ErrorCode::QuotaExceeded)
        } else {
            Ok(())
        }
    }

    fn is_normal_ephemeral(&self, owner: i64) -> bool {
        matches!(
            owner_kind(owner, self.ctx.opts.extended_types),
            OwnerKind::Ephemeral(_)
        )
    }

    /// The parent path of a node to delete; the root and the system nodes
    /// cannot be deleted.
    fn parent_for_delete<'p>(&self, p: &'p str) -> Result<&'p str, ErrorCode> {
        if p.contains('\0') || matches!(p, "/" | "/zookeeper" | "/zookeeper/quota" | CONFIG) {
            return Err(ErrorCode::BadArguments);
        }
        path::parent(p).ok_or(ErrorCode::BadArguments)
    }

    fn create(
        &mut self,
        opc: i32,
        req_path: &str,
        data: &Option<bytes::Bytes>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Result<TxnBody, ErrorCode> {
        let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.ctx.opts.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if ttl <= 0 || ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 || opc == op::CREATE_TTL {
            return Err(ErrorCode::BadArguments);
        }
        if req_path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if req_path == "/" {
            "/"
        } else {
            path::parent(req_path).ok_or(ErrorCode::BadArguments)?
        };
        let acl = self.fixup(acl)?;
        let parent = self.get(parent_path)?;
        self.check_acl(&parent.acl, perms::CREATE)?;
        let mut p = req_path.to_owned();
        if mode.is_sequential() {
            p.push_str(&format!("{:010}", parent.stat.cversion));
        }
        path::validate(&p).map_err(|_| ErrorCode::BadArguments)?;
        if self.get(&p).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if self.is_normal_ephemeral(parent.stat.ephemeral_owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent.stat.cversion + 1;
        let len = data.as_ref().map_or(0, |d| d.len() as i64);
        self.check_quota(&p, len, 1)?;
        let owner = if opc == op::CREATE_CONTAINER {
            CONTAINER_OWNER
        } else if opc == op::CREATE_TTL {
            ttl_owner(ttl)
        } else if mode.is_ephemeral() {
            self.ctx.session_id
        } else {
            0
        };
        let data = &crate::tree::own(data);
        let body = match opc {
            op::CREATE_CONTAINER => TxnBody::CreateContainer(CreateContainerTxn {
                path: p.clone(),
                data: data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
            }),
            op::CREATE_TTL => TxnBody::CreateTtl(CreateTtlTxn {
                path: p.clone(),
                data: data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
                ttl,
            }),
            _ => {
                let t = CreateTxn {
                    path: p.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                };
                if opc == op::CREATE2 {
                    TxnBody::Create2(t)
                } else {
                    TxnBody::Create(t)
                }
            }
        };
        let zxid = self.ctx.zxid;
        let was = self.digest_of(parent_path, &parent);
        let mut parent = parent;
        parent.children += 1;
        parent.stat.cversion = new_cversion;
        parent.stat.pzxid = zxid;
        self.replace(parent_path, was, Some(parent));
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: self.ctx.time,
            mtime: self.ctx.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        // `get` found no node at `p`: nothing replaced.
        self.replace(
            &p,
            0,
            Some(Rec {
                stat,
                children: 0,
                acl: Arc::new(acl),
                prefix: self.prefix(&p, data),
            }),
        );
        Ok(body)
    }

    fn delete(&mut self, p: &str, version: i32) -> Result<TxnBody, ErrorCode> {
        let parent_path = self.parent_for_delete(p)?;
        let parent = self.get(parent_path)?;
        self.check_acl(&parent.acl, perms::DELETE)?;
        let node = self.get(p)?;
        check_version(node.stat.version, version)?;
        if node.children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(parent_path, parent, p, &node);
        Ok(TxnBody::Delete(DeleteTxn { path: p.to_owned() }))
    }

    fn remove(&mut self, parent_path: &str, mut parent: Rec, p: &str, node: &Rec) {
        let was = self.digest_of(parent_path, &parent);
        parent.children -= 1;
        parent.stat.pzxid = self.ctx.zxid;
        self.replace(parent_path, was, Some(parent));
        let was = self.digest_of(p, node);
        self.replace(p, was, None);
    }

    fn delete_container(&mut self, p: &str) -> Result<TxnBody, ErrorCode> {
        let parent_path = self.parent_for_delete(p)?;
        let node = self.get(p)?;
        if node.children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if self.is_normal_ephemeral(node.stat.ephemeral_owner) {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.get(parent_path)?;
        self.remove(parent_path, parent, p, &node);
        Ok(TxnBody::DeleteContainer(DeleteTxn { path: p.to_owned() }))
    }

    fn set_data(
        &mut self,
        p: &str,
        data: &Option<bytes::Bytes>,
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.get(p)?;
        self.check_acl(&node.acl, perms::WRITE)?;
        if self.tree.has_quota_limits() {
            let old_len = self.tree.node(p).map_or(0, |n| n.data_len() as i64);
            let len = data.as_ref().map_or(0, |d| d.len() as i64);
            self.check_quota(p, len - old_len, 0)?;
        }
        let new_version = check_version(node.stat.version, version)?;
        let was = self.digest_of(p, &node);
        node.stat.version = new_version;
        node.stat.mtime = self.ctx.time;
        node.stat.mzxid = self.ctx.zxid;
        // Copied out of the request's buffer, which must not outlive it.
        let data = crate::tree::own(data);
        node.prefix = self.prefix(p, &data);
        self.replace(p, was, Some(node));
        Ok(TxnBody::SetData(SetDataTxn {
            path: p.to_owned(),
            data,
            version: new_version,
        }))
    }

    fn set_acl(&mut self, p: &str, acl: &[Acl], version: i32) -> Result<TxnBody, ErrorCode> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let acl = self.fixup(acl)?;
        let mut node = self.get(p)?;
        self.check_acl(&node.acl, perms::ADMIN)?;
        let new_version = check_version(node.stat.aversion, version)?;
        let was = self.digest_of(p, &node);
        node.stat.aversion = new_version;
        node.acl = Arc::new(acl.clone());
        self.replace(p, was, Some(node));
        Ok(TxnBody::SetAcl(SetAclTxn {
            path: p.to_owned(),
            acl,
            version: new_version,
        }))
    }

    fn check(&mut self, p: &str, version: i32) -> Result<TxnBody, ErrorCode> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.get(p)?;
        self.check_acl(&node.acl, perms::READ)?;
        let v = check_version(node.stat.version, version)?;
        Ok(TxnBody::Check(CheckVersionTxn {
            path: p.to_owned(),
            version: v,
        }))
    }

    fn close_session(&mut self) -> TxnBody {
        let sid = self.ctx.session_id;
        let mut paths: std::collections::BTreeSet<String> =
            self.tree.ephemerals(sid).cloned().collect();
        for (p, (_, r)) in &self.pending.changes {
            match r {
                Some(r) if r.stat.ephemeral_owner == sid => {
                    paths.insert(p.clone());
                }
                // Deleted, or deleted and created again by someone else
                // (Apache sees the deletion among its outstanding changes):
                // not this session's to delete.
                _ => {
                    paths.remove(p);
                }
            }
        }
        for p in &paths {
            if let Some(pp) = path::parent(p) {
                if let Ok(mut parent) = self.get(pp) {
                    let was = self.digest_of(pp, &parent);
                    parent.children -= 1;
                    parent.stat.pzxid = self.ctx.zxid;
                    self.replace(pp, was, Some(parent));
                }
            }
            self.put(p, None);
        }
        TxnBody::CloseSession(CloseSessionTxn {
            paths_to_delete: paths.into_iter().collect(),
        })
    }

    fn multi_op(&mut self, o: &MultiOp) -> Result<TxnBody, ErrorCode> {
        match o {
            MultiOp::Create(opc, r) => self.create(*opc, &r.path, &r.data, &r.acl, r.flags, -1),
            MultiOp::CreateTtl(r) => {
                self.create(op::CREATE_TTL, &r.path, &r.data, &r.acl, r.flags, r.ttl)
            }
            MultiOp::Delete(r) => self.delete(&r.path, r.version),
            MultiOp::SetData(r) => self.set_data(&r.path, &r.data, r.version),
            MultiOp::Check(r) => self.check(&r.path, r.version),
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
        }
    }

    fn multi(&mut self, ops: &[MultiOp]) -> TxnBody {
        // Undone by hand on failure: cloning `Pending` costs all in flight.
        let order_len = self.pending.order.len();
        self.undo = Some(Vec::new());
        let mut failed = false;
        let mut subs = Vec::with_capacity(ops.len());
        for o in ops {
            if failed {
                subs.push(error(ErrorCode::RuntimeInconsistency));
                continue;
            }
            match self.multi_op(o) {
                Ok(t) => subs.push(t),
                Err(e) => {
                    failed = true;
                    subs.push(error(e));
                    for (p, before) in self.undo.take().unwrap_or_default().into_iter().rev() {
                        match before {
                            Some(b) => self.pending.changes.insert(p, b),
                            None => self.pending.changes.remove(&p),
                        };
                    }
                    for (_, _, d) in self.pending.order.drain(order_len..) {
                        self.pending.delta = self.pending.delta.wrapping_sub(d);
                    }
                }
            }
        }
        self.undo = None;
        TxnBody::Multi(subs)
    }
}

fn error(e: ErrorCode) -> TxnBody {
    TxnBody::Error(ErrorTxn { err: e.code() })
}

/// `checkAndIncVersion`: -1 matches any version; the next version skips -1.
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

/// Prepares a write. A failed check becomes an Error txn (it still takes a
/// zxid, as in ZooKeeper); a failed multi becomes a multi of error results.
pub fn prepare(tree: &DataTree, pending: &mut Pending, ctx: Ctx<'_>, req: &Request) -> TxnBody {
    let mut p = Prep {
        tree,
        pending,
        ctx,
        undo: None,
    };
    let r = match req {
        Request::Create(opc, r) => p.create(*opc, &r.path, &r.data, &r.acl, r.flags, -1),
        Request::CreateTtl(r) => p.create(op::CREATE_TTL, &r.path, &r.data, &r.acl, r.flags, r.ttl),
        Request::Delete(r) => p.delete(&r.path, r.version),
        Request::SetData(r) => p.set_data(&r.path, &r.data, r.version),
        Request::SetAcl(r) => p.set_acl(&r.path, &r.acl, r.version),
        Request::Check(r) => p.check(&r.path, r.version),
        Request::Multi(ops) => Ok(p.multi(ops)),
        Request::CloseSession => Ok(p.close_session()),
        Request::Reconfig(_) => Err(if ctx.opts.reconfig_enabled {
            // Standalone servers cannot reconfigure (the ensemble can).
            ErrorCode::Unimplemented
        } else {
            ErrorCode::ReconfigDisabled
        }),
        _ => Err(ErrorCode::BadArguments),
    };
    r.unwrap_or_else(error)
}

/// Prepares the internal deleteContainer request (container/TTL cleanup).
pub fn prepare_delete_container(
    tree: &DataTree,
    pending: &mut Pending,
    ctx: Ctx<'_>,
    path: &str,
) -> TxnBody {
    let mut p = Prep {
        tree,
        pending,
        ctx,
        undo: None,
    };
    p.delete_container(path).unwrap_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(check_version(3, -1), Ok(4));
        assert_eq!(check_version(3, 3), Ok(4));
        assert_eq!(check_version(3, 2), Err(ErrorCode::BadVersion));
        assert_eq!(check_version(-2, -1), Ok(0));
        assert_eq!(check_version(i32::MAX, -1), Ok(i32::MIN));
    }

    /// A second close of a session, while its first close and another
    /// session's create of the same path are in flight, leaves that node
    /// alone (a proptest found the close deleting it).
    #[test]
    fn a_close_leaves_a_node_recreated_by_another_session() {
        use jute::proto::CreateRequest;
        let opts = Options::default();
        let mut tree = crate::DataTree::new(false);
        let mut pending = Pending::default();
        let (s, t) = (0x11, 0x22);
        let mut zxid = 0;
        let mut prep = |tree: &crate::DataTree, pending: &mut Pending, sid: i64, req: Request| {
            zxid += 1;
            let ctx = Ctx {
                session_id: sid,
                auth: &[],
                zxid,
                time: 1,
                opts: &opts,
            };
            (zxid, prepare(tree, pending, ctx, &req))
        };
        let create = |flags| {
            Request::Create(
                op::CREATE,
                CreateRequest {
                    path: "/e".into(),
                    data: None,
                    acl: acl::open_acl_unsafe(),
                    flags,
                },
            )
        };
        let (z, b) = prep(&tree, &mut pending, s, create(1));
        let hdr = |zxid, client_id, b: &TxnBody| TxnHeader {
            client_id,
            cxid: 0,
            zxid,
            time: 1,
            op: b.op(),
        };
        assert_eq!(tree.apply(&hdr(z, s, &b), &b).err, 0);
        pending.applied(z);
        // In flight: s closes, t creates /e again, s closes again.
        let (_, first) = prep(&tree, &mut pending, s, Request::CloseSession);
        assert!(matches!(&first, TxnBody::CloseSession(c) if c.paths_to_delete == ["/e"]));
        let (_, again) = prep(&tree, &mut pending, t, create(0));
        assert!(matches!(again, TxnBody::Create(_)), "{again:?}");
        let (_, second) = prep(&tree, &mut pending, s, Request::CloseSession);
        assert!(
            matches!(&second, TxnBody::CloseSession(c) if c.paths_to_delete.is_empty()),
            "{second:?}"
        );
    }
}
