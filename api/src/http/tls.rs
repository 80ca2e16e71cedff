//! HTTPS for the HTTP listener: a PEM certificate chain and private key (`--tls-cert`,
//! `--tls-key`), rustls with the `ring` provider passed explicitly (never installed
//! process-wide), TLS 1.2 and 1.3, HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Reads and checks both files now, so a bad file stops `serve` before anything starts;
/// every error names the flag and the file.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let read = |flag: &str, p: &Path| std::fs::read(p).with_context(|| format!("{flag} {}: cannot read", p.display()));
    let chain = CertificateDer::pem_slice_iter(&read("--tls-cert", cert)?).collect::<Result<Vec<_>, _>>();
    let chain = chain.with_context(|| format!("--tls-cert {}: bad PEM", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "--tls-cert {}: no PEM certificate in it", cert.display());
    let private =
        PrivateKeyDer::from_pem_slice(&read("--tls-key", key)?).with_context(|| format!("--tls-key {}: no PEM private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| format!("--tls-key {} does not go with --tls-cert {}", key.display(), cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
