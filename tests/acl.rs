//! ACLs and authentication: digest auth and digest ACLs, the "auth" scheme,
//! InvalidACL, ip ACLs, the super user, and getACL masking.

mod common;

use common::{persistent, TestServer};
use zk::{Acl, Acls, AuthId, AuthUser, CreateMode, Error, MultiReadResult, Permission};
use zookeeper_client as zk;

// base64(sha1("user:password")), computed independently of the server.
const ALICE: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="; // alice:secret
const BOB: &str = "bob:ikIaKsbtGweaHnb/jKn7OHqbunM="; // bob:pw
const CAROL: &str = "carol:NA1ruHgPTlNlBD+5/TAd10VMLuk="; // carol:pw2
const SUPER: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="; // super:test

fn acl(perms: Permission, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, AuthId::new(scheme, id))
}

fn with_acl(acl: &[Acl]) -> zk::CreateOptions<'_> {
    CreateMode::Persistent.with_acls(Acls::new(acl))
}

/// Identities as sorted (scheme, user) pairs: ZooKeeper keeps a
/// connection's identities in a set, so their order is not part of the
/// contract.
async fn who(c: &zk::Client) -> Vec<(String, String)> {
    let mut v: Vec<_> = c
        .list_auth_users()
        .await
        .unwrap()
        .iter()
        .map(|u| (u.scheme().to_owned(), u.user().to_owned()))
        .collect();
    v.sort();
    v
}

