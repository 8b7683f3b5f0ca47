//! Reads, watch registration and the replies of applied writes (ZooKeeper's
//! FinalRequestProcessor), as jute records ready to encode.

use bytes::Bytes;
use jute::codec::{Record, Writer};
use jute::consts::{add_watch_mode, event, op, perms, watcher_type, ErrorCode};
use jute::data::{Acl, ClientInfo, Id, Stat};
use jute::proto::*;
use jute::request::{MultiOp, Request};

use crate::acl;
use crate::tree::{ApplyResult, DataTree};
use crate::watch::{Mode, WatcherId};

/// One result inside a multi reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Option<Bytes>, Stat),
    Error(i32),
}

impl OpResult {
    fn op(&self) -> i32 {
        match self {
            OpResult::Create(_) => op::CREATE,
            OpResult::Create2(..) => op::CREATE2,
            OpResult::Delete => op::DELETE,
            OpResult::SetData(_) => op::SET_DATA,
            OpResult::Check => op::CHECK,
            OpResult::GetChildren(_) => op::GET_CHILDREN,
            OpResult::GetData(..) => op::GET_DATA,
            OpResult::Error(_) => op::ERROR,
        }
    }
}

/// A reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create(String),
    Create2(String, Stat),
    Stat(Stat),
    GetData(Option<Bytes>, Stat),
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    Acl(Vec<Acl>, Stat),
    Path(String),
    Number(i32),
    Paths(Vec<String>),
    WhoAmI(Vec<ClientInfo>),
    Multi(Vec<OpResult>),
    /// addWatch answers with an ErrorResponse(0) body.
    ErrorBody(i32),
}

impl Response {
    pub fn write<W: Writer>(&self, w: &mut W) {
        match self {
            Response::Empty => {}
            Response::Create(p) | Response::Path(p) => w.put_string(p),
            Response::Create2(p, s) => {
                w.put_string(p);
                s.write(w);
            }
            Response::Stat(s) => s.write(w),
            Response::GetData(d, s) => {
                d.write(w);
                s.write(w);
            }
            Response::Children(c) | Response::Paths(c) => c.write(w),
            Response::Children2(c, s) => {
                c.write(w);
                s.write(w);
            }
            Response::Acl(a, s) => {
                a.write(w);
                s.write(w);
            }
            Response::Number(n) | Response::ErrorBody(n) => w.put_i32_be(*n),
            Response::WhoAmI(c) => c.write(w),
            Response::Multi(results) => {
                for r in results {
                    let err = if let OpResult::Error(e) = r { *e } else { 0 };
                    MultiHeader {
                        op: r.op(),
                        done: false,
                        err,
                    }
                    .write(w);
                    match r {
                        OpResult::Create(p) => w.put_string(p),
                        OpResult::Create2(p, s) => {
                            w.put_string(p);
                            s.write(w);
                        }
                        OpResult::Delete | OpResult::Check => {}
                        OpResult::SetData(s) => s.write(w),
                        OpResult::GetChildren(c) => c.write(w),
                        OpResult::GetData(d, s) => {
                            d.write(w);
                            s.write(w);
                        }
                        OpResult::Error(e) => w.put_i32_be(*e),
                    }
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(w);
            }
        }
    }
}

/// The reply to an applied write: its error code and body.
pub fn write_reply(rc: &ApplyResult) -> (i32, Response) {
    if rc.op == op::MULTI {
        // A multi always answers OK in the header; failures are per op.
        let results = rc.multi.iter().map(sub_result).collect();
        return (0, Response::Multi(results));
    }
    if rc.err != 0 {
        return (rc.err, Response::Empty);
    }
    let stat = rc.stat.unwrap_or_default();
    let body = match rc.op {
        op::CREATE => Response::Create(rc.path.clone()),
        op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => {
            Response::Create2(rc.path.clone(), stat)
        }
        op::SET_DATA | op::SET_ACL | op::CHECK => Response::Stat(stat),
        _ => Response::Empty,
    };
    (0, body)
}

fn sub_result(rc: &ApplyResult) -> OpResult {
    if rc.err != 0 || rc.op == op::ERROR {
        return OpResult::Error(rc.err);
    }
    let stat = rc.stat.unwrap_or_default();
    match rc.op {
        op::CREATE => OpResult::Create(rc.path.clone()),
        op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => {
            OpResult::Create2(rc.path.clone(), stat)
        }
        op::DELETE | op::DELETE_CONTAINER => OpResult::Delete,
        op::SET_DATA => OpResult::SetData(stat),
        op::CHECK => OpResult::Check,
        _ => OpResult::Error(ErrorCode::RuntimeInconsistency.code()),
    }
}

/// The caller of a read: its session, its connection (for watches) and
/// its identities.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub session_id: i64,
    pub watcher: WatcherId,
    pub auth: &'a [Id],
    pub skip_acl: bool,
}

