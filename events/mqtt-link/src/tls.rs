//! rustls client set-up for `mqtts://`: the broker is checked against a CA file or, without
//! one, the system's roots (rustls-native-certs); a client certificate and key, when given,
//! authenticate the client (mutual TLS). The `ring` provider is passed here rather than
//! installed process-wide, so nothing depends on which crypto back-end another crate happens
//! to enable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// PEM files for `mqtts://`; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the broker's certificate (default: the system's roots).
    pub ca: Option<PathBuf>,
    /// Certificate (chain) the client presents; goes with `client_key`.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// Which of the [`TlsFiles`] an error is about, so that each binary can name it its own way
/// (a config key, a command-line flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Ca,
    ClientCert,
    ClientKey,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Ca => "the CA file",
            TlsFile::ClientCert => "the client certificate",
            TlsFile::ClientKey => "the client key",
        })
    }
}

/// One problem with the TLS set-up. File problems name the file's path; [`TlsError::file`]
/// says which of the files is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("only used with an mqtts:// URL (the broker URL is plain mqtt://)")]
    NotMqtts { file: TlsFile },
    #[error("must be set with {with}")]
    Unpaired { file: TlsFile, with: TlsFile },
    #[error("{}: not found", path.display())]
    NotFound { file: TlsFile, path: PathBuf },
    #[error("{}: {source}", path.display())]
    Read { file: TlsFile, path: PathBuf, source: std::io::Error },
    #[error("{}: bad PEM: {reason}", path.display())]
    BadPem { file: TlsFile, path: PathBuf, reason: String },
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it", path.display())]
    NoCertificate { file: TlsFile, path: PathBuf },
    #[error("{}: no usable PEM private key in it ({reason})", path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error("{}: not a usable CA certificate: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("not set, and no system root certificates were found{}: set it to the broker's CA", in_brackets(.reason))]
    NoSystemRoots { reason: Option<String> },
    /// rustls refused the pair (the key must belong to the certificate).
    #[error("{}: not usable with the client certificate {}: {reason}", key.display(), cert.display())]
    ClientAuth { key: PathBuf, cert: PathBuf, reason: String },
    #[error("TLS set-up: {0}")]
    Rustls(rustls::Error),
}

/// ` (why)`, or nothing.
fn in_brackets(why: &Option<String>) -> String {
    why.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
}

impl TlsError {
    /// The file at fault: for a missing CA file (no system roots) [`TlsFile::Ca`], for a key
    /// that does not fit its certificate [`TlsFile::ClientKey`]; `None` for rustls itself.
    pub fn file(&self) -> Option<TlsFile> {
        match self {
            TlsError::NotMqtts { file }
            | TlsError::Unpaired { file, .. }
            | TlsError::NotFound { file, .. }
            | TlsError::Read { file, .. }
            | TlsError::BadPem { file, .. }
            | TlsError::NoCertificate { file, .. } => Some(*file),
            TlsError::BadCa { .. } | TlsError::NoSystemRoots { .. } => Some(TlsFile::Ca),
            TlsError::NoKey { .. } | TlsError::ClientAuth { .. } => Some(TlsFile::ClientKey),
            TlsError::Rustls(_) => None,
        }
    }
}

/// Every problem found at once, in the order ca, client certificate, client key.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct TlsErrors(pub Vec<TlsError>);

impl IntoIterator for TlsErrors {
    type Item = TlsError;
    type IntoIter = std::vec::IntoIter<TlsError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl TlsFiles {
    /// The rustls client set-up for a broker URL: `None` for plain `mqtt://` (where setting
    /// any of the files is an error), the broker check and optional client certificate for
    /// `mqtts://`.
    pub fn client_config(&self, mqtts: bool) -> Result<Option<Arc<rustls::ClientConfig>>, TlsErrors> {
        let given = [(TlsFile::Ca, &self.ca), (TlsFile::ClientCert, &self.client_cert), (TlsFile::ClientKey, &self.client_key)];
        if !mqtts {
            let errors: Vec<_> = given.iter().filter(|(_, p)| p.is_some()).map(|&(file, _)| TlsError::NotMqtts { file }).collect();
            return if errors.is_empty() { Ok(None) } else { Err(TlsErrors(errors)) };
        }
        let mut errors = Vec::new();
        let ca = self.ca.as_deref().and_then(|p| keep(&mut errors, read_certs(TlsFile::Ca, p)).map(|certs| (certs, p)));
        let chain = self.client_cert.as_deref().and_then(|p| keep(&mut errors, read_certs(TlsFile::ClientCert, p)));
        let key = self.client_key.as_deref().and_then(|p| keep(&mut errors, read_key(p)));
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => errors.push(TlsError::Unpaired { file: TlsFile::ClientKey, with: TlsFile::ClientCert }),
            (None, Some(_)) => errors.push(TlsError::Unpaired { file: TlsFile::ClientCert, with: TlsFile::ClientKey }),
            _ => {}
        }
        if !errors.is_empty() {
            return Err(TlsErrors(errors));
        }
        let client = match (chain, key, self.client_cert.as_deref(), self.client_key.as_deref()) {
            (Some(chain), Some(key), Some(cert_path), Some(key_path)) => Some(ClientAuth { chain, key, cert_path, key_path }),
            _ => None,
        };
        build(ca, client).map(|c| Some(Arc::new(c))).map_err(|e| TlsErrors(vec![e]))
    }
}