fn ids(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// An ACL list in a canonical order, for the same reason.
fn sorted(mut acl: Vec<Acl>) -> Vec<Acl> {
    acl.sort_by(|a, b| (a.scheme(), a.id()).cmp(&(b.scheme(), b.id())));
    acl
}

async fn authed(s: &TestServer, user_pass: &str) -> zk::Client {
    let c = s.client().await;
    c.auth("digest", user_pass.as_bytes()).await.unwrap();
    c
}

#[tokio::test]
async fn digest_acl_refuses_everyone_else() {
    let s = TestServer::start().await;
    let alice = authed(&s, "alice:secret").await;
    let bob = authed(&s, "bob:pw").await;
    let wrong = authed(&s, "alice:wrong").await;
    let anon = s.client().await;
    let only_alice = [acl(Permission::ALL, "digest", ALICE)];
    alice
        .create("/a", b"secret", &with_acl(&only_alice))
        .await
        .unwrap();
    alice.create("/a/kid", b"", &persistent()).await.unwrap();

    for (who, c) in [
        ("anonymous", &anon),
        ("bob", &bob),
        ("wrong password", &wrong),
    ] {
        assert_eq!(
            c.get_data("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} getData"
        );
        assert_eq!(
            c.check_stat("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} exists"
        );
        assert_eq!(
            c.list_children("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} getChildren"
        );
        assert_eq!(
            c.get_children("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} getChildren2"
        );
        assert_eq!(
            c.count_descendants_number("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} getAllChildrenNumber"
        );
        assert_eq!(
            c.get_acl("/a").await.unwrap_err(),
            Error::NoAuth,
            "{who} getACL"
        );
        assert_eq!(
            c.set_data("/a", b"x", None).await.unwrap_err(),
            Error::NoAuth,
            "{who} setData"
        );
        assert_eq!(
            c.set_acl("/a", &[acl(Permission::ALL, "world", "anyone")], None)
                .await
                .unwrap_err(),
            Error::NoAuth,
            "{who} setACL"
        );
        assert_eq!(
            c.create("/a/new", b"", &persistent()).await.unwrap_err(),
            Error::NoAuth,
            "{who} create under it"
        );
        assert_eq!(
            c.delete("/a/kid", None).await.unwrap_err(),
            Error::NoAuth,
            "{who} delete under it"
        );
        // The child itself is open: its own ACL governs reads.
        assert!(
            c.get_data("/a/kid").await.is_ok(),
            "{who} reads the open child"
        );
        let mut r = c.new_multi_reader();
        r.add_get_data("/a").unwrap();
        r.add_get_data("/a/kid").unwrap();
        let res = r.commit().await.unwrap();
        assert!(matches!(
            res[0],
            MultiReadResult::Error { err: Error::NoAuth }
        ));
        assert!(matches!(res[1], MultiReadResult::Data { .. }));
        let mut w = c.new_multi_writer();
        w.add_create("/open", b"", &persistent()).unwrap();
        w.add_set_data("/a", b"x", None).unwrap();
        match w.commit().await {
            Err(zk::MultiWriteError::OperationFailed { index: 1, source }) => {
                assert_eq!(source, Error::NoAuth)
            }
            other => panic!("{who}: expected NoAuth at op 1, got {other:?}"),
        }
        assert_eq!(c.check_stat("/open").await.unwrap(), None);
    }
    // Deleting a node needs DELETE on its parent (the open root), not on it.
    assert_eq!(anon.delete("/a", None).await.unwrap_err(), Error::NotEmpty);

    // The owner can do everything.
    assert_eq!(alice.get_data("/a").await.unwrap().0, b"secret");
    alice.set_data("/a", b"new", None).await.unwrap();
    alice.delete("/a/kid", None).await.unwrap();
    let (got, _) = alice.get_acl("/a").await.unwrap();
    assert_eq!(got, only_alice);
    anon.delete("/a", None).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn permissions_are_checked_bit_by_bit() {
    let s = TestServer::start().await;
    let alice = authed(&s, "alice:secret").await;
    let anon = s.client().await;
    let acl_list = [
        acl(Permission::READ | Permission::CREATE, "world", "anyone"),
        acl(Permission::ALL, "digest", ALICE),
    ];
    alice
        .create("/rc", b"", &with_acl(&acl_list))
        .await
        .unwrap();
    assert!(anon.get_data("/rc").await.is_ok());
    anon.create("/rc/mine", b"", &persistent()).await.unwrap();
    assert_eq!(
        anon.delete("/rc/mine", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        anon.set_data("/rc", b"", None).await.unwrap_err(),
        Error::NoAuth
    );
    alice.delete("/rc/mine", None).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn auth_scheme_expands_to_the_callers_identities() {
    let s = TestServer::start().await;
    let alice = authed(&s, "alice:secret").await;
    alice
        .create(
            "/c1",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap();
    let (got, _) = alice.get_acl("/c1").await.unwrap();
    assert_eq!(
        got,
        vec![acl(Permission::ALL, "digest", ALICE)],
        "ip is not an authenticated id"
    );

    // Every authenticated identity of the caller, in order.
    alice.auth("digest", b"carol:pw2").await.unwrap();
    alice
        .create(
            "/c2",
            b"",
            &with_acl(&[acl(Permission::READ | Permission::WRITE, "auth", "")]),
        )
        .await
        .unwrap();
    // Without ADMIN even the creator sees the hashes masked.
    let (got, _) = alice.get_acl("/c2").await.unwrap();
    assert_eq!(
        sorted(got),
        vec![
            acl(Permission::READ | Permission::WRITE, "digest", "alice:x"),
            acl(Permission::READ | Permission::WRITE, "digest", "carol:x"),
        ]
    );
    let carol = authed(&s, "carol:pw2").await;
    assert!(carol.get_data("/c2").await.is_ok());

    // setACL expands it too.
    alice
        .set_acl(
            "/c1",
            &[acl(Permission::READ | Permission::ADMIN, "auth", "ignored")],
            None,
        )
        .await
        .unwrap();
    let (got, st) = alice.get_acl("/c1").await.unwrap();
    assert_eq!(
        sorted(got),
        vec![
            acl(Permission::READ | Permission::ADMIN, "digest", ALICE),
            acl(Permission::READ | Permission::ADMIN, "digest", CAROL),
        ]
    );
    assert_eq!(st.aversion, 1);

    // Without an authenticated identity there is nothing to expand to.
    let anon = s.client().await;
    assert_eq!(
        anon.create(
            "/c3",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all())
        )
        .await
        .unwrap_err(),
        Error::InvalidAcl
    );
    s.stop().await;
}

#[tokio::test]
async fn invalid_acls_are_refused() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/n", b"", &persistent()).await.unwrap();
    let bad: Vec<Vec<Acl>> = vec![
        vec![acl(Permission::ALL, "digest", "nocolon")],
        vec![acl(Permission::ALL, "digest", "too:many:colons")],
        vec![acl(Permission::ALL, "world", "someone")],
        vec![acl(Permission::ALL, "nosuchscheme", "x")],
        vec![acl(Permission::ALL, "super", "")],
        vec![acl(Permission::ALL, "ip", "300.1.1.1")],
        vec![acl(Permission::ALL, "ip", "127.0.0.1/33")],
        vec![acl(Permission::ALL, "ip", "localhost")],
        vec![
            acl(Permission::ALL, "world", "anyone"),
            acl(Permission::ALL, "digest", "nocolon"),
        ],
    ];
    for a in &bad {
        assert_eq!(
            c.create("/bad", b"", &with_acl(a)).await.unwrap_err(),
            Error::InvalidAcl,
            "create with {a:?}"
        );
        assert_eq!(
            c.set_acl("/n", a, None).await.unwrap_err(),
            Error::InvalidAcl,
            "setACL with {a:?}"
        );
    }
    // An empty list passes the library but not the server.
    assert_eq!(
        c.set_acl("/n", &[], None).await.unwrap_err(),
        Error::InvalidAcl
    );
    // The ACL is checked before the parent / node is looked up.
    assert_eq!(
        c.create("/missing/x", b"", &with_acl(&bad[0]))
            .await
            .unwrap_err(),
        Error::InvalidAcl
    );
    assert_eq!(
        c.set_acl("/missing", &bad[0], None).await.unwrap_err(),
        Error::InvalidAcl
    );
    assert_eq!(
        c.set_acl("/missing", &[acl(Permission::ALL, "world", "anyone")], None)
            .await
            .unwrap_err(),
        Error::NoNode
    );
    // Valid forms, and duplicates collapse.
    let dup = [
        acl(Permission::ALL, "ip", "127.0.0.1"),
        acl(Permission::ALL, "ip", "127.0.0.1"),
        acl(Permission::READ, "ip", "10.0.0.0/8"),
        acl(Permission::ALL, "digest", ":emptyuser"),
    ];
    c.create("/good", b"", &with_acl(&dup)).await.unwrap();
    let (got, st) = c.get_acl("/good").await.unwrap();
    assert_eq!(got, dup[1..].to_vec());
    assert_eq!(st.aversion, 0);
    assert_eq!(c.check_stat("/bad").await.unwrap(), None);
    let (_, st) = c.get_data("/n").await.unwrap();
    assert_eq!(st.aversion, 0, "failed setACLs changed nothing");
    s.stop().await;
}

#[tokio::test]
async fn ip_acls_match_the_client_address() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create(
        "/ip",
        b"",
        &with_acl(&[acl(Permission::ALL, "ip", "127.0.0.1")]),
    )
    .await
    .unwrap();
    c.create(
        "/net",
        b"",
        &with_acl(&[acl(Permission::READ, "ip", "127.0.0.0/8")]),
    )
    .await
    .unwrap();
    c.create(
        "/far",
        b"",
        &with_acl(&[acl(Permission::ALL, "ip", "10.0.0.0/8")]),
    )
    .await
    .unwrap();
    let other = s.client().await;
    other.set_data("/ip", b"ok", None).await.unwrap();
    assert!(other.get_data("/net").await.is_ok());
    assert_eq!(
        other.set_data("/net", b"", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(other.get_data("/far").await.unwrap_err(), Error::NoAuth);
    s.stop().await;
}

#[tokio::test]
async fn who_am_i_lists_identities() {
    let s = TestServer::start().await;
    let c = s.client().await;
    assert_eq!(
        c.list_auth_users().await.unwrap(),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
    c.auth("digest", b"alice:secret").await.unwrap();
    c.auth("digest", b"alice:secret").await.unwrap();
    c.auth("digest", b"bob:pw").await.unwrap();
    assert_eq!(
        who(&c).await,
        ids(&[("ip", "127.0.0.1"), ("digest", "alice"), ("digest", "bob")]),
        "identities are not duplicated"
    );
    s.stop().await;
}

#[tokio::test]
async fn ip_scheme_auth_is_accepted_and_unknown_schemes_fail() {
    let s = TestServer::start().await;
    // ZooKeeper's IPAuthenticationProvider accepts any auth packet, adding
    // the connection's address (which it already has).
    let c = s.client().await;
    c.auth("ip", b"anything").await.unwrap();
    assert_eq!(
        c.list_auth_users().await.unwrap(),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
    // No provider: AuthFailed, and the session is done for.
    let bad = s.client().await;
    assert_eq!(
        bad.auth("nosuchscheme", b"x").await.unwrap_err(),
        Error::AuthFailed
    );
    assert!(bad.get_data("/").await.is_err());
    assert_eq!(bad.state(), zk::SessionState::AuthFailed);
    s.stop().await;
}

#[tokio::test]
async fn super_user_bypasses_acls() {
    let s = TestServer::with(
        &[],
        &[("zookeeper.DigestAuthenticationProvider.superDigest", SUPER)],
    )
    .await;
    let alice = authed(&s, "alice:secret").await;
    let only_alice = [acl(Permission::ALL, "digest", ALICE)];
    alice
        .create("/locked", b"x", &with_acl(&only_alice))
        .await
        .unwrap();
    alice
        .create("/locked/kid", b"", &with_acl(&only_alice))
        .await
        .unwrap();

    let not_super = authed(&s, "super:wrong").await;
    assert_eq!(
        not_super.get_data("/locked").await.unwrap_err(),
        Error::NoAuth
    );

    let root = authed(&s, "super:test").await;
    let expected = ids(&[("ip", "127.0.0.1"), ("super", ""), ("digest", "super")]);
    assert_eq!(who(&root).await, expected);
    root.auth("digest", b"super:test").await.unwrap();
    assert_eq!(who(&root).await, expected, "no duplicates");
    assert_eq!(root.get_data("/locked").await.unwrap().0, b"x");
    root.set_data("/locked", b"y", None).await.unwrap();
    root.create("/locked/new", b"", &persistent())
        .await
        .unwrap();
    let (got, _) = root.get_acl("/locked").await.unwrap();
    assert_eq!(got, only_alice, "super sees hashes");
    root.delete("/locked/kid", None).await.unwrap();
    // Even a node nobody may touch, and an ACL naming super's digest.
    root.create(
        "/none",
        b"",
        &with_acl(&[acl(Permission::NONE, "world", "anyone")]),
    )
    .await
    .unwrap();
    assert!(root.get_data("/none").await.is_ok());
    root.create(
        "/mine",
        b"",
        &CreateMode::Persistent.with_acls(Acls::creator_all()),
    )
    .await
    .unwrap();
    let (got, _) = root.get_acl("/mine").await.unwrap();
    assert_eq!(got, vec![acl(Permission::ALL, "digest", SUPER)]);
    s.stop().await;
}

#[tokio::test]
async fn get_acl_masks_digests_without_admin() {
    let s = TestServer::start().await;
    let alice = authed(&s, "alice:secret").await;
    let bob = authed(&s, "bob:pw").await;
    let anon = s.client().await;
    let list = [
        acl(Permission::READ, "world", "anyone"),
        acl(Permission::ALL, "digest", ALICE),
        acl(Permission::READ | Permission::WRITE, "digest", BOB),
        acl(Permission::READ, "ip", "10.1.2.3"),
    ];
    alice.create("/m", b"", &with_acl(&list)).await.unwrap();
    let masked = vec![
        acl(Permission::READ, "world", "anyone"),
        acl(Permission::ALL, "digest", "alice:x"),
        acl(Permission::READ | Permission::WRITE, "digest", "bob:x"),
        acl(Permission::READ, "ip", "10.1.2.3"),
    ];
    let (got, st) = anon.get_acl("/m").await.unwrap();
    assert_eq!(got, masked);
    assert_eq!(st, alice.get_data("/m").await.unwrap().1);
    assert_eq!(
        bob.get_acl("/m").await.unwrap().0,
        masked,
        "READ|WRITE is not ADMIN"
    );
    assert_eq!(alice.get_acl("/m").await.unwrap().0, list.to_vec());

    // ADMIN alone is enough to read the ACL, unmasked.
    let admin_only = [
        acl(Permission::ADMIN, "world", "anyone"),
        acl(Permission::ALL, "digest", ALICE),
    ];
    alice
        .create("/adm", b"", &with_acl(&admin_only))
        .await
        .unwrap();
    assert_eq!(anon.get_acl("/adm").await.unwrap().0, admin_only.to_vec());
    assert_eq!(anon.get_data("/adm").await.unwrap_err(), Error::NoAuth);
    s.stop().await;
}

#[tokio::test]
async fn auth_replies_on_the_wire() {
    use jute::codec::{Reader, Record};
    let s = TestServer::start().await;
    let packet = auth_packet;
    let mut raw = common::Raw::connect(s.addr).await;
    // Make the last zxid non-zero, so that zxid 0 below means something.
    let c = s.client().await;
    c.create("/z", b"", &persistent()).await.unwrap();
    for (scheme, auth) in [("digest", &b"u:p"[..]), ("ip", b"")] {
        raw.send(&packet(scheme, auth)).await;
        let f = raw.read_frame().await.expect("auth reply");
        let h = jute::proto::ReplyHeader::read(&mut Reader::new(f)).unwrap();
        assert_eq!((h.xid, h.zxid, h.err), (-4, 0, 0), "{scheme}");
    }
    raw.send(&packet("bogus", b"x")).await;
    let frames = raw.closed().await;
    assert_eq!(frames.len(), 1, "one reply, then the connection closes");
    let h = jute::proto::ReplyHeader::read(&mut Reader::new(frames[0].clone())).unwrap();
    assert_eq!(
        (h.xid, h.zxid, h.err),
        (-4, 0, jute::consts::ErrorCode::AuthFailed.code())
    );
    s.stop().await;
}

/// An AuthPacket on the wire (xid -4), for auth the client crate would
/// not leave alone.
fn auth_packet(scheme: &str, auth: &[u8]) -> bytes::BytesMut {
    use jute::codec::Record;
    let mut b = bytes::BytesMut::new();
    jute::proto::RequestHeader {
        xid: -4,
        op: jute::consts::op::AUTH,
    }
    .write(&mut b);
    jute::proto::AuthPacket {
        auth_type: 0,
        scheme: scheme.to_owned(),
        auth: bytes::Bytes::copy_from_slice(auth),
    }
    .write(&mut b);
    b
}

#[tokio::test]
async fn ensemble_auth_provider_checks_the_ensemble_name() {
    let provider = "authProvider.1=org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider";
    let s = TestServer::with(
        &[provider, "4lw.commands.whitelist=*"],
        &[("zookeeper.ensembleAuthName", "prod, east")],
    )
    .await;
    // The right name (either of the list, trimmed) or none at all: OK, and
    // no identity added (the provider is not one for ACLs).
    let c = s.client().await;
    c.auth("ensemble", b"prod").await.unwrap();
    c.auth("ensemble", b"east").await.unwrap();
    c.auth("ensemble", b"").await.unwrap();
    assert_eq!(
        c.list_auth_users().await.unwrap(),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
    c.create("/still-served", b"", &persistent()).await.unwrap();
    // A wrong name: the connection closes without an answer, so that the
    // client tries another server instead of failing its session.
    let mut raw = common::Raw::connect(s.addr).await;
    raw.send(&auth_packet("ensemble", b"staging")).await;
    assert!(raw.closed().await.is_empty(), "no reply before the close");
    // Everyone else is still served.
    assert!(c.check_stat("/still-served").await.unwrap().is_some());
    let m = common::mntr(&s).await;
    let n = |k: &str| {
        m.get(k)
            .unwrap_or_else(|| panic!("mntr has no {k}"))
            .clone()
    };
    assert_eq!(
        (
            n("ensemble_auth_success"),
            n("ensemble_auth_skip"),
            n("ensemble_auth_fail")
        ),
        ("2".into(), "1".into(), "1".into())
    );
    s.stop().await;

    // Without zookeeper.ensembleAuthName any name passes (skipped).
    let s = TestServer::with(&[provider, "4lw.commands.whitelist=*"], &[]).await;
    let c = s.client().await;
    c.auth("ensemble", b"anything").await.unwrap();
    assert_eq!(common::mntr(&s).await["ensemble_auth_skip"], "1");
    s.stop().await;

    // Without the provider the scheme is unknown: AuthFailed.
    let s = TestServer::start().await;
    let c = s.client().await;
    assert_eq!(
        c.auth("ensemble", b"prod").await.unwrap_err(),
        Error::AuthFailed
    );
    s.stop().await;
}
