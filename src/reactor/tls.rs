//! TLS settings for the reactor's connections, in both roles.
//!
//! A connection is TLS from its first byte (a listener given a [`ServerTls`], a
//! [`Reactor::connect_tls`](super::Reactor::connect_tls)) or from the moment its handler asks
//! for it ([`Context::start_tls`](super::Context::start_tls), what SMTP's STARTTLS does). In
//! every case the handshake is driven by readiness: `transport.rs` keeps the half-done
//! handshake and resumes it on the connection's next event, so a slow peer never holds the
//! loop. Handlers see plaintext only and never learn whether TLS is under them.
//!
//! The TLS library is the platform's, through `native-tls` (OpenSSL on Linux): the same
//! library curl and Python's `ssl` use here, so what they accept we accept.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What the server side of a TLS connection needs: a certificate chain and its key.
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) acceptor: native_tls::TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Loads a PEM certificate chain (the server's certificate first) and its PEM PKCS#8
    /// private key (`-----BEGIN PRIVATE KEY-----`, what `openssl req -newkey` writes).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsConfigError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        if !key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----") {
            return Err(TlsConfigError::NotPkcs8(key.to_path_buf()));
        }
        let identity = native_tls::Identity::from_pkcs8(&cert_pem, &key_pem)
            .map_err(|e| TlsConfigError::Tls("certificate or key", e))?;
        let acceptor = native_tls::TlsAcceptor::builder(identity)
            // TLS 1.0 and 1.1 are deprecated (RFC 8996); what curl, browsers and Python offer.
            .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
            .build()
            .map_err(|e| TlsConfigError::Tls("TLS server settings", e))?;
        Ok(ServerTls { acceptor })
    }
}

/// What the client side needs: which certificates to trust.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) connector: native_tls::TlsConnector,
    insecure: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl ClientTls {
    /// Verifies the server's certificate against the system's trusted roots or, with
    /// `ca_file`, against the PEM certificates in that file only (a local test CA), as
    /// curl's `--cacert` does. Trusting only the file also saves loading the system's
    /// bundle, which OpenSSL 3 takes tens of milliseconds to decode at start.
    /// `insecure` skips verification altogether (curl's `-k`): the connection is encrypted
    /// but the peer is whoever answered.
    pub fn new(ca_file: Option<&Path>, insecure: bool) -> Result<ClientTls, TlsConfigError> {
        let mut builder = native_tls::TlsConnector::builder();
        builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
        if let Some(path) = ca_file {
            let pem = read(path)?;
            let certs = native_tls::Certificate::stack_from_pem(&pem)
                .map_err(|e| TlsConfigError::Tls("CA file", e))?;
            if certs.is_empty() {
                return Err(TlsConfigError::NoCertificates(path.to_path_buf()));
            }
            for cert in certs {
                builder.add_root_certificate(cert);
            }
            builder.disable_built_in_roots(true);
        }
        if insecure {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        let connector = builder
            .build()
            .map_err(|e| TlsConfigError::Tls("TLS client settings", e))?;
        Ok(ClientTls {
            connector,
            insecure,
        })
    }

    /// Certificate verification is off.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

/// Which side of the handshake a connection takes, with what it needs for it.
#[derive(Clone, Debug)]
pub enum TlsRole {
    /// We answer the handshake with our certificate.
    Server(ServerTls),
    /// We start it. `server_name` is sent as SNI (unless it is an IP address) and the
    /// certificate must be valid for it.
    Client {
        /// The trust settings.
        tls: ClientTls,
        /// The host name from the URL (or the address, for an IP literal).
        server_name: String,
    },
}

/// A handshake the reactor is to start on a connection, and when.
#[derive(Debug)]
pub(crate) struct PendingTls {
    pub role: TlsRole,
    /// Queued bytes that still go out in plaintext first: what the handler had queued
    /// when it asked for the upgrade (the "220 Ready to start TLS"). The handshake starts
    /// when this reaches 0; anything queued after the request waits and goes encrypted.
    pub plaintext_left: usize,
}

impl PendingTls {
    pub(crate) fn new(role: TlsRole) -> Box<PendingTls> {
        Box::new(PendingTls {
            role,
            plaintext_left: 0,
        })
    }
}

impl TlsRole {
    /// The client role: verify with `tls`, send and check `server_name`.
    pub fn client(tls: ClientTls, server_name: &str) -> TlsRole {
        TlsRole::Client {
            tls,
            server_name: server_name.into(),
        }
    }
}

/// A TLS setting that could not be loaded.
#[derive(Debug)]
pub enum TlsConfigError {
    /// A file could not be read.
    Read(PathBuf, io::Error),
    /// The key is not PEM PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    NotPkcs8(PathBuf),
    /// The CA file holds no PEM certificate.
    NoCertificates(PathBuf),
    /// The TLS library refused what it was given (a bad certificate, a key that does not
    /// match it).
    Tls(&'static str, native_tls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            TlsConfigError::NotPkcs8(path) => write!(
                f,
                "{}: not a PEM PKCS#8 key (convert it: openssl pkcs8 -topk8 -nocrypt -in KEY)",
                path.display()
            ),
            TlsConfigError::NoCertificates(path) => {
                write!(f, "{}: no PEM certificate in it", path.display())
            }
            TlsConfigError::Tls(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::Read(path.to_path_buf(), e))
}
