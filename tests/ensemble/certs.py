"""Test-only certificates for quorum TLS, made with openssl at test time:
a CA, a member key store (PEM: PKCS#8 key then certificate, naming
127.0.0.1-9 and localhost, for both ends of a connection) and a stranger's
(the same names, self-signed: nobody trusts it)."""

import os
import subprocess


def _ssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_quorum_certs(d):
    os.makedirs(d, exist_ok=True)
    # 127.0.0.1-9: ensembles with a loopback address per server too.
    names = "subjectAltName=" + ",".join(f"IP:127.0.0.{i}" for i in range(1, 10)) + ",DNS:localhost"
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
         "-subj", "/CN=quorum test CA", "-days", "2",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign", cwd=d)
    _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "member-key.pem", "-out", "member.csr",
         "-subj", "/CN=member", cwd=d)
    with open(os.path.join(d, "member.ext"), "w") as f:
        f.write(f"{names}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n")
    _ssl("x509", "-req", "-in", "member.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
         "-out", "member.crt", "-days", "2", "-extfile", "member.ext", cwd=d)
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "stranger-key.pem", "-out", "stranger.crt",
         "-subj", "/CN=stranger", "-days", "2", "-addext", names,
         "-addext", "extendedKeyUsage=serverAuth,clientAuth", cwd=d)
    out = {}
    for who in ("member", "stranger"):
        path = os.path.join(d, f"{who}.pem")
        with open(path, "w") as f:
            for part in (f"{who}-key.pem", f"{who}.crt"):
                with open(os.path.join(d, part)) as p:
                    f.write(p.read())
        out[who] = path
    out["ca"] = os.path.join(d, "ca.pem")
    return out


def quorum_tls_cfg(key_store, trust_store):
    """zoo.cfg lines turning quorum TLS on (Apache's keys)."""
    return (
        "sslQuorum=true\n"
        f"ssl.quorum.keyStore.location={key_store}\nssl.quorum.keyStore.type=PEM\n"
        f"ssl.quorum.trustStore.location={trust_store}\nssl.quorum.trustStore.type=PEM\n"
    )
