//! TLS client configuration shared by the STOMP and REST clients.
//!
//! resilient-circuits reads `cafile` / `stomp_cafile` from app.config: unset means "use the
//! system's trust store", a path means "trust the PEM certificates in this file", and `false`
//! means "do not verify the server certificate". [`CaSource::from_setting`] turns the setting into
//! a [`CaSource`], and [`client_config`] turns that into a [`rustls::ClientConfig`] built on the
//! `ring` crypto provider (TLS 1.2 and 1.3). Errors name the CA file so that the user knows what
//! to fix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Where the certificates that verify a server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    /// The operating system's trust store (via `rustls-native-certs`).
    System,
    /// A PEM file holding one or more CA (or self-signed server) certificates.
    File(PathBuf),
    /// No verification of the server certificate (`cafile = false`). Handshake signatures are
    /// still checked, so the connection is encrypted but not authenticated.
    Insecure,
}

impl CaSource {
    /// resilient semantics: `None` or an empty value means [`CaSource::System`],
    /// `false`/`False`/`FALSE` means [`CaSource::Insecure`], anything else is a file path.
    pub fn from_setting(value: Option<&str>) -> CaSource {
        match value.map(str::trim) {
            None | Some("") => CaSource::System,
            Some("false" | "False" | "FALSE") => CaSource::Insecure,
            Some(path) => CaSource::File(PathBuf::from(path)),
        }
    }
}

/// Errors while building a TLS client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {}: {source}", path.display())]
    CaFileRead {
        /// The configured CA file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CA file has no `BEGIN CERTIFICATE` section.
    #[error("CA file {} contains no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display())]
    CaFileEmpty {
        /// The configured CA file.
        path: PathBuf,
    },
    /// The CA file has a certificate section that cannot be decoded or used as a trust anchor.
    #[error("CA file {} is not valid PEM: {reason}", path.display())]
    CaFileInvalid {
        /// The configured CA file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system trust store yielded no usable certificate (the reasons are logged as warnings).
    #[error(
        "no usable system root certificates (install ca-certificates, or set cafile to a PEM file)"
    )]
    NoSystemRoots,
    /// rustls rejected the configuration (should not happen with the ring provider).
    #[error("TLS configuration error: {0}")]
    Config(#[from] rustls::Error),
}

/// The `ring` crypto provider used for every TLS connection in the workspace.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Builds a client configuration (ring provider, TLS 1.2 and 1.3, no client certificate).
pub fn client_config(ca: &CaSource) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match ca {
        CaSource::System => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
        CaSource::File(path) => {
            let mut roots = RootCertStore::empty();
            for (i, cert) in load_certs(path)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| TlsError::CaFileInvalid {
                    path: path.clone(),
                    reason: format!("certificate #{} is unusable: {e}", i + 1),
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        CaSource::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Reads every `CERTIFICATE` section of a PEM file (other sections, such as keys, are skipped).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::CaFileRead {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CaFileInvalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::CaFileEmpty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "while loading system root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "unusable system root certificates skipped");
    }
    if added == 0 {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}

/// `cafile = false`: accepts any server certificate, but still checks that the server owns the
/// key of the certificate it presented (handshake signatures), with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pem_file(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(contents.as_bytes()).expect("write");
        file
    }

    fn self_signed_pem() -> String {
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen")
            .cert
            .pem()
    }

    #[test]
    fn from_setting_follows_resilient_semantics() {
        assert_eq!(CaSource::from_setting(None), CaSource::System);
        assert_eq!(CaSource::from_setting(Some("")), CaSource::System);
        assert_eq!(CaSource::from_setting(Some("  ")), CaSource::System);
        for v in ["false", "False", "FALSE", " false "] {
            assert_eq!(CaSource::from_setting(Some(v)), CaSource::Insecure, "{v}");
        }
        assert_eq!(
            CaSource::from_setting(Some("/etc/ca.pem")),
            CaSource::File("/etc/ca.pem".into())
        );
        assert_eq!(
            CaSource::from_setting(Some("true")),
            CaSource::File("true".into())
        );
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = client_config(&CaSource::File("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(matches!(err, TlsError::CaFileRead { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn file_without_certificates_is_rejected() {
        let file = pem_file("just some text\n");
        let err = load_certs(file.path()).unwrap_err();
        assert!(matches!(err, TlsError::CaFileEmpty { .. }), "{err:?}");
        assert!(err.to_string().contains(&file.path().display().to_string()));
    }

    #[test]
    fn broken_pem_is_rejected() {
        let file =
            pem_file("-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n");
        let err = load_certs(file.path()).unwrap_err();
        assert!(matches!(err, TlsError::CaFileInvalid { .. }), "{err:?}");
        assert!(err.to_string().contains(&file.path().display().to_string()));
    }

    #[test]
    fn valid_base64_that_is_not_a_certificate_is_rejected() {
        let file =
            pem_file("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        let err = client_config(&CaSource::File(file.path().to_owned())).unwrap_err();
        assert!(matches!(err, TlsError::CaFileInvalid { .. }), "{err:?}");
    }

    #[test]
    fn loads_all_certificates_and_skips_keys() {
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let file = pem_file(&format!("{}{key}{}", self_signed_pem(), self_signed_pem()));
        assert_eq!(load_certs(file.path()).expect("certs").len(), 2);
        client_config(&CaSource::File(file.path().to_owned())).expect("config");
    }

    /// Runs an in-memory handshake between `client` and a server presenting `server`'s cert.
    fn handshake(
        client: Arc<ClientConfig>,
        server: &rcgen::CertifiedKey<rcgen::KeyPair>,
    ) -> Result<(), rustls::Error> {
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(server.signing_key.serialize_der().into());
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![server.cert.der().clone()], key)?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut c = rustls::ClientConnection::new(client, name)?;
        let mut s = rustls::ServerConnection::new(Arc::new(server_config))?;
        while c.is_handshaking() || s.is_handshaking() {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).expect("client write");
            }
            s.read_tls(&mut buf.as_slice()).expect("server read");
            s.process_new_packets()?;
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).expect("server write");
            }
            c.read_tls(&mut buf.as_slice()).expect("client read");
            c.process_new_packets()?;
        }
        Ok(())
    }

    fn certified(name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen")
    }

    #[test]
    fn ca_file_verifies_and_insecure_accepts_anything() {
        let server = certified("localhost");
        let other = certified("localhost");
        let right = pem_file(&server.cert.pem());
        let wrong = pem_file(&other.cert.pem());
        handshake(
            client_config(&CaSource::File(right.path().to_owned())).expect("cfg"),
            &server,
        )
        .expect("the right CA verifies");
        let err = handshake(
            client_config(&CaSource::File(wrong.path().to_owned())).expect("cfg"),
            &server,
        )
        .unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        let mismatch = certified("elsewhere.example");
        let err = handshake(
            client_config(&CaSource::File(right.path().to_owned())).expect("cfg"),
            &mismatch,
        )
        .unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        handshake(client_config(&CaSource::Insecure).expect("cfg"), &mismatch).expect("insecure");
    }

    #[test]
    fn system_config_builds_or_reports_missing_roots() {
        match client_config(&CaSource::System) {
            Ok(_) => {}
            // A machine without ca-certificates is a legitimate (and clearly reported) case.
            Err(TlsError::NoSystemRoots) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn provider_is_ring_and_shared() {
        assert!(Arc::ptr_eq(&provider(), &provider()));
        assert!(!provider().cipher_suites.is_empty());
    }
}
