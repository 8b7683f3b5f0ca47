//! `org.apache.zookeeper.txn`: the transactions every state change is made
//! of, as written to the txn log and sent between servers.

use crate::codec::{DecodeError, Reader, Record, Result, Writer};
use crate::consts::op;
use crate::data::Acl;
use crate::record;
use bytes::{Bytes, BytesMut};

record! {
    #[derive(Copy)]
    pub struct TxnDigest {
        pub version: i32,
        pub tree_digest: i64,
    }
}

record! {
    #[derive(Copy)]
    pub struct TxnHeader {
        pub client_id: i64,
        pub cxid: i32,
        pub zxid: i64,
        pub time: i64,
        pub op: i32,
    }
}

record! {
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}

record! {
    pub struct CreateTtlTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
        pub ttl: i64,
    }
}

record! {
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
    }
}

record! {
    pub struct DeleteTxn {
        pub path: String,
    }
}

record! {
    pub struct SetDataTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub version: i32,
    }
}

record! {
    pub struct CheckVersionTxn {
        pub path: String,
        pub version: i32,
    }
}

record! {
    pub struct SetAclTxn {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

record! {
    pub struct CreateSessionTxn {
        pub time_out: i32,
    }
}

record! {
    pub struct CloseSessionTxn {
        pub paths_to_delete: Vec<String>,
    }
}

record! {
    pub struct ErrorTxn {
        pub err: i32,
    }
}

record! {
    /// One element of a MultiTxn: an opcode and the serialized sub-txn.
    pub struct SubTxn {
        pub op: i32,
        pub data: Bytes,
    }
}

/// A transaction body, typed by the opcode in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    Create(CreateTxn),
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    Delete(DeleteTxn),
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Error(ErrorTxn),
    /// Reconfig carries the new dynamic config as a SetDataTxn on /zookeeper/config.
    Reconfig(SetDataTxn),
    Multi(Vec<TxnBody>),
}

impl TxnBody {
    /// The opcode this body is logged under.
    pub fn op(&self) -> i32 {
        match self {
            TxnBody::Create(_) => op::CREATE,
            TxnBody::Create2(_) => op::CREATE2,
            TxnBody::CreateContainer(_) => op::CREATE_CONTAINER,
            TxnBody::CreateTtl(_) => op::CREATE_TTL,
            TxnBody::Delete(_) => op::DELETE,
            TxnBody::DeleteContainer(_) => op::DELETE_CONTAINER,
            TxnBody::SetData(_) => op::SET_DATA,
            TxnBody::SetAcl(_) => op::SET_ACL,
            TxnBody::Check(_) => op::CHECK,
            TxnBody::CreateSession(_) => op::CREATE_SESSION,
            TxnBody::CloseSession(_) => op::CLOSE_SESSION,
            TxnBody::Error(_) => op::ERROR,
            TxnBody::Reconfig(_) => op::RECONFIG,
            TxnBody::Multi(_) => op::MULTI,
        }
    }

    pub fn write<W: Writer>(&self, w: &mut W) {
        match self {
            TxnBody::Create(t) | TxnBody::Create2(t) => t.write(w),
            TxnBody::CreateContainer(t) => t.write(w),
            TxnBody::CreateTtl(t) => t.write(w),
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.write(w),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => t.write(w),
            TxnBody::SetAcl(t) => t.write(w),
            TxnBody::Check(t) => t.write(w),
            TxnBody::CreateSession(t) => t.write(w),
            TxnBody::CloseSession(t) => t.write(w),
            TxnBody::Error(t) => t.write(w),
            TxnBody::Multi(subs) => {
                let subs: Vec<SubTxn> = subs
                    .iter()
                    .map(|s| {
                        let mut b = BytesMut::new();
                        s.write(&mut b);
                        SubTxn {
                            op: s.op(),
                            data: b.freeze(),
                        }
                    })
                    .collect();
                subs.write(w);
            }
        }
    }

    /// Decodes the body that follows a header with opcode `op`.
    pub fn read(op: i32, r: &mut Reader) -> Result<TxnBody> {
        Self::read_depth(op, r, 0)
    }

    fn read_depth(opc: i32, r: &mut Reader, depth: u32) -> Result<TxnBody> {
        Ok(match opc {
            op::CREATE => TxnBody::Create(CreateTxn::read(r)?),
            op::CREATE2 => TxnBody::Create2(CreateTxn::read(r)?),
            op::CREATE_CONTAINER => TxnBody::CreateContainer(CreateContainerTxn::read(r)?),
            op::CREATE_TTL => TxnBody::CreateTtl(CreateTtlTxn::read(r)?),
            op::DELETE => TxnBody::Delete(DeleteTxn::read(r)?),
            op::DELETE_CONTAINER => TxnBody::DeleteContainer(DeleteTxn::read(r)?),
            op::SET_DATA => TxnBody::SetData(SetDataTxn::read(r)?),
            op::RECONFIG => TxnBody::Reconfig(SetDataTxn::read(r)?),
            op::SET_ACL => TxnBody::SetAcl(SetAclTxn::read(r)?),
            op::CHECK => TxnBody::Check(CheckVersionTxn::read(r)?),
            op::CREATE_SESSION => TxnBody::CreateSession(CreateSessionTxn::read(r)?),
            // Logs written before 3.6 carry closeSession with no body.
            op::CLOSE_SESSION if r.remaining() == 0 => {
                TxnBody::CloseSession(CloseSessionTxn::default())
            }
            op::CLOSE_SESSION => TxnBody::CloseSession(CloseSessionTxn::read(r)?),
            op::ERROR => TxnBody::Error(ErrorTxn::read(r)?),
            op::MULTI => {
                if depth > 0 {
                    return Err(DecodeError::Invalid("nested multi txn"));
                }
                let subs: Vec<SubTxn> = r.vec()?;
                let mut out = Vec::with_capacity(subs.len());
                for s in subs {
                    out.push(Self::read_depth(s.op, &mut Reader::new(s.data), depth + 1)?);
                }
                TxnBody::Multi(out)
            }
            other => return Err(DecodeError::UnknownType(other)),
        })
    }
}

/// A whole transaction: header, body and (3.6+) the tree digest after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub header: TxnHeader,
    pub body: TxnBody,
    pub digest: Option<TxnDigest>,
}

impl Txn {
    pub fn write<W: Writer>(&self, w: &mut W) {
        self.header.write(w);
        self.body.write(w);
        if let Some(d) = &self.digest {
            d.write(w);
        }
    }

    pub fn read(r: &mut Reader) -> Result<Txn> {
        let header = TxnHeader::read(r)?;
        let body = TxnBody::read(header.op, r)?;
        let digest = if r.remaining() > 0 {
            Some(TxnDigest::read(r)?)
        } else {
            None
        };
        Ok(Txn {
            header,
            body,
            digest,
        })
    }
}
