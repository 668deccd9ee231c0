//! Throw-away certificates for the simulated platform.
//!
//! At start the simulator makes a private CA and a server certificate signed by it, valid for
//! `DNS:localhost` and `IP:127.0.0.1`. Both the HTTPS REST server and the embedded STOMP broker
//! present that certificate. The CA's PEM is written to a temporary directory owned by the
//! [`crate::Sim`], so a host under test can use it as `cafile` / `stomp_cafile`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimError;

/// The generated CA and server certificate, plus rustls configurations built from them.
pub struct Certs {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_config: Arc<rustls::ServerConfig>,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Tls(format!("{what}: {e}"))
}

/// The rustls crypto provider used everywhere in the simulator (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Certs {
    /// Makes a new CA and server certificate and writes `ca.pem` to a fresh temporary directory.
    pub fn generate() -> Result<Certs, SimError> {
        let ca_key = KeyPair::generate().map_err(|e| tls_err("CA key", e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA params", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "soar-sim test CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "soar-sim");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| tls_err("CA certificate", e))?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let server_key = KeyPair::generate().map_err(|e| tls_err("server key", e))?;
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
            .map_err(|e| tls_err("server params", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(|e| tls_err("server certificate", e))?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let chain = vec![server_cert.der().clone(), ca_cert.der().clone()];
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("server TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_err("server TLS configuration", e))?;

        let dir = tempfile::Builder::new().prefix("soar-sim-").tempdir()?;
        let ca_file = dir.path().join("ca.pem");
        let ca_pem = ca_cert.pem();
        std::fs::write(&ca_file, &ca_pem)?;
        Ok(Certs {
            ca_pem,
            ca_der: ca_cert.der().clone(),
            server_config: Arc::new(server_config),
            dir,
            ca_file,
        })
    }

    /// Path of the CA certificate (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The temporary directory holding `ca.pem`; removed when the [`Certs`] is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// TLS configuration of the REST server and the embedded broker.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }

    /// A client configuration that trusts only this CA (for tests talking to the simulator).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, SimError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|e| tls_err("CA root", e))?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("client TLS versions", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
