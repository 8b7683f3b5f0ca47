//! TLS on `secureClientPort`, and between ensemble members ([`QuorumTls`]:
//! the same keys under `ssl.quorum.*`, as QuorumX509Util reads them).
//! Client-port TLS is configured as ZooKeeper 3.8 configures it
//! (`ClientX509Util`: the `ssl.*` keys of zoo.cfg, which become
//! `zookeeper.ssl.*` properties, or `-Dzookeeper.ssl.*`):
//!
//! * `ssl.keyStore.{location,password,passwordPath,type}`: the server's key
//!   and certificate chain, in a JKS or PEM file;
//! * `ssl.trustStore.{location,password,passwordPath,type}`: the CAs that
//!   client certificates are checked against (JKS or PEM);
//! * `ssl.clientAuth`: `need` (the default), `want` or `none`;
//! * `ssl.protocol` / `ssl.enabledProtocols` (default TLSv1.2 only, as in
//!   3.8.0) and `ssl.ciphersuites` (Java names; default ZooKeeper's list);
//! * `X509AuthenticationProvider.superUser`: the client DN that acts as super.
//!
//! A verified client certificate gives the connection the identity
//! `x509:<subject DN in RFC 2253 form>`, as X509AuthenticationProvider does.
//!
//! Client certificates are verified with webpki, except X.509 v1 ones, which
//! webpki refuses but Java's PKIX (and so ZooKeeper) accepts: a v1 client
//! certificate is accepted when a trust-store certificate issued it directly
//! and its signature and validity period check out (see [`ClientVerifier`]).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use jute::data::Id;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, PeerMisbehaved, RootCertStore,
    ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use sha1::{Digest, Sha1};
use tracing::{debug, info, warn};
use x509_cert::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use x509_cert::der::{Decode, Encode, Reader as _, SliceReader, Tag, Tagged};
use x509_cert::name::Name;
use x509_cert::spki::AlgorithmIdentifierRef;
use x509_cert::{Certificate, Version};

use crate::config::Config;

/// Key and trust stores larger than this are refused unread.
const MAX_STORE_BYTES: u64 = 16 << 20;

/// ZooKeeper 3.8's default cipher suites (X509Util, Java 9+ order). rustls
/// has no CBC suites, so the GCM ones are what remains.
const DEFAULT_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// ZooKeeper's `ssl.clientAuth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    None,
    /// Ask; a client without one may connect (one that fails to verify may not).
    Want,
    /// Require a certificate that verifies.
    Need,
}

impl ClientAuth {
    /// X509Util.ClientAuth.fromPropertyValue: empty or absent means NEED.
    pub fn parse(v: Option<&str>) -> Result<ClientAuth> {
        match v.map(str::trim).unwrap_or("") {
            "" => Ok(ClientAuth::Need),
            v => match v.to_ascii_uppercase().as_str() {
                "NEED" => Ok(ClientAuth::Need),
                "WANT" => Ok(ClientAuth::Want),
                "NONE" => Ok(ClientAuth::None),
                _ => bail!("invalid zookeeper.ssl.clientAuth {v:?}: expected need, want or none"),
            },
        }
    }
}

/// The secure client port's TLS setup.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    client_auth: ClientAuth,
    super_user: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// Whose settings: the secure client port's (`zookeeper.ssl.*`,
/// ClientX509Util) or the quorum's (`zookeeper.ssl.quorum.*`,
/// QuorumX509Util).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Client,
    Quorum,
}

impl Scope {
    fn prefix(self) -> &'static str {
        match self {
            Scope::Client => "zookeeper.ssl.",
            Scope::Quorum => "zookeeper.ssl.quorum.",
        }
    }
}

fn ssl_prop<'a>(cfg: &'a Config, s: Scope, k: &str) -> Option<&'a str> {
    cfg.prop(&format!("{}{k}", s.prefix()))
}

fn java_bool(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What both TLS setups read alike: Java-only options refused, the
/// client-auth mode, protocols and suites, and the key store's key and
/// chain (the key checked against its certificate).
struct Common {
    client_auth: ClientAuth,
    versions: Vec<&'static SupportedProtocolVersion>,
    provider: Arc<CryptoProvider>,
    certified: CertifiedKey,
    /// The key store, for messages.
    key_store: PathBuf,
}

impl Common {
    fn read(cfg: &Config, s: Scope, no_key_store: &str) -> Result<Common> {
        let p = s.prefix();
        if let Some(c) = ssl_prop(cfg, s, "context.supplier.class") {
            bail!("{p}context.supplier.class={c} names a Java class: not supported by rookeeper");
        }
        for k in ["crl", "ocsp"] {
            if java_bool(ssl_prop(cfg, s, k)) {
                bail!("{p}{k}=true: certificate revocation checking is not supported by rookeeper");
            }
        }
        let client_auth = ClientAuth::parse(ssl_prop(cfg, s, "clientAuth"))?;
        let versions = protocol_versions(cfg, s)?;
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = cipher_suites(cfg, s, &provider, &versions)?;
        let provider = Arc::new(provider);
        let ks = store_settings(cfg, s, "keyStore")?.ok_or_else(|| anyhow!("{no_key_store}"))?;
        let (alias, chain, key) = load_key_store(&ks)?;
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            anyhow!(
                "key store {}: private key {alias:?}: {e}",
                ks.path.display()
            )
        })?;
        let leaf = parse_cert(&chain[0]).map_err(|e| {
            anyhow!(
                "key store {}: certificate of {alias:?}: {e}",
                ks.path.display()
            )
        })?;
        if let Some(spki) = signing.public_key() {
            let cert_spki = leaf
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| anyhow!("key store {}: {e}", ks.path.display()))?;
            if spki.as_ref() != cert_spki.as_slice() {
                bail!(
                    "key store {}: the private key of {alias:?} does not match its certificate",
                    ks.path.display()
                );
            }
        }
        info!(
            "TLS ({p}*): certificate {} (alias {alias:?} of {})",
            rfc2253(&leaf.tbs_certificate.subject),
            ks.path.display()
        );
        Ok(Common {
            client_auth,
            versions,
            provider,
            certified: CertifiedKey::new(chain, signing),
            key_store: ks.path,
        })
    }
}

