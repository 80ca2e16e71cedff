//! The broker's identity files, generated from the store: Mosquitto's password file (its own
//! `$7$` PBKDF2-SHA512 format, as `mosquitto_passwd` writes it) and its ACL file.
//!
//! Who may do what on the broker:
//! - each agent (user name = the agent's name, password = its key's secret) may publish only
//!   under its own site, `roadsight/v1/{site}/#`, and read only its site's signal-controller
//!   phases (`roadsight/v1/{site}/signals/#`);
//! - the IOC's subscriber (`ioc-api`) may read `roadsight/v1/#` and publish nothing;
//! - nobody else gets in (the embedded broker refuses anonymous clients).
//!
//! The same two files serve the embedded Mosquitto (rewritten and reloaded with SIGHUP when
//! a key is created or revoked) and an external broker (`ioc-api broker export`).

use std::fmt::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::store::BrokerUser;

/// PBKDF2 rounds. Agent secrets are 192-bit random strings, so the count guards nothing an
/// attacker could brute-force; Mosquitto's own default is 101.
const ITERATIONS: u32 = 1000;
const SALT_BYTES: usize = 12;
const HASH_BYTES: usize = 64;

/// The IOC subscriber's broker user name.
pub const IOC_USERNAME: &str = "ioc-api";

#[derive(Debug, thiserror::Error)]
pub enum BrokerAuthError {
    #[error("no randomness for a salt: {0}")]
    Random(String),
    #[error("not a Mosquitto $7$ password hash")]
    Format,
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// A fresh random password (the embedded broker's IOC subscriber gets one at each start).
pub fn random_password() -> Result<String, BrokerAuthError> {
    let mut buf = [0u8; 24];
    getrandom::fill(&mut buf).map_err(|e| BrokerAuthError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// `password` hashed as Mosquitto's password file stores it: `$7$<rounds>$<salt>$<hash>`.
pub fn mosquitto_hash(password: &str) -> Result<String, BrokerAuthError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| BrokerAuthError::Random(e.to_string()))?;
    Ok(hash_with(password, &salt, ITERATIONS))
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, iterations, &mut out);
    format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(out))
}

/// Whether `password` matches a `$7$` hash (as Mosquitto checks it).
pub fn verify(password: &str, hash: &str) -> Result<bool, BrokerAuthError> {
    let parts: Vec<&str> = hash.split('$').collect();
    let ["", "7", rounds, salt, _] = parts.as_slice() else { return Err(BrokerAuthError::Format) };
    let rounds: u32 = rounds.parse().map_err(|_| BrokerAuthError::Format)?;
    let salt = B64.decode(salt).map_err(|_| BrokerAuthError::Format)?;
    Ok(hash_with(password, &salt, rounds) == hash)
}

/// The password file: the IOC subscriber, then every live agent.
pub fn password_file(ioc_hash: &str, agents: &[BrokerUser]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{IOC_USERNAME}:{ioc_hash}");
    for a in agents {
        let _ = writeln!(s, "{}:{}", a.username, a.hash);
    }
    s
}

/// The ACL file (Mosquitto `acl_file` syntax; no `pattern` lines, so a client not listed
/// may do nothing).
pub fn acl_file(agents: &[BrokerUser]) -> String {
    let mut s = String::from("# Written by ioc-api from its store. Edits are overwritten.\n\n");
    let root = roadsight_events::topics::PREFIX;
    let _ = writeln!(s, "user {IOC_USERNAME}\ntopic read {root}/#\n");
    for a in agents {
        // Its own site's topics to write; its site's signal-controller phases to read.
        let _ = writeln!(s, "user {}\ntopic write {root}/{}/#\ntopic read {root}/{}/signals/#\n", a.username, a.site, a.site);
    }
    s
}

/// Writes `passwd` and `acl` into `dir` (each replaced atomically, readable by the owner only).
pub fn write_files(dir: &Path, ioc_hash: &str, agents: &[BrokerUser]) -> Result<(), BrokerAuthError> {
    write_private(&dir.join("passwd"), &password_file(ioc_hash, agents))?;
    write_private(&dir.join("acl"), &acl_file(agents))
}

fn write_private(path: &Path, text: &str) -> Result<(), BrokerAuthError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| BrokerAuthError::Write { path: path.display().to_string(), source };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = mosquitto_hash("s3cret").expect("hash");
        let b = mosquitto_hash("s3cret").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$7$1000$"), "{a}");
        assert!(verify("s3cret", &a).expect("format"));
        assert!(!verify("s3cret!", &a).expect("format"));
        assert!(verify("x", "plain").is_err());
    }

    #[test]
    fn acl_confines_each_agent_to_its_site() {
        let agents = [BrokerUser { username: "box-1".into(), hash: "$7$h".into(), site: "district-a".into() }];
        let acl = acl_file(&agents);
        assert!(acl.contains("user ioc-api\ntopic read roadsight/v1/#"), "{acl}");
        assert!(acl.contains("user box-1\ntopic write roadsight/v1/district-a/#\ntopic read roadsight/v1/district-a/signals/#"), "{acl}");
        assert!(!acl.contains("pattern"), "{acl}");
        assert_eq!(password_file("$7$i", &agents), "ioc-api:$7$i\nbox-1:$7$h\n");
    }
}