impl Caller<'_> {
    fn check(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.skip_acl || acl::check(acl, perm, self.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }
}

fn get_data(
    t: &mut DataTree,
    c: &Caller,
    path: &str,
    watch: bool,
) -> Result<(Option<Bytes>, Stat), ErrorCode> {
    let n = t.node(path).ok_or(ErrorCode::NoNode)?;
    c.check(&t.acl_of(n), perms::READ)?;
    let out = (n.data_bytes(), n.stat(t.extended_types));
    if watch {
        t.add_data_watch(path, c.watcher);
    }
    Ok(out)
}

fn get_children(
    t: &mut DataTree,
    c: &Caller,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, Stat), ErrorCode> {
    let n = t.node(path).ok_or(ErrorCode::NoNode)?;
    c.check(&t.acl_of(n), perms::READ)?;
    let out = (
        t.child_names(path).map(str::to_owned).collect(),
        n.stat(t.extended_types),
    );
    if watch {
        t.add_child_watch(path, c.watcher);
    }
    Ok(out)
}

/// Serves a request that changes no data: reads, watch management, whoAmI.
pub fn read(t: &mut DataTree, c: &Caller, req: &Request) -> Result<Response, ErrorCode> {
    Ok(match req {
        Request::Exists(r) => {
            if r.path.contains('\0') {
                return Err(ErrorCode::BadArguments);
            }
            if let Some(n) = t.node(&r.path) {
                c.check(&t.acl_of(n), perms::READ)?;
            }
            if r.watch {
                t.add_data_watch(&r.path, c.watcher);
            }
            Response::Stat(
                t.node(&r.path)
                    .ok_or(ErrorCode::NoNode)?
                    .stat(t.extended_types),
            )
        }
        Request::GetData(r) => {
            let (d, s) = get_data(t, c, &r.path, r.watch)?;
            Response::GetData(d, s)
        }
        Request::GetChildren(r) => Response::Children(get_children(t, c, &r.path, r.watch)?.0),
        Request::GetChildren2(r) => {
            let (ch, s) = get_children(t, c, &r.path, r.watch)?;
            Response::Children2(ch, s)
        }
        Request::GetAcl(r) => {
            let n = t.node(&r.path).ok_or(ErrorCode::NoNode)?;
            let acl = t.acl_of(n);
            c.check(&acl, perms::READ | perms::ADMIN)?;
            let stat = n.stat(t.extended_types);
            if c.check(&acl, perms::ADMIN).is_ok() {
                Response::Acl(acl.to_vec(), stat)
            } else {
                // Without ADMIN, digest hashes are masked.
                let masked = acl
                    .iter()
                    .map(|a| {
                        if a.id.scheme == "digest" {
                            let user = a.id.id.split(':').next().unwrap_or("");
                            Acl::new(a.perms, "digest", &format!("{user}:x"))
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                Response::Acl(masked, stat)
            }
        }
        Request::GetAllChildrenNumber(r) => {
            let n = t.node(&r.path).ok_or(ErrorCode::NoNode)?;
            c.check(&t.acl_of(n), perms::READ)?;
            Response::Number(t.descendant_count(&r.path) as i32)
        }
        Request::GetEphemerals(r) => {
            let prefix = r.path.trim();
            let all = prefix.is_empty() || prefix == "/";
            Response::Paths(
                t.ephemerals(c.session_id)
                    .filter(|p| all || p.starts_with(&r.path))
                    .cloned()
                    .collect(),
            )
        }
        Request::Sync(r) => Response::Path(r.path.clone()),
        Request::MultiRead(ops) => {
            let mut results = Vec::with_capacity(ops.len());
            for o in ops {
                let res = match o {
                    MultiOp::GetChildren(r) => {
                        get_children(t, c, &r.path, false).map(|(ch, _)| OpResult::GetChildren(ch))
                    }
                    MultiOp::GetData(r) => {
                        get_data(t, c, &r.path, false).map(|(d, s)| OpResult::GetData(d, s))
                    }
                    _ => Err(ErrorCode::BadArguments),
                };
                results.push(res.unwrap_or_else(|e| OpResult::Error(e.code())));
            }
            Response::Multi(results)
        }
        Request::CheckWatches(r) => {
            if !watch_op(t, c.watcher, &r.path, r.watch_type, false)? {
                return Err(ErrorCode::NoWatcher);
            }
            Response::Empty
        }
        Request::RemoveWatches(r) => {
            if !watch_op(t, c.watcher, &r.path, r.watch_type, true)? {
                return Err(ErrorCode::NoWatcher);
            }
            Response::Empty
        }
        Request::AddWatch(r) => {
            let recursive = match r.mode {
                add_watch_mode::PERSISTENT => false,
                add_watch_mode::PERSISTENT_RECURSIVE => true,
                // WatcherMode.fromZooDef throws: a MarshallingError reply.
                _ => return Err(ErrorCode::MarshallingError),
            };
            t.add_persistent_watch(&r.path, c.watcher, recursive);
            Response::ErrorBody(0)
        }
        Request::SetWatches(r) => {
            set_watches(
                t,
                c.watcher,
                r.relative_zxid,
                [
                    &r.data_watches,
                    &r.exist_watches,
                    &r.child_watches,
                    &vec![],
                    &vec![],
                ],
            );
            Response::Empty
        }
        Request::SetWatches2(r) => {
            set_watches(
                t,
                c.watcher,
                r.relative_zxid,
                [
                    &r.data_watches,
                    &r.exist_watches,
                    &r.child_watches,
                    &r.persistent_watches,
                    &r.persistent_recursive_watches,
                ],
            );
            Response::Empty
        }
        Request::WhoAmI => Response::WhoAmI(
            c.auth
                .iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    user: acl::user_name(id),
                })
                .collect(),
        ),
        _ => return Err(ErrorCode::Unimplemented),
    })
}

/// checkWatches (remove = false) and removeWatches (remove = true).
fn watch_op(
    t: &mut DataTree,
    w: WatcherId,
    path: &str,
    kind: i32,
    remove: bool,
) -> Result<bool, ErrorCode> {
    let (data, child, mode) = match kind {
        watcher_type::CHILDREN => (false, true, None),
        watcher_type::DATA => (true, false, None),
        watcher_type::ANY => (true, true, None),
        watcher_type::PERSISTENT => (true, true, Some(Mode::Persistent)),
        watcher_type::PERSISTENT_RECURSIVE => (true, true, Some(Mode::PersistentRecursive)),
        // WatcherType.fromInt throws: a MarshallingError reply.
        _ => return Err(ErrorCode::MarshallingError),
    };
    let mut hit = false;
    if remove {
        if data {
            hit |= t.data_watches_mut().remove(path, w, mode);
        }
        if child {
            hit |= t.child_watches_mut().remove(path, w, mode);
        }
    } else {
        let has = |tbl: &crate::watch::WatchTable| match mode {
            None => tbl.contains(path, w),
            Some(m) => tbl.contains_mode(path, w, m),
        };
        hit = (data && has(t.data_watches())) || (child && has(t.child_watches()));
    }
    Ok(hit)
}

/// Re-registers a reconnecting client's watches, firing at once those whose
/// trigger it missed since `rel_zxid`.
fn set_watches(t: &mut DataTree, w: WatcherId, rel_zxid: i64, lists: [&Vec<String>; 5]) {
    let [data, exist, child, persistent, recursive] = lists;
    for p in data {
        match t.node(p).map(|n| n.stat.mzxid) {
            None => t.push_fired(w, event::NODE_DELETED, p),
            Some(m) if m > rel_zxid => t.push_fired(w, event::NODE_DATA_CHANGED, p),
            Some(_) => t.add_data_watch(p, w),
        }
    }
    for p in exist {
        if t.node(p).is_some() {
            t.push_fired(w, event::NODE_CREATED, p);
        } else {
            t.add_data_watch(p, w);
        }
    }
    for p in child {
        match t.node(p).map(|n| n.stat.pzxid) {
            None => t.push_fired(w, event::NODE_DELETED, p),
            Some(z) if z > rel_zxid => t.push_fired(w, event::NODE_CHILDREN_CHANGED, p),
            Some(_) => t.add_child_watch(p, w),
        }
    }
    for p in persistent {
        t.add_persistent_watch(p, w, false);
    }
    for p in recursive {
        t.add_persistent_watch(p, w, true);
    }
}