impl Tls {
    /// Reads the key and trust stores and builds the TLS server setup.
    /// Every problem is an error naming the setting or file at fault.
    pub fn from_config(cfg: &Config) -> Result<Tls> {
        let s = Scope::Client;
        if let Some(p) = ssl_prop(cfg, s, "authProvider").filter(|p| p.trim() != "x509") {
            bail!("zookeeper.ssl.authProvider={p}: rookeeper has only the built-in x509 provider");
        }
        let Common {
            client_auth,
            versions,
            provider,
            certified,
            ..
        } = Common::read(
            cfg,
            s,
            "secureClientPort is set but zookeeper.ssl.keyStore.location is not",
        )?;

        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow!("TLS protocol setup: {e}"))?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Want | ClientAuth::Need => {
                let ts = store_settings(cfg, s, "trustStore")?.ok_or_else(|| {
                    anyhow!(
                        "zookeeper.ssl.clientAuth is {client_auth:?} but zookeeper.ssl.trustStore.location is not set \
                         (rookeeper has no JDK cacerts to fall back on; set a trust store or ssl.clientAuth=none)"
                    )
                })?;
                let trusted = load_trust_store(&ts)?;
                let verifier =
                    ClientVerifier::new(&ts.path, trusted, provider.clone(), client_auth)?;
                builder.with_client_cert_verifier(Arc::new(verifier))
            }
        };
        let config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        info!("TLS on the secure client port: client auth {client_auth:?}");
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_auth,
            super_user: cfg
                .prop("zookeeper.X509AuthenticationProvider.superUser")
                .map(str::to_owned),
        })
    }

    /// HTTPS on the AdminServer (`admin.forceHttps`,
    /// `admin.portUnification`): the quorum's key store, as JettyAdminServer
    /// reads QuorumX509Util's; no client certificate is asked for (Jetty's
    /// default).
    pub fn admin_acceptor(cfg: &Config) -> Result<tokio_rustls::TlsAcceptor> {
        let Common {
            versions,
            provider,
            certified,
            ..
        } = Common::read(
            cfg,
            Scope::Quorum,
            "admin.forceHttps or admin.portUnification is set but zookeeper.ssl.quorum.keyStore.location is not",
        )?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow!("TLS protocol setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// The identities a finished handshake proves (X509AuthenticationProvider):
    /// `super` when the subject is the configured super user, then
    /// `x509:<subject DN>`. Nothing when no certificate was asked for or given.
    pub fn peer_ids(&self, conn: &rustls::ServerConnection) -> Vec<Id> {
        if self.client_auth == ClientAuth::None {
            return Vec::new();
        }
        let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
            return Vec::new();
        };
        let Ok(cert) = parse_cert(leaf) else {
            return Vec::new();
        };
        let dn = rfc2253(&cert.tbs_certificate.subject);
        let mut ids = Vec::with_capacity(2);
        if self.super_user.as_deref() == Some(dn.as_str()) {
            ids.push(Id::new("super", &dn));
        }
        ids.push(Id::new("x509", &dn));
        ids
    }
}

/// `ssl.enabledProtocols`, else `ssl.protocol` (default TLSv1.2), as rustls
/// versions. SSLv3, TLSv1 and TLSv1.1 are not available (warned, skipped).
fn protocol_versions(cfg: &Config, s: Scope) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let p = s.prefix();
    let (key, names): (&str, Vec<&str>) = match ssl_prop(cfg, s, "enabledProtocols") {
        Some(v) => ("enabledProtocols", v.split(',').map(str::trim).collect()),
        None => (
            "protocol",
            vec![ssl_prop(cfg, s, "protocol").map_or("TLSv1.2", str::trim)],
        ),
    };
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    let mut add = |v: &'static SupportedProtocolVersion| {
        if !out.iter().any(|o| o.version == v.version) {
            out.push(v);
        }
    };
    for n in names.into_iter().filter(|n| !n.is_empty()) {
        match n {
            "TLSv1.3" => add(&rustls::version::TLS13),
            "TLSv1.2" => add(&rustls::version::TLS12),
            "TLS" => {
                add(&rustls::version::TLS13);
                add(&rustls::version::TLS12);
            }
            "TLSv1.1" | "TLSv1" | "SSLv3" | "SSLv2Hello" => {
                warn!("{p}{key}: {n} is not supported (TLSv1.2 and TLSv1.3 are); ignored")
            }
            _ => bail!("{p}{key}: unknown protocol {n:?}"),
        }
    }
    if out.is_empty() {
        bail!("{p}{key} enables no protocol rookeeper supports (TLSv1.2, TLSv1.3)");
    }
    Ok(out)
}

/// The Java (IANA) name of a suite: rustls says TLS13_AES_128_GCM_SHA256
/// where Java says TLS_AES_128_GCM_SHA256.
fn java_suite_name(s: &rustls::SupportedCipherSuite) -> Option<String> {
    let n = s.suite().as_str()?;
    Some(match n.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => n.to_owned(),
    })
}