/// `r`'s value; its error goes to `errors`.
fn keep<T>(errors: &mut Vec<TlsError>, r: Result<T, TlsError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// A client certificate chain and its key, with their files (for errors).
struct ClientAuth<'a> {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &'a Path,
    key_path: &'a Path,
}

fn build(ca: Option<(Vec<CertificateDer<'static>>, &Path)>, client: Option<ClientAuth<'_>>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some((certs, path)) => {
            for c in certs {
                roots.add(c).map_err(|e| TlsError::BadCa { path: path.to_owned(), reason: e.to_string() })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots { reason: found.errors.first().map(|e| e.to_string()) });
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_root_certificates(roots);
    Ok(match client {
        Some(c) => builder.with_client_auth_cert(c.chain, c.key).map_err(|e| TlsError::ClientAuth {
            key: c.key_path.to_owned(),
            cert: c.cert_path.to_owned(),
            reason: e.to_string(),
        })?,
        None => builder.with_no_client_auth(),
    })
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => TlsError::NotFound { file, path: path.to_owned() },
        _ => TlsError::Read { file, path: path.to_owned(), source },
    })
}

/// The certificates of a PEM file.
fn read_certs(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { file, path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { file, path: path.to_owned() });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(TlsFile::ClientKey, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::NoKey { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM files in `dir`.
    fn cert_and_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params").self_signed(&key).expect("cert");
        let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    fn errors(files: &TlsFiles, mqtts: bool) -> Vec<(Option<TlsFile>, String)> {
        let errs = files.client_config(mqtts).expect_err("invalid");
        errs.into_iter().map(|e| (e.file(), e.to_string())).collect()
    }

    #[test]
    fn plain_mqtt_needs_no_files_and_takes_none() {
        assert!(TlsFiles::default().client_config(false).expect("plain").is_none());
        let files = TlsFiles { ca: Some("ca.pem".into()), client_key: Some("k.pem".into()), ..TlsFiles::default() };
        let msg = "only used with an mqtts:// URL (the broker URL is plain mqtt://)".to_owned();
        assert_eq!(errors(&files, false), vec![(Some(TlsFile::Ca), msg.clone()), (Some(TlsFile::ClientKey), msg)]);
    }

    #[test]
    fn file_errors_name_the_file_and_come_all_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (missing, junk) = (dir.path().join("missing.pem"), dir.path().join("junk.pem"));
        std::fs::write(&junk, "not a certificate").expect("write");
        let files = TlsFiles { ca: Some(missing.clone()), client_cert: Some(junk.clone()), client_key: None };
        assert_eq!(
            errors(&files, true),
            vec![
                (Some(TlsFile::Ca), format!("{}: not found", missing.display())),
                (Some(TlsFile::ClientCert), format!("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it", junk.display())),
                (Some(TlsFile::ClientKey), "must be set with the client certificate".to_owned()),
            ]
        );
        let files = TlsFiles { client_key: Some(junk.clone()), ..TlsFiles::default() };
        let found = errors(&files, true);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, Some(TlsFile::ClientKey));
        assert!(found[0].1.starts_with(&format!("{}: no usable PEM private key in it", junk.display())), "{found:?}");
        assert_eq!(found[1], (Some(TlsFile::ClientCert), "must be set with the client key".to_owned()));
        // A folder is found but cannot be read as a file.
        let files = TlsFiles { ca: Some(dir.path().to_owned()), ..TlsFiles::default() };
        let found = errors(&files, true);
        assert!(found[0].1.starts_with(&format!("{}: ", dir.path().display())) && !found[0].1.ends_with("not found"), "{found:?}");
    }

    #[test]
    fn a_key_must_belong_to_its_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, _) = cert_and_key(dir.path(), "ca");
        let (cert, key) = cert_and_key(dir.path(), "client");
        let (_, other_key) = cert_and_key(dir.path(), "other");
        let good = TlsFiles { ca: Some(ca.clone()), client_cert: Some(cert.clone()), client_key: Some(key) };
        assert!(good.client_config(true).expect("valid").is_some());
        let bad = TlsFiles { client_key: Some(other_key.clone()), ..good };
        let found = errors(&bad, true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Some(TlsFile::ClientKey));
        let prefix = format!("{}: not usable with the client certificate {}: ", other_key.display(), cert.display());
        assert!(found[0].1.starts_with(&prefix), "{found:?}");
    }

    #[test]
    fn a_ca_file_or_the_system_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, _) = cert_and_key(dir.path(), "ca");
        assert!(TlsFiles { ca: Some(ca), ..TlsFiles::default() }.client_config(true).expect("CA file").is_some());
        // Needs the machine's root certificates (Debian: ca-certificates).
        assert!(TlsFiles::default().client_config(true).expect("system roots").is_some());
    }
}
