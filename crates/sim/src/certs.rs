//! Certificates for the simulated platform.
//!
//! At start the simulator makes a private CA and a server certificate signed by it, valid for
//! `DNS:localhost` and `IP:127.0.0.1`. Both the HTTPS REST server and the embedded STOMP broker
//! present that certificate. The CA's PEM is written to a temporary directory owned by the
//! [`crate::Sim`], so a host under test can use it as `cafile` / `stomp_cafile`. With a state
//! file they are kept in a directory beside it instead ([`Certs::load_or_generate`]) and used
//! again at the next start, so that an app.config written for the simulator keeps working.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::SimError;

/// The generated CA and server certificate, plus rustls configurations built from them.
pub struct Certs {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_config: Arc<rustls::ServerConfig>,
    /// A temporary directory removed with the [`Certs`]; `None` for a kept one.
    _temp: Option<tempfile::TempDir>,
    ca_file: PathBuf,
}

/// The PEM texts of a CA certificate, a server certificate and the server's key.
struct Pems {
    ca: String,
    server: String,
    key: String,
}

/// File names in a kept certificate directory.
const CA_PEM: &str = "ca.pem";
const SERVER_PEM: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";

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
        let dir = tempfile::Builder::new().prefix("soar-sim-").tempdir()?;
        let pems = new_pems()?;
        std::fs::write(dir.path().join(CA_PEM), &pems.ca)?;
        Certs::from_pems(&pems, dir.path().join(CA_PEM), Some(dir))
    }

    /// The certificates kept in `dir` (`ca.pem`, `server.pem`, `server-key.pem`), made and
    /// written there (the key readable by its owner only) when they are not there yet.
    pub fn load_or_generate(dir: &Path) -> Result<Certs, SimError> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let pems = match (read(CA_PEM), read(SERVER_PEM), read(SERVER_KEY)) {
            (Ok(ca), Ok(server), Ok(key)) => Pems { ca, server, key },
            _ => {
                let pems = new_pems()?;
                std::fs::create_dir_all(dir)?;
                // The directory first: the key is never readable by others, not even briefly.
                restrict_to_owner(dir, 0o700)?;
                crate::state::write_atomically(&dir.join(SERVER_KEY), pems.key.as_bytes())?;
                restrict_to_owner(&dir.join(SERVER_KEY), 0o600)?;
                crate::state::write_atomically(&dir.join(SERVER_PEM), pems.server.as_bytes())?;
                crate::state::write_atomically(&dir.join(CA_PEM), pems.ca.as_bytes())?;
                pems
            }
        };
        Certs::from_pems(&pems, dir.join(CA_PEM), None).map_err(|e| {
            SimError::Tls(format!(
                "{e} (in {}; delete that directory to make new certificates)",
                dir.display()
            ))
        })
    }

    fn from_pems(
        pems: &Pems,
        ca_file: PathBuf,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Certs, SimError> {
        let ca_der =
            CertificateDer::from_pem_slice(pems.ca.as_bytes()).map_err(|e| tls_err(CA_PEM, e))?;
        let server_der = CertificateDer::from_pem_slice(pems.server.as_bytes())
            .map_err(|e| tls_err(SERVER_PEM, e))?;
        let key = PrivateKeyDer::from_pem_slice(pems.key.as_bytes())
            .map_err(|e| tls_err(SERVER_KEY, e))?;
        let chain = vec![server_der, ca_der.clone()];
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("server TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_err("server TLS configuration", e))?;
        Ok(Certs {
            ca_pem: pems.ca.clone(),
            ca_der,
            server_config: Arc::new(server_config),
            _temp: temp,
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

/// A new CA and a server certificate signed by it, as PEM.
fn new_pems() -> Result<Pems, SimError> {
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

    Ok(Pems {
        ca: ca_cert.pem(),
        server: server_cert.pem(),
        key: server_key.serialize_pem(),
    })
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict_to_owner(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}