/// `ssl.ciphersuites` (default ZooKeeper's list) mapped onto the provider's
/// suites. TLSv1.3 suites, when the list names none (ZooKeeper's default
/// names none), are all of the provider's.
fn cipher_suites(
    cfg: &Config,
    s: Scope,
    provider: &CryptoProvider,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Vec<rustls::SupportedCipherSuite>> {
    let p = s.prefix();
    let configured = ssl_prop(cfg, s, "ciphersuites");
    let names: Vec<&str> = match configured {
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect(),
        None => DEFAULT_CIPHERS.to_vec(),
    };
    let mut out: Vec<rustls::SupportedCipherSuite> = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match provider
            .cipher_suites
            .iter()
            .find(|s| java_suite_name(s).as_deref() == Some(n))
        {
            Some(s) if !out.iter().any(|o| o.suite() == s.suite()) => out.push(*s),
            Some(_) => {}
            None => missing.push(n),
        }
    }
    if !missing.is_empty() {
        if configured.is_some() {
            warn!(
                "{p}ciphersuites: not available, ignored: {}",
                missing.join(",")
            );
        } else {
            debug!("default cipher suites not available: {}", missing.join(","));
        }
    }
    let tls13 = versions
        .iter()
        .any(|v| v.version == rustls::ProtocolVersion::TLSv1_3);
    let tls12 = versions
        .iter()
        .any(|v| v.version == rustls::ProtocolVersion::TLSv1_2);
    fn has(out: &[rustls::SupportedCipherSuite], v: rustls::ProtocolVersion) -> bool {
        out.iter().any(|s| s.version().version == v)
    }
    if tls13 && !has(&out, rustls::ProtocolVersion::TLSv1_3) {
        out.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version().version == rustls::ProtocolVersion::TLSv1_3),
        );
    }
    let usable = (tls12 && has(&out, rustls::ProtocolVersion::TLSv1_2))
        || (tls13 && has(&out, rustls::ProtocolVersion::TLSv1_3));
    if !usable {
        bail!(
            "{p}ciphersuites: no suite usable with the enabled protocols; available: {}",
            provider
                .cipher_suites
                .iter()
                .filter_map(java_suite_name)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    Ok(out)
}

// ------------------------------------------------------------------ stores

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Jks,
    Pem,
    Pkcs12,
    Bcfks,
}

struct StoreSettings {
    /// "keyStore" or "trustStore".
    which: &'static str,
    path: PathBuf,
    password: String,
    ty: StoreType,
}

/// A store's location, password and type; `None` when no location is set.
fn store_settings(cfg: &Config, s: Scope, which: &'static str) -> Result<Option<StoreSettings>> {
    let p = s.prefix();
    let Some(loc) = ssl_prop(cfg, s, &format!("{which}.location")).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(loc);
    // X509Util.getPasswordFromConfigPropertyOrFile: the file wins.
    let mut password = ssl_prop(cfg, s, &format!("{which}.password"))
        .unwrap_or("")
        .to_owned();
    if let Some(pp) = ssl_prop(cfg, s, &format!("{which}.passwordPath")).filter(|p| !p.is_empty()) {
        password = read_secret(Path::new(pp))
            .with_context(|| format!("cannot read {p}{which}.passwordPath {pp}"))?;
    }
    let ty = match ssl_prop(cfg, s, &format!("{which}.type")).map(str::trim) {
        Some(t) if !t.is_empty() => match t.to_ascii_uppercase().as_str() {
            "JKS" => StoreType::Jks,
            "PEM" => StoreType::Pem,
            "PKCS12" => StoreType::Pkcs12,
            "BCFKS" => StoreType::Bcfks,
            _ => bail!("bad value for {p}{which}.type: {t:?} (JKS, PEM, PKCS12 or BCFKS)"),
        },
        // KeyStoreFileType.fromFilename
        _ => match loc.rfind('.').map(|i| &loc[i..]) {
            Some(".jks") => StoreType::Jks,
            Some(".pem") => StoreType::Pem,
            Some(".p12") => StoreType::Pkcs12,
            Some(".bcfks") => StoreType::Bcfks,
            _ => bail!(
                "cannot tell the type of {which} {loc} from its file name: set {p}{which}.type"
            ),
        },
    };
    let unsupported = match ty {
        StoreType::Pkcs12 => Some("PKCS12"),
        StoreType::Bcfks => Some("BCFKS"),
        StoreType::Jks | StoreType::Pem => None,
    };
    if let Some(name) = unsupported {
        bail!(
            "{which} {loc}: {name} stores are not supported by rookeeper; convert it to JKS \
             (keytool -importkeystore -deststoretype JKS) or PEM"
        );
    }
    Ok(Some(StoreSettings {
        which,
        path,
        password,
        ty,
    }))
}

/// SecretUtils.readSecret: the file's text less one trailing line separator.
fn read_secret(p: &Path) -> Result<String> {
    let data = read_bounded(p)?;
    let s = String::from_utf8(data).map_err(|_| anyhow!("{} is not UTF-8", p.display()))?;
    Ok(s.strip_suffix('\n').unwrap_or(&s).to_owned())
}

fn read_bounded(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p)?;
    let mut data = Vec::new();
    f.take(MAX_STORE_BYTES + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_STORE_BYTES {
        bail!("larger than {MAX_STORE_BYTES} bytes");
    }
    Ok(data)
}

fn read_store(s: &StoreSettings) -> Result<Vec<u8>> {
    read_bounded(&s.path).with_context(|| format!("cannot read {} {}", s.which, s.path.display()))
}

