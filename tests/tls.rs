//! TLS on secureClientPort: key and trust stores as ZooKeeper 3.8 reads
//! them (JKS written by keytool, PEM), ssl.clientAuth, the x509 identity of
//! a client certificate (X.509 v3 through webpki, v1 as Java accepts it),
//! protocols, and startup errors for bad stores. Fixtures: see
//! tests/fixtures/tls/generate.sh.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record};
use jute::consts::{op, perms};
use jute::data::{Acl, ClientInfo, Id};
use jute::proto::{
    ConnectRequest, ConnectResponse, CreateRequest, CreateResponse, ReplyHeader, RequestHeader,
    WhoAmIResponse,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use server::tls::jks;
use server::{Config, Server};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "apassword";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// The usual JKS setup (as kazoo's harness writes it), plus `extra` lines.
fn jks_lines(extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!(
            "ssl.keyStore.location={}",
            fixture("keystore.jks").display()
        ),
        format!("ssl.keyStore.password={PASSWORD}"),
        format!(
            "ssl.trustStore.location={}",
            fixture("truststore.jks").display()
        ),
        format!("ssl.trustStore.password={PASSWORD}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

struct TlsServer {
    server: Server,
    _dir: TempDir,
}

fn config(lines: &[String], plain: bool) -> (TempDir, Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = format!(
        "tickTime=2000\ndataDir={}\nsecureClientPort=0\nsecureClientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n",
        dir.path().join("data").display()
    );
    if plain {
        text.push_str("clientPort=0\nclientPortAddress=127.0.0.1\n");
    }
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let path = dir.path().join("zoo.cfg");
    std::fs::write(&path, text).expect("write zoo.cfg");
    let cfg = Config::load(Some(&path), &[]).expect("config");
    (dir, cfg)
}

async fn start(lines: &[String]) -> TlsServer {
    let (dir, cfg) = config(lines, true);
    let server = Server::start(cfg).await.expect("server starts");
    TlsServer { server, _dir: dir }
}

/// Server::start's error for this setup.
async fn start_error(lines: &[String]) -> String {
    let (_dir, cfg) = config(lines, true);
    match Server::start(cfg).await {
        Ok(s) => {
            s.stop().await;
            panic!("server started");
        }
        Err(e) => format!("{e:#}"),
    }
}

impl TlsServer {
    fn secure(&self) -> SocketAddr {
        self.server.secure_addr.expect("secure port")
    }
}

fn certs(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(fixture(name))
        .expect("pem")
        .collect::<Result<_, _>>()
        .expect("certs")
}

fn key(name: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(fixture(name)).expect("key")
}

/// A client trusting the test CA, presenting `identity` ("client",
/// "client-v1", "intruder") if given.
fn client_config(
    identity: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("ca.pem") {
        roots.add(c).expect("ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match identity {
        // Not with_client_auth_cert: its key/certificate consistency check
        // parses the certificate with webpki, which refuses X.509 v1.
        Some(id) => {
            let key = rustls::crypto::ring::default_provider()
                .key_provider
                .load_private_key(key(&format!("{id}-key.pem")))
                .expect("client key");
            let ck = rustls::sign::CertifiedKey::new(certs(&format!("{id}.pem")), key);
            b.with_client_cert_resolver(Arc::new(ClientCert(Arc::new(ck))))
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

#[derive(Debug)]
struct ClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A jute connection over any stream.
struct Zk<S> {
    s: S,
    buf: BytesMut,
    xid: i32,
}

type TlsZk = Zk<tokio_rustls::client::TlsStream<TcpStream>>;

async fn tls_connect(
    addr: SocketAddr,
    identity: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(client_config(identity, versions));
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

impl<S: AsyncRead + AsyncWrite + Unpin> Zk<S> {
    async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(payload.len() + 4);
        b.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        b.extend_from_slice(payload);
        self.s.write_all(&b).await?;
        self.s.flush().await
    }

    async fn frame(&mut self) -> std::io::Result<Bytes> {
        tokio::time::timeout(WAIT, async {
            loop {
                if self.buf.len() >= 4 {
                    let len = i32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
                    if self.buf.len() >= 4 + len {
                        self.buf.advance(4);
                        return Ok(self.buf.split_to(len).freeze());
                    }
                }
                if self.s.read_buf(&mut self.buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        })
        .await
        .map_err(|_| std::io::Error::other("no frame in time"))?
    }

    /// The ZooKeeper handshake: a new session.
    async fn handshake(s: S) -> std::io::Result<Zk<S>> {
        let mut zk = Zk {
            s,
            buf: BytesMut::new(),
            xid: 0,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0u8; 16]),
            read_only: false,
        };
        zk.send(&req.to_bytes()).await?;
        let f = zk.frame().await?;
        let resp = ConnectResponse::read(&mut Reader::new(f)).expect("connect response");
        assert_ne!(resp.session_id, 0, "session established");
        Ok(zk)
    }

    async fn request(&mut self, opc: i32, body: &[u8]) -> (ReplyHeader, Reader) {
        self.xid += 1;
        let mut b = BytesMut::new();
        RequestHeader {
            xid: self.xid,
            op: opc,
        }
        .write(&mut b);
        b.put_slice(body);
        self.send(&b).await.expect("send request");
        let f = self.frame().await.expect("reply");
        let mut r = Reader::new(f);
        let h = ReplyHeader::read(&mut r).expect("reply header");
        assert_eq!(h.xid, self.xid);
        (h, r)
    }

    async fn create(&mut self, path: &str) -> String {
        let req = CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"x")),
            acl: vec![Acl {
                perms: perms::ALL,
                id: Id::new("world", "anyone"),
            }],
            flags: 0,
        };
        let (h, mut r) = self.request(op::CREATE, &req.to_bytes()).await;
        assert_eq!(h.err, 0, "create {path}");
        CreateResponse::read(&mut r).expect("create response").path
    }

    async fn whoami(&mut self) -> Vec<(String, String)> {
        let (h, mut r) = self.request(op::WHO_AM_I, &[]).await;
        assert_eq!(h.err, 0, "whoAmI");
        let resp = WhoAmIResponse::read(&mut r).expect("whoami response");
        resp.client_info
            .into_iter()
            .map(|ClientInfo { auth_scheme, user }| (auth_scheme, user))
            .collect()
    }
}

/// TLS handshake plus ZooKeeper handshake.
async fn session(addr: SocketAddr, identity: Option<&str>) -> std::io::Result<TlsZk> {
    session_with(addr, identity, BOTH).await
}

async fn session_with(
    addr: SocketAddr,
    identity: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsZk> {
    let s = tls_connect(addr, identity, versions).await?;
    Zk::handshake(s).await
}

fn x509_ids(ids: &[(String, String)]) -> Vec<&str> {
    ids.iter()
        .filter(|(s, _)| s == "x509")
        .map(|(_, u)| u.as_str())
        .collect()
}

// ------------------------------------------------------------------- JKS

#[test]
fn jks_from_keytool() {
    let data = read_fixture("keystore.jks");
    let ks = jks::parse(&data, PASSWORD).expect("keystore parses");
    assert_eq!(ks.keys.len(), 1);
    assert!(ks.trusted.is_empty());
    let k = &ks.keys[0];
    assert_eq!(k.alias, "server");
    assert_eq!(k.chain.len(), 2, "leaf and CA");
    let pkcs8 = jks::recover_key(&k.protected, PASSWORD).expect("key recovers");
    assert_eq!(pkcs8[0], 0x30, "a DER PrivateKeyInfo");
    // It is the key of the PEM fixture (same key, exported by keytool).
    let pem_key = key("server.pem");
    assert_eq!(pkcs8.as_slice(), pem_key.secret_der());

    let ts = jks::parse(&read_fixture("truststore.jks"), PASSWORD).expect("truststore parses");
    assert!(ts.keys.is_empty());
    assert_eq!(ts.trusted.len(), 1);
    assert_eq!(ts.trusted[0].0, "ca");
    assert_eq!(ts.trusted[0].1, certs("ca.pem")[0].as_ref());
}

#[test]
fn jks_wrong_passwords() {
    let data = read_fixture("keystore.jks");
    let e = jks::parse(&data, "wrong").unwrap_err().to_string();
    assert!(e.contains("wrong password"), "{e}");
    // A key password other than the store password: the store opens, the key
    // does not (ZooKeeper uses the store password for keys too).
    let ks = jks::parse(&read_fixture("keypass.jks"), PASSWORD).expect("store opens");
    let e = jks::recover_key(&ks.keys[0].protected, PASSWORD)
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrong password"), "{e}");
    assert!(jks::recover_key(&ks.keys[0].protected, "otherpass").is_ok());
}

#[test]
fn jks_corruption_is_an_error_never_a_panic() {
    let data = read_fixture("keystore.jks");
    for n in 0..data.len() {
        assert!(
            jks::parse(&data[..n], PASSWORD).is_err(),
            "truncated at {n}"
        );
    }
    let mut longer = data.clone();
    longer.push(0);
    assert!(jks::parse(&longer, PASSWORD).is_err(), "trailing byte");
    for i in 0..data.len() {
        for bit in [0x01u8, 0x80] {
            let mut d = data.clone();
            d[i] ^= bit;
            // Every byte is covered by the keyed digest.
            assert!(jks::parse(&d, PASSWORD).is_err(), "bit flip at {i}");
        }
    }
    // Huge lengths and counts (digest aside) fail on bounds, not allocation.
    let mut d = data.clone();
    d[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(jks::parse(&d, PASSWORD).is_err());
    let protected = &jks::parse(&data, PASSWORD).unwrap().keys[0].protected;
    for n in 0..protected.len() {
        assert!(jks::recover_key(&protected[..n], PASSWORD).is_err());
    }
    // SEQUENCE { AlgorithmIdentifier { OID, NULL }, OCTET STRING }: the
    // parameters are ignored (as Java does), every other byte matters.
    assert_eq!(&protected[18..20], &[0x05, 0x00], "NULL parameters");
    for i in 0..protected.len() {
        let mut p = protected.clone();
        p[i] ^= 0x01;
        let r = jks::recover_key(&p, PASSWORD);
        if !(18..20).contains(&i) {
            assert!(r.is_err(), "flip at {i}");
        }
    }
    assert!(jks::parse(b"", PASSWORD).is_err());
    assert!(jks::parse(&[0x30, 0x82, 0, 0], PASSWORD)
        .unwrap_err()
        .to_string()
        .contains("PKCS#12"));
}

// ------------------------------------------------------------- end to end

#[tokio::test]
async fn need_v3_client_cert_creates_and_is_x509() {
    let s = start(&jks_lines(&[])).await;
    let mut zk = session(s.secure(), Some("client"))
        .await
        .expect("TLS session");
    assert_eq!(zk.create("/tls").await, "/tls");
    let ids = zk.whoami().await;
    assert_eq!(
        x509_ids(&ids),
        vec!["CN=client,OU=tests,O=rookeeper"],
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|(s, u)| s == "ip" && u == "127.0.0.1"),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|(s, _)| s == "super"));
    s.server.stop().await;
}

#[tokio::test]
async fn need_accepts_a_v1_client_cert_like_java() {
    // kazoo's test client certificate is X.509 v1, which webpki refuses and
    // Java (so ZooKeeper) accepts.
    let s = start(&jks_lines(&[])).await;
    let mut zk = session(s.secure(), Some("client-v1"))
        .await
        .expect("TLS session with a v1 certificate");
    assert_eq!(x509_ids(&zk.whoami().await), vec!["CN=v1client"]);
    zk.create("/v1").await;
    // TLSv1.3 is off by default: ZooKeeper 3.8.0 enables ssl.protocol only,
    // TLSv1.2 by default.
    assert!(
        session_with(s.secure(), Some("client"), &[&rustls::version::TLS13])
            .await
            .is_err(),
        "TLSv1.3 refused by default"
    );
    s.server.stop().await;
}

#[tokio::test]
async fn need_refuses_no_cert_and_untrusted_certs() {
    let s = start(&jks_lines(&["ssl.clientAuth=need"])).await;
    assert!(session(s.secure(), None).await.is_err(), "no certificate");
    assert!(
        session(s.secure(), Some("intruder")).await.is_err(),
        "self-signed certificate"
    );
    assert!(
        session(s.secure(), Some("forged-v1")).await.is_err(),
        "v1 certificate naming our CA, signed by another key"
    );
    // The server goes on serving good clients.
    let mut zk = session(s.secure(), Some("client"))
        .await
        .expect("good client");
    zk.create("/after").await;
    s.server.stop().await;
}

#[tokio::test]
async fn want_lets_anonymous_clients_in_but_not_bad_certs() {
    let s = start(&jks_lines(&["ssl.clientAuth=want"])).await;
    let mut zk = session(s.secure(), None).await.expect("anonymous client");
    let ids = zk.whoami().await;
    assert!(x509_ids(&ids).is_empty(), "{ids:?}");
    assert!(session(s.secure(), Some("intruder")).await.is_err());
    let mut zk = session(s.secure(), Some("client-v1"))
        .await
        .expect("v1 client");
    assert_eq!(x509_ids(&zk.whoami().await), vec!["CN=v1client"]);
    s.server.stop().await;
}

#[tokio::test]
async fn none_asks_for_no_certificate() {
    // No trust store needed either.
    let s = start(&[
        format!(
            "ssl.keyStore.location={}",
            fixture("keystore.jks").display()
        ),
        format!("ssl.keyStore.password={PASSWORD}"),
        "ssl.clientAuth=none".into(),
    ])
    .await;
    let mut zk = session(s.secure(), Some("intruder"))
        .await
        .expect("session");
    assert!(x509_ids(&zk.whoami().await).is_empty());
    let mut zk = session(s.secure(), None).await.expect("session");
    zk.create("/none").await;
    s.server.stop().await;
}

#[tokio::test]
async fn pem_stores_tls13_and_super_user() {
    let s = start(&[
        format!("ssl.keyStore.location={}", fixture("server.pem").display()),
        format!("ssl.trustStore.location={}", fixture("ca.pem").display()),
        "ssl.protocol=TLSv1.3".into(),
        "X509AuthenticationProvider.superUser=CN=client,OU=tests,O=rookeeper".into(),
    ])
    .await;
    assert!(
        session_with(s.secure(), Some("client"), &[&rustls::version::TLS12])
            .await
            .is_err(),
        "TLSv1.2 is not enabled"
    );
    let mut zk = session_with(s.secure(), Some("client"), &[&rustls::version::TLS13])
        .await
        .expect("TLSv1.3 session");
    let ids = zk.whoami().await;
    assert!(
        ids.contains(&("super".into(), "CN=client,OU=tests,O=rookeeper".into())),
        "{ids:?}"
    );
    let mut zk = session_with(s.secure(), Some("client-v1"), &[&rustls::version::TLS13])
        .await
        .expect("v1 client over TLSv1.3");
    let ids = zk.whoami().await;
    assert!(!ids.iter().any(|(s, _)| s == "super"), "{ids:?}");
    s.server.stop().await;
}

#[tokio::test]
async fn four_letter_words_and_plain_port_alongside() {
    let s = start(&jks_lines(&[])).await;
    let mut t = tls_connect(s.secure(), Some("client"), BOTH)
        .await
        .expect("tls");
    t.write_all(b"srvr").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, t.read_to_string(&mut out))
        .await
        .expect("in time")
        .ok();
    assert!(out.contains("Zookeeper version"), "{out:?}");
    // The plain port still speaks plain ZooKeeper.
    assert_ne!(s.server.addr, s.secure());
    let plain = TcpStream::connect(s.server.addr).await.unwrap();
    let mut zk = Zk::handshake(plain).await.expect("plain session");
    zk.create("/plain").await;
    s.server.stop().await;
}

#[tokio::test]
async fn secure_port_only_without_client_port() {
    let (_dir, cfg) = config(&jks_lines(&[]), false);
    let server = Server::start(cfg).await.expect("starts");
    assert_eq!(Some(server.addr), server.secure_addr, "TLS only");
    let mut zk = session(server.addr, Some("client")).await.expect("session");
    zk.create("/only").await;
    server.stop().await;
}

#[tokio::test]
async fn bad_stores_stop_startup_naming_the_file() {
    let ks = fixture("keystore.jks").display().to_string();
    let ts = fixture("truststore.jks").display().to_string();
    let e = start_error(&[
        format!("ssl.keyStore.location={ks}"),
        "ssl.keyStore.password=wrong".into(),
        format!("ssl.trustStore.location={ts}"),
        format!("ssl.trustStore.password={PASSWORD}"),
    ])
    .await;
    assert!(e.contains(&ks) && e.contains("wrong password"), "{e}");

    let e = start_error(&[
        format!("ssl.keyStore.location={}", fixture("keypass.jks").display()),
        format!("ssl.keyStore.password={PASSWORD}"),
        format!("ssl.trustStore.location={ts}"),
        format!("ssl.trustStore.password={PASSWORD}"),
    ])
    .await;
    assert!(
        e.contains("keypass.jks") && e.contains("cannot recover the key"),
        "{e}"
    );

    let e = start_error(&jks_lines(&["ssl.trustStore.password=nope"])).await;
    assert!(e.contains(&ts), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.jks");
    let mut data = read_fixture("keystore.jks");
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&corrupt, data).unwrap();
    let e = start_error(&[
        format!("ssl.keyStore.location={}", corrupt.display()),
        format!("ssl.keyStore.password={PASSWORD}"),
        "ssl.clientAuth=none".into(),
    ])
    .await;
    assert!(e.contains("corrupt.jks"), "{e}");

    let missing = dir.path().join("missing.jks");
    let e = start_error(&[format!("ssl.keyStore.location={}", missing.display())]).await;
    assert!(e.contains("missing.jks"), "{e}");

    let e = start_error(&[]).await;
    assert!(e.contains("keyStore.location"), "{e}");

    // need (the default) without a trust store
    let e = start_error(&[
        format!("ssl.keyStore.location={ks}"),
        format!("ssl.keyStore.password={PASSWORD}"),
    ])
    .await;
    assert!(e.contains("trustStore.location"), "{e}");

    let e = start_error(&jks_lines(&["ssl.clientAuth=sometimes"])).await;
    assert!(e.contains("clientAuth"), "{e}");
    let e = start_error(&jks_lines(&["ssl.crl=true"])).await;
    assert!(e.contains("crl"), "{e}");

    let p12 = dir.path().join("store.p12");
    std::fs::write(&p12, b"0").unwrap();
    let e = start_error(&[format!("ssl.keyStore.location={}", p12.display())]).await;
    assert!(e.contains("PKCS12 stores are not supported"), "{e}");
    let noext = dir.path().join("store.bin");
    std::fs::write(&noext, b"0").unwrap();
    let e = start_error(&[format!("ssl.keyStore.location={}", noext.display())]).await;
    assert!(e.contains("keyStore.type"), "{e}");

    // A key store whose key does not match its certificate.
    let mismatch = dir.path().join("mismatch.pem");
    let server_pem = std::fs::read_to_string(fixture("server.pem")).unwrap();
    let (_, server_certs) = server_pem.split_once("-----END PRIVATE KEY-----").unwrap();
    let mut pem = std::fs::read_to_string(fixture("client-v1-key.pem")).unwrap();
    pem.push_str(server_certs);
    std::fs::write(&mismatch, pem).unwrap();
    let e = start_error(&[
        format!("ssl.keyStore.location={}", mismatch.display()),
        "ssl.clientAuth=none".into(),
    ])
    .await;
    assert!(e.contains("does not match"), "{e}");
}

#[tokio::test]
async fn password_path_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let s = start(&[
        format!(
            "ssl.keyStore.location={}",
            fixture("keystore.jks").display()
        ),
        "ssl.keyStore.password=ignored-when-the-file-is-set".into(),
        format!("ssl.keyStore.passwordPath={}", pw.display()),
        format!(
            "ssl.trustStore.location={}",
            fixture("truststore.jks").display()
        ),
        format!("ssl.trustStore.passwordPath={}", pw.display()),
    ])
    .await;
    session(s.secure(), Some("client")).await.expect("session");
    s.server.stop().await;
}
