//! Client requests decoded by opcode, and the multi-op framing.

use crate::codec::{DecodeError, Reader, Record, Result, Writer};
use crate::consts::op;
use crate::proto::*;

/// One operation inside a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create, create2 or createContainer (the opcode says which result to send).
    Create(i32, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
}

impl MultiOp {
    pub fn op(&self) -> i32 {
        match self {
            MultiOp::Create(o, _) => *o,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
            MultiOp::GetData(_) => op::GET_DATA,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    fn write_body<W: Writer>(&self, w: &mut W) {
        match self {
            MultiOp::Create(_, r) => r.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => r.write(w),
        }
    }
}

/// Reads the ops of a multi request up to its `done` header.
pub fn read_multi(r: &mut Reader) -> Result<Vec<MultiOp>> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let o = match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                MultiOp::Create(h.op, CreateRequest::read(r)?)
            }
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(PathWatchRequest::read(r)?),
            op::GET_DATA => MultiOp::GetData(PathWatchRequest::read(r)?),
            other => return Err(DecodeError::UnknownType(other)),
        };
        ops.push(o);
    }
}

pub fn write_multi<W: Writer>(ops: &[MultiOp], w: &mut W) {
    for o in ops {
        MultiHeader {
            op: o.op(),
            done: false,
            err: -1,
        }
        .write(w);
        o.write_body(w);
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(w);
}

/// A decoded client request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create, create2 or createContainer.
    Create(i32, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchTypeRequest),
    RemoveWatches(WatchTypeRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(SaslToken),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    /// Decodes the body of a request with opcode `opc`. An opcode no client
    /// may send is `UnknownType`, which the server answers with Unimplemented.
    pub fn read(opc: i32, r: &mut Reader) -> Result<Request> {
        Ok(match opc {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                Request::Create(opc, CreateRequest::read(r)?)
            }
            op::CREATE_TTL => Request::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => Request::Delete(DeleteRequest::read(r)?),
            op::EXISTS => Request::Exists(PathWatchRequest::read(r)?),
            op::GET_DATA => Request::GetData(PathWatchRequest::read(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
            op::GET_ACL => Request::GetAcl(PathRequest::read(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
            op::GET_CHILDREN => Request::GetChildren(PathWatchRequest::read(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(PathWatchRequest::read(r)?),
            op::SYNC => Request::Sync(PathRequest::read(r)?),
            op::PING => Request::Ping,
            op::CHECK => Request::Check(CheckVersionRequest::read(r)?),
            op::MULTI => {
                let ops = read_multi(r)?;
                if ops.iter().any(MultiOp::is_read) {
                    return Err(DecodeError::Invalid("read op in a multi"));
                }
                Request::Multi(ops)
            }
            op::MULTI_READ => {
                let ops = read_multi(r)?;
                if !ops.iter().all(MultiOp::is_read) {
                    return Err(DecodeError::Invalid("write op in a multiRead"));
                }
                Request::MultiRead(ops)
            }
            op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(WatchTypeRequest::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(WatchTypeRequest::read(r)?),
            op::AUTH => Request::Auth(AuthPacket::read(r)?),
            op::SET_WATCHES => Request::SetWatches(SetWatches::read(r)?),
            op::SET_WATCHES2 => Request::SetWatches2(SetWatches2::read(r)?),
            op::SASL => Request::Sasl(SaslToken::read(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    pub fn op(&self) -> i32 {
        match self {
            Request::Create(o, _) => *o,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
        }
    }

    /// Encodes the body (what follows the RequestHeader).
    pub fn write<W: Writer>(&self, w: &mut W) {
        match self {
            Request::Create(_, r) => r.write(w),
            Request::CreateTtl(r) => r.write(w),
            Request::Delete(r) => r.write(w),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.write(w),
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::Check(r) => r.write(w),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi(ops, w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::SetWatches2(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// The path it names, for requests on one node (logs, traces).
    pub fn path(&self) -> Option<&str> {
        match self {
            Request::Create(_, r) => Some(&r.path),
            Request::CreateTtl(r) => Some(&r.path),
            Request::Delete(r) => Some(&r.path),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => Some(&r.path),
            Request::SetData(r) => Some(&r.path),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => Some(&r.path),
            Request::SetAcl(r) => Some(&r.path),
            Request::Check(r) => Some(&r.path),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => Some(&r.path),
            Request::AddWatch(r) => Some(&r.path),
            _ => None,
        }
    }

    /// True for operations that change state (become a txn).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(..)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }
}