type KeyEntry = (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The first private key entry and its certificate chain.
fn load_key_store(s: &StoreSettings) -> Result<KeyEntry> {
    let data = read_store(s)?;
    let what = || format!("key store {}", s.path.display());
    match s.ty {
        StoreType::Jks => {
            let jks = jks::parse(&data, &s.password).with_context(what)?;
            if jks.keys.len() > 1 {
                warn!(
                    "{}: {} private keys; using the first, {:?}",
                    what(),
                    jks.keys.len(),
                    jks.keys[0].alias
                );
            }
            let Some(k) = jks.keys.into_iter().next() else {
                bail!("{}: no private key entry", what());
            };
            let key = jks::recover_key(&k.protected, &s.password)
                .with_context(|| format!("{}: private key {:?}", what(), k.alias))?;
            if k.chain.is_empty() {
                bail!("{}: private key {:?} has no certificate", what(), k.alias);
            }
            let chain = k.chain.into_iter().map(CertificateDer::from).collect();
            Ok((
                k.alias,
                chain,
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            ))
        }
        StoreType::Pem => {
            if contains(&data, b"ENCRYPTED PRIVATE KEY") {
                bail!("{}: encrypted PEM private keys are not supported", what());
            }
            let key = PrivateKeyDer::from_pem_slice(&data)
                .map_err(|e| anyhow!("{}: no usable private key: {e}", what()))?;
            let chain = CertificateDer::pem_slice_iter(&data)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("{}: bad certificate: {e}", what()))?;
            if chain.is_empty() {
                bail!("{}: no certificate", what());
            }
            Ok(("pem".to_owned(), chain, key))
        }
        StoreType::Pkcs12 | StoreType::Bcfks => unreachable!("refused in store_settings"),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Trusted certificates with their aliases. Like Java's trust managers, a
/// JKS trust store's key entries contribute their end-entity certificates.
fn load_trust_store(s: &StoreSettings) -> Result<Vec<(String, CertificateDer<'static>)>> {
    let data = read_store(s)?;
    let what = || format!("trust store {}", s.path.display());
    let out: Vec<(String, CertificateDer<'static>)> = match s.ty {
        StoreType::Jks => {
            let jks = jks::parse(&data, &s.password).with_context(what)?;
            let mut out: Vec<_> = jks
                .trusted
                .into_iter()
                .map(|(a, c)| (a, CertificateDer::from(c)))
                .collect();
            for k in jks.keys {
                if let Some(c) = k.chain.into_iter().next() {
                    out.push((k.alias, CertificateDer::from(c)));
                }
            }
            out
        }
        StoreType::Pem => CertificateDer::pem_slice_iter(&data)
            .enumerate()
            .map(|(i, c)| c.map(|c| (format!("certificate #{}", i + 1), c)))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{}: bad certificate: {e}", what()))?,
        StoreType::Pkcs12 | StoreType::Bcfks => unreachable!("refused in store_settings"),
    };
    if out.is_empty() {
        bail!("{}: no certificates", what());
    }
    Ok(out)
}

// ------------------------------------------------------------ certificates

type Cert = Certificate;

fn parse_cert(der: &[u8]) -> Result<Cert> {
    Cert::from_der(der).map_err(|e| anyhow!("bad certificate: {e}"))
}

/// The parts of a certificate a signature check needs, as encoded: the
/// TBSCertificate, the contents of signatureAlgorithm, the signature bits.
fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut r = SliceReader::new(der).ok()?;
    let parts = r
        .sequence(|r| {
            let tbs = r.tlv_bytes()?;
            let alg = AnyRef::decode(r)?;
            let sig = BitStringRef::decode(r)?;
            Ok((tbs, alg, sig))
        })
        .ok()?;
    let (tbs, alg, sig) = r.finish(parts).ok()?;
    if alg.tag() != Tag::Sequence {
        return None;
    }
    Some((tbs, alg.value(), sig.as_bytes()?))
}

/// The contents (without tag and length) of a DER AlgorithmIdentifier, the
/// form rustls' SignatureVerificationAlgorithm ids take.
fn alg_contents<P: Encode>(alg: &P) -> Option<Vec<u8>> {
    let der = alg.to_der().ok()?;
    let any = AnyRef::from_der(&der).ok()?;
    Some(any.value().to_vec())
}

/// X500Principal.getName() (RFC 2253): RDNs most specific first, joined by
/// ','; the keywords Java knows in this form, else the dotted OID with the
/// value as '#' and hex DER; Java's escaping.
pub fn rfc2253(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let kw = match atv.oid.to_string().as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "2.5.4.9" => Some("STREET"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            // AVA.isDerString(value, false)
            let string_tag = matches!(
                atv.value.tag(),
                Tag::PrintableString
                    | Tag::TeletexString
                    | Tag::Ia5String
                    | Tag::Utf8String
                    | Tag::BmpString
            ) || u8::from(atv.value.tag()) == 0x1b; // GeneralString
            match kw {
                Some(kw) if string_tag => {
                    out.push_str(kw);
                    out.push('=');
                    escape_2253(&String::from_utf8_lossy(atv.value.value()), &mut out);
                }
                _ => {
                    let _ = write!(
                        out,
                        "{}=#",
                        kw.map_or_else(|| atv.oid.to_string(), str::to_owned)
                    );
                    for b in atv.value.to_der().unwrap_or_default() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
    }
    out
}

fn escape_2253(v: &str, out: &mut String) {
    let chars: Vec<char> = v.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = if lead == chars.len() {
        0
    } else {
        chars.iter().rev().take_while(|c| **c == ' ').count()
    };
    for (i, c) in chars.iter().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(*c);
            }
            '\0' => out.push_str("\\00"),
            ' ' if i < lead || i >= chars.len() - trail => out.push_str("\\ "),
            c => out.push(*c),
        }
    }
}

// ------------------------------------------------------- client certificates

/// A trust-store certificate as an issuer of X.509 v1 client certificates.
#[derive(Debug)]
struct Anchor {
    subject: Vec<u8>,
    spki_alg: Vec<u8>,
    public_key: Vec<u8>,
}

/// Verifies client certificates: X.509 v3 ones with webpki (chains through
/// any intermediates the client sends, name constraints, key usage); X.509
/// v1/v2 ones — which webpki refuses outright, and Java accepts — only when
/// a trust-store certificate issued them directly: issuer name equal to its
/// subject, the signature verified with its key by one of the provider's
/// algorithms, and now within the validity period. v1 certificates have no
/// extensions, so there is nothing else to check; v1 intermediates are not
/// accepted.
#[derive(Debug)]
pub struct ClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    anchors: Vec<Anchor>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    fn new(
        path: &Path,
        trusted: Vec<(String, CertificateDer<'static>)>,
        provider: Arc<CryptoProvider>,
        auth: ClientAuth,
    ) -> Result<ClientVerifier> {
        let mut roots = RootCertStore::empty();
        let mut anchors = Vec::new();
        for (alias, der) in trusted {
            let cert = parse_cert(&der)
                .with_context(|| format!("trust store {}: entry {alias:?}", path.display()))?;
            let tbs = &cert.tbs_certificate;
            let anchor = (|| {
                Some(Anchor {
                    subject: tbs.subject.to_der().ok()?,
                    spki_alg: alg_contents(&tbs.subject_public_key_info.algorithm)?,
                    public_key: tbs
                        .subject_public_key_info
                        .subject_public_key
                        .as_bytes()?
                        .to_vec(),
                })
            })()
            .ok_or_else(|| {
                anyhow!(
                    "trust store {}: entry {alias:?}: bad public key",
                    path.display()
                )
            })?;
            anchors.push(anchor);
            roots
                .add(der)
                .map_err(|e| anyhow!("trust store {}: entry {alias:?}: {e}", path.display()))?;
        }
        let algs = provider.signature_verification_algorithms;
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let builder = match auth {
            ClientAuth::Want => builder.allow_unauthenticated(),
            _ => builder,
        };
        let webpki = builder
            .build()
            .map_err(|e| anyhow!("trust store {}: {e}", path.display()))?;
        Ok(ClientVerifier {
            webpki,
            anchors,
            algs,
        })
    }

    /// Some(cert) when `der` is an X.509 v1/v2 certificate (ours to check);
    /// anything else is webpki's.
    fn legacy(der: &CertificateDer<'_>) -> Option<Cert> {
        Cert::from_der(der)
            .ok()
            .filter(|c| c.tbs_certificate.version != Version::V3)
    }

    fn verify_legacy(
        &self,
        der: &[u8],
        cert: &Cert,
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let tbs = &cert.tbs_certificate;
        if tbs.extensions.is_some() {
            return Err(CertificateError::BadEncoding.into());
        }
        let (tbs_der, sig_alg, sig) = signed_parts(der).ok_or(CertificateError::BadEncoding)?;
        // signatureAlgorithm must repeat the TBS's signature field.
        if alg_contents(&tbs.signature).as_deref() != Some(sig_alg) {
            return Err(CertificateError::BadEncoding.into());
        }
        let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
        if now.as_secs() < not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now.as_secs() > not_after {
            return Err(CertificateError::Expired.into());
        }
        let issuer = tbs
            .issuer
            .to_der()
            .map_err(|_| CertificateError::BadEncoding)?;
        let mut err: rustls::Error = CertificateError::UnknownIssuer.into();
        for a in self.anchors.iter().filter(|a| a.subject == issuer) {
            let alg = self.algs.all.iter().find(|alg| {
                alg.signature_alg_id().as_ref() == sig_alg
                    && alg.public_key_alg_id().as_ref() == a.spki_alg.as_slice()
            });
            let Some(alg) = alg else {
                err = CertificateError::BadSignature.into();
                continue;
            };
            match alg.verify_signature(&a.public_key, tbs_der, sig) {
                Ok(()) => return Ok(ClientCertVerified::assertion()),
                Err(_) => err = CertificateError::BadSignature.into(),
            }
        }
        Err(err)
    }

    /// A handshake signature by a v1/v2 certificate's key.
    fn verify_legacy_signature(
        &self,
        message: &[u8],
        cert: &Cert,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if tls13 && !supported_in_tls13(dss.scheme) {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let key_alg = alg_contents(&spki.algorithm).ok_or(CertificateError::BadEncoding)?;
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or(CertificateError::BadEncoding)?;
        let Some((_, candidates)) = self.algs.mapping.iter().find(|(s, _)| *s == dss.scheme) else {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        };
        // TLS 1.3 names one algorithm per scheme; TLS 1.2 may try several.
        let candidates = if tls13 {
            &candidates[..candidates.len().min(1)]
        } else {
            candidates
        };
        for alg in candidates.iter() {
            if alg.public_key_alg_id().as_ref() == key_alg.as_slice() {
                return alg
                    .verify_signature(key, message, dss.signature())
                    .map(|_| HandshakeSignatureValid::assertion())
                    .map_err(|_| CertificateError::BadSignature.into());
            }
        }
        Err(CertificateError::BadSignature.into())
    }
}

/// The signature schemes TLS 1.3 allows (RFC 8446 4.2.3: no PKCS#1 v1.5,
/// no SHA-1).
fn supported_in_tls13(s: SignatureScheme) -> bool {
    matches!(
        s,
        SignatureScheme::ECDSA_NISTP256_SHA256
            | SignatureScheme::ECDSA_NISTP384_SHA384
            | SignatureScheme::ECDSA_NISTP521_SHA512
            | SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::ED25519
            | SignatureScheme::ED448
    )
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match Self::legacy(end_entity) {
            None => self
                .webpki
                .verify_client_cert(end_entity, intermediates, now),
            Some(cert) => self.verify_legacy(end_entity, &cert, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match Self::legacy(cert) {
            None => self.webpki.verify_tls12_signature(message, cert, dss),
            Some(c) => self.verify_legacy_signature(message, &c, dss, false),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match Self::legacy(cert) {
            None => self.webpki.verify_tls13_signature(message, cert, dss),
            Some(c) => self.verify_legacy_signature(message, &c, dss, true),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

// --------------------------------------------------------------------- JKS

/// Sun's JKS key store format (sun.security.provider.JavaKeyStore) and its
/// key protector (sun.security.provider.KeyProtector).
pub mod jks {
    use super::*;

    const MAGIC: u32 = 0xFEED_FEED;
    const JCEKS_MAGIC: u32 = 0xCECE_CECE;
    const DIGEST_LEN: usize = 20;
    /// 1.3.6.1.4.1.42.2.17.1.1: Sun's proprietary key protection.
    const KEY_PROTECTOR_OID: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.42.2.17.1.1");

    /// A private key entry: the protected key (DER EncryptedPrivateKeyInfo)
    /// and its certificate chain, end entity first.
    #[derive(Debug)]
    pub struct KeyEntry {
        pub alias: String,
        pub protected: Vec<u8>,
        pub chain: Vec<Vec<u8>>,
    }

    #[derive(Debug, Default)]
    pub struct KeyStore {
        pub keys: Vec<KeyEntry>,
        /// Trusted certificate entries: alias, DER.
        pub trusted: Vec<(String, Vec<u8>)>,
    }

    struct Cursor<'a> {
        b: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
            let left = self.b.len() - self.pos;
            if n > left {
                bail!(
                    "corrupt or truncated: {what} of {n} bytes at offset {} but only {left} left",
                    self.pos
                );
            }
            let s = &self.b[self.pos..self.pos + n];
            self.pos += n;
            Ok(s)
        }

        fn u16(&mut self, what: &str) -> Result<u16> {
            Ok(u16::from_be_bytes(
                self.take(2, what)?.try_into().expect("2 bytes"),
            ))
        }

        fn u32(&mut self, what: &str) -> Result<u32> {
            Ok(u32::from_be_bytes(
                self.take(4, what)?.try_into().expect("4 bytes"),
            ))
        }

        /// DataInput.readUTF (modified UTF-8; read leniently).
        fn utf(&mut self, what: &str) -> Result<String> {
            let n = self.u16(what)? as usize;
            Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
        }

        /// A u32 length, then that many bytes (bounded by what is left).
        fn blob(&mut self, what: &str) -> Result<&'a [u8]> {
            let n = self.u32(what)? as usize;
            self.take(n, what)
        }
    }

    fn utf16be(password: &str) -> Vec<u8> {
        password.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    /// Parses a JKS file and checks its keyed SHA-1 digest with `password`.
    pub fn parse(data: &[u8], password: &str) -> Result<KeyStore> {
        let mut c = Cursor { b: data, pos: 0 };
        let magic = c.u32("magic")?;
        if magic == JCEKS_MAGIC {
            bail!("a JCEKS key store: only JKS, PEM are supported");
        }
        if magic != MAGIC {
            if data.first() == Some(&0x30) {
                bail!("not a JKS key store (it looks like PKCS#12, which rookeeper cannot read: convert it to JKS or PEM)");
            }
            bail!("not a JKS key store (bad magic {magic:#010x})");
        }
        let version = c.u32("version")?;
        if version != 1 && version != 2 {
            bail!("unsupported JKS version {version}");
        }
        let count = c.u32("entry count")?;
        let mut ks = KeyStore::default();
        let cert = |c: &mut Cursor<'_>, what: &str| -> Result<Vec<u8>> {
            if version == 2 {
                let ty = c.utf("certificate type")?;
                if ty != "X.509" {
                    bail!("{what}: unsupported certificate type {ty:?}");
                }
            }
            Ok(c.blob(what)?.to_vec())
        };
        for i in 0..count {
            let tag = c.u32("entry tag")?;
            let alias = c.utf("alias")?;
            c.take(8, "timestamp")?;
            match tag {
                1 => {
                    let protected = c.blob("protected key")?.to_vec();
                    let n = c.u32("chain length")?;
                    let mut chain = Vec::new();
                    for _ in 0..n {
                        chain.push(cert(&mut c, "certificate")?);
                    }
                    ks.keys.push(KeyEntry {
                        alias,
                        protected,
                        chain,
                    });
                }
                2 => {
                    let der = cert(&mut c, "trusted certificate")?;
                    ks.trusted.push((alias, der));
                }
                3 => bail!("entry {alias:?} is a secret key (JCEKS): not supported"),
                t => bail!("corrupt: entry #{} has unknown tag {t}", i + 1),
            }
        }
        let body = c.pos;
        let digest = c.take(DIGEST_LEN, "integrity digest")?;
        if c.pos != data.len() {
            bail!("corrupt: {} bytes after the digest", data.len() - c.pos);
        }
        let mut h = Sha1::new();
        h.update(utf16be(password));
        h.update(b"Mighty Aphrodite");
        h.update(&data[..body]);
        if h.finalize().as_slice() != digest {
            bail!("integrity check failed: wrong password, or the file is corrupt");
        }
        Ok(ks)
    }

    /// Recovers the PKCS#8 PrivateKeyInfo DER from a JKS-protected key.
    pub fn recover_key(protected: &[u8], password: &str) -> Result<Vec<u8>> {
        let mut r = SliceReader::new(protected).map_err(|e| anyhow!("bad key encoding: {e}"))?;
        let parsed = r.sequence(|r| {
            let alg = AlgorithmIdentifierRef::decode(r)?;
            let data = OctetStringRef::decode(r)?;
            Ok((alg.oid, data.as_bytes()))
        });
        let (oid, data) = parsed
            .and_then(|p| r.finish(p))
            .map_err(|e| anyhow!("bad key encoding (EncryptedPrivateKeyInfo): {e}"))?;
        if oid != KEY_PROTECTOR_OID {
            bail!("key protected with algorithm {oid}, not the JKS key protector");
        }
        if data.len() < 2 * DIGEST_LEN {
            bail!("protected key too short ({} bytes)", data.len());
        }
        let (salt, rest) = data.split_at(DIGEST_LEN);
        let (enc, check) = rest.split_at(rest.len() - DIGEST_LEN);
        let pw = utf16be(password);
        let mut plain = Vec::with_capacity(enc.len());
        let mut digest: [u8; DIGEST_LEN] = salt.try_into().expect("20 bytes");
        for chunk in enc.chunks(DIGEST_LEN) {
            let mut h = Sha1::new();
            h.update(&pw);
            h.update(digest);
            digest = h.finalize().into();
            plain.extend(chunk.iter().zip(digest.iter()).map(|(a, b)| a ^ b));
        }
        let mut h = Sha1::new();
        h.update(&pw);
        h.update(&plain);
        if h.finalize().as_slice() != check {
            bail!("cannot recover the key: wrong password (ZooKeeper uses the store password for keys)");
        }
        Ok(plain)
    }
}

// ------------------------------------------------------------------ quorum

/// TLS between ensemble members (`sslQuorum=true` and the
/// `ssl.quorum.*` keys, as QuorumX509Util reads them) on the election,
/// quorum and observer master ports. Each side presents the certificate of
/// the quorum key store and checks the other's against the quorum trust
/// store and, with `ssl.quorum.hostnameVerification` (default true),
/// against the peer's address: the server's certificate must name the
/// host we connected to, a connecting member's the IP address it came
/// from, as ZKTrustManager checks both directions of quorum connections.
/// `portUnification=true` makes the listening ports take TLS and plain
/// connections alike (UnifiedServerSocket), for turning TLS on or off one
/// server at a time.
pub struct QuorumTls {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    /// sslQuorum: connect with TLS, and accept only TLS unless unified.
    pub connect_tls: bool,
    /// portUnification.
    pub unified: bool,
    verify_host: bool,
}

impl std::fmt::Debug for QuorumTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumTls")
            .field("connect_tls", &self.connect_tls)
            .field("unified", &self.unified)
            .field("verify_host", &self.verify_host)
            .finish_non_exhaustive()
    }
}

/// ZKConfig.getBoolean: absent is the default, present is true only as
/// "true".
fn zk_bool(v: Option<&str>, default: bool) -> bool {
    v.map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

impl QuorumTls {
    pub fn from_config(cfg: &Config, connect_tls: bool, unified: bool) -> Result<QuorumTls> {
        let s = Scope::Quorum;
        let p = s.prefix();
        let verify_host = zk_bool(ssl_prop(cfg, s, "hostnameVerification"), true);
        let Common {
            client_auth,
            versions,
            provider,
            certified,
            key_store,
        } = Common::read(cfg, s, &format!("quorum TLS needs {p}keyStore.location"))?;
        let certified = Arc::new(certified);
        let ts = store_settings(cfg, s, "trustStore")?.ok_or_else(|| {
            anyhow!("quorum TLS needs {p}trustStore.location (rookeeper has no JDK cacerts to fall back on)")
        })?;
        let trusted = load_trust_store(&ts)?;
        let mut roots = RootCertStore::empty();
        for (alias, der) in &trusted {
            roots
                .add(der.clone())
                .map_err(|e| anyhow!("trust store {}: entry {alias:?}: {e}", ts.path.display()))?;
        }
        let verifier = ClientVerifier::new(&ts.path, trusted, provider.clone(), client_auth)?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow!("quorum TLS protocol setup: {e}"))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| anyhow!("trust store {}: {e}", ts.path.display()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| anyhow!("quorum TLS protocol setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerVerifier {
                inner: webpki,
                verify_host,
            }))
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        info!(
            "quorum TLS: key store {}, trust store {}, hostname verification {verify_host}{}",
            key_store.display(),
            ts.path.display(),
            if unified { ", port unification" } else { "" }
        );
        Ok(QuorumTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            connect_tls,
            unified,
            verify_host,
        })
    }

    /// TLS server side of an accepted member connection; then, with
    /// hostname verification, its certificate must name the address it
    /// came from.
    pub async fn accept(
        &self,
        s: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        let peer = s.peer_addr()?.ip();
        let tls = self.acceptor.accept(s).await?;
        if self.verify_host {
            let ok = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .is_some_and(|leaf| cert_names_ip(leaf, peer));
            if !ok {
                return Err(std::io::Error::other(format!(
                    "the member's certificate does not name its address {peer} (ssl.quorum.hostnameVerification)"
                )));
            }
        }
        Ok(tls)
    }

    /// TLS client side of a connection to a member at `host` (its address
    /// as `server.N` gives it).
    pub async fn connect(
        &self,
        host: &str,
        s: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::other(format!("{host}: {e}")))?;
        self.connector.connect(name, s).await
    }
}

/// Does the certificate name this IP address (an IP address entry of its
/// subject alternative names, or a common name spelling it)?
fn cert_names_ip(der: &[u8], ip: std::net::IpAddr) -> bool {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let Ok(cert) = parse_cert(der) else {
        return false;
    };
    let want = match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    if let Ok(Some((_, san))) = cert.tbs_certificate.get::<SubjectAltName>() {
        if san
            .0
            .iter()
            .any(|g| matches!(g, GeneralName::IpAddress(o) if o.as_bytes() == want.as_slice()))
        {
            return true;
        }
    }
    rfc2253(&cert.tbs_certificate.subject)
        .split(',')
        .any(|rdn| rdn.trim() == format!("CN={ip}"))
}

/// The server certificate check of a connecting member: the trust store's
/// verdict, where a name mismatch counts only with hostname verification.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    verify_host: bool,
}

impl rustls::client::danger::ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_host => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tls")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn pem_cert(name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(&fixture(name)).expect("certificate")
    }

    fn verifier() -> ClientVerifier {
        let ca = pem_cert("ca.pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ClientVerifier::new(
            Path::new("ca.pem"),
            vec![("ca".into(), ca)],
            provider,
            ClientAuth::Need,
        )
        .expect("verifier")
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn v1_client_certificates() {
        let v = verifier();
        let v1 = pem_cert("client-v1.pem");
        assert!(ClientVerifier::legacy(&v1).is_some(), "fixture is X.509 v1");
        // webpki alone refuses it.
        let e = v.webpki.verify_client_cert(&v1, &[], now()).unwrap_err();
        assert!(format!("{e:?}").contains("UnsupportedCertVersion"), "{e:?}");
        v.verify_client_cert(&v1, &[], now())
            .expect("v1 issued by the CA");

        let forged = pem_cert("forged-v1.pem");
        assert_eq!(
            v.verify_client_cert(&forged, &[], now()).unwrap_err(),
            CertificateError::BadSignature.into()
        );
        let cert = parse_cert(&v1).unwrap();
        let after = cert.tbs_certificate.validity.not_after.to_unix_duration();
        let late = UnixTime::since_unix_epoch(after + std::time::Duration::from_secs(1));
        assert_eq!(
            v.verify_client_cert(&v1, &[], late).unwrap_err(),
            CertificateError::Expired.into()
        );
        let early = UnixTime::since_unix_epoch(std::time::Duration::from_secs(0));
        assert_eq!(
            v.verify_client_cert(&v1, &[], early).unwrap_err(),
            CertificateError::NotValidYet.into()
        );
        // Issued by someone not in the trust store.
        let other = pem_cert("intruder.pem");
        assert!(ClientVerifier::legacy(&other).is_none(), "v3: webpki's");
        assert!(v.verify_client_cert(&other, &[], now()).is_err());
        // v3 ones go through webpki.
        let v3 = pem_cert("client.pem");
        v.verify_client_cert(&v3, &[], now())
            .expect("v3 issued by the CA");
    }

    #[test]
    fn distinguished_names_as_java_prints_them() {
        let name = |der: &[u8]| rfc2253(&parse_cert(der).unwrap().tbs_certificate.subject);
        assert_eq!(
            name(&pem_cert("client.pem")),
            "CN=client,OU=tests,O=rookeeper"
        );
        assert_eq!(name(&pem_cert("ca.pem")), "CN=rookeeper test CA");
        let mut out = String::new();
        escape_2253(" a,b=c+d<e>f#g;h\"i\\j ", &mut out);
        assert_eq!(out, "\\ a\\,b\\=c\\+d\\<e\\>f\\#g\\;h\\\"i\\\\j\\ ");
    }

    #[test]
    fn client_auth_values() {
        assert_eq!(ClientAuth::parse(None).unwrap(), ClientAuth::Need);
        assert_eq!(ClientAuth::parse(Some("")).unwrap(), ClientAuth::Need);
        assert_eq!(ClientAuth::parse(Some("Want")).unwrap(), ClientAuth::Want);
        assert_eq!(ClientAuth::parse(Some("none")).unwrap(), ClientAuth::None);
        assert!(ClientAuth::parse(Some("maybe")).is_err());
    }

    #[test]
    fn quorum_tls_reads_its_own_keys_and_checks_addresses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tls");
        let cfg = |extra: &str| {
            let text = format!(
                "dataDir=/tmp\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n{extra}",
                dir.join("server.pem").display()
            );
            Config::build(
                crate::config::parse_properties(&text),
                Default::default(),
                None,
            )
            .unwrap()
        };
        // The quorum's trust store is its own setting, not ssl.trustStore.
        let c = cfg(&format!(
            "ssl.trustStore.location={}",
            dir.join("ca.pem").display()
        ));
        let e = QuorumTls::from_config(&c, true, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("zookeeper.ssl.quorum.trustStore.location"),
            "{e}"
        );
        let c = cfg(&format!(
            "ssl.quorum.trustStore.location={}\nssl.quorum.hostnameVerification=false",
            dir.join("ca.pem").display()
        ));
        let t = QuorumTls::from_config(&c, true, true).unwrap();
        assert!(!t.verify_host && t.connect_tls && t.unified);
        let c = cfg(&format!(
            "ssl.quorum.trustStore.location={}",
            dir.join("ca.pem").display()
        ));
        assert!(QuorumTls::from_config(&c, false, true).unwrap().verify_host);
        // server.pem names 127.0.0.1 (and localhost), nothing else.
        let leaf = pem_cert("server.pem");
        assert!(cert_names_ip(&leaf, "127.0.0.1".parse().unwrap()));
        assert!(!cert_names_ip(&leaf, "127.0.0.2".parse().unwrap()));
        assert!(!cert_names_ip(&leaf, "::1".parse().unwrap()));
    }
}
