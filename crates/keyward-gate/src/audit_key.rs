//! Where the audit chain key comes from. The key seals every audit event and signs
//! checkpoints; it must not live in the database it protects.
//!
//! In order:
//! 1. `[audit] chain_key` (64 hex digits, given directly; meant for tests and secret stores
//!    that inject configuration through `KEYWARD_AUDIT__CHAIN_KEY`).
//! 2. `[audit] chain_key_file`: a file holding the 64 hex digits. It must exist: a missing
//!    configured file is refused rather than replaced, since a new key would make every keyed
//!    event unverifiable.
//! 3. Neither, with SQLite: `<database file>.audit-key` next to the database, generated on the
//!    first start (32 random bytes, hex, mode 0600) and read on later ones. An in-memory
//!    database gets a key for the life of the process.
//! 4. Neither, with PostgreSQL: refused. Several nodes share one database, so they must share
//!    one key; a key generated per node would make each node's events fail the others' check.

use std::io::Write;
use std::path::{Path, PathBuf};

use keyward_core::audit::ChainKey;

use crate::denials::AuditConfig;

/// Where the key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `audit.chain_key`.
    Configured,
    /// Read from this file.
    File(PathBuf),
    /// Generated now into this file.
    Generated(PathBuf),
    /// Generated for an in-memory database, kept nowhere.
    Ephemeral,
}

/// Finds (or, for the SQLite default, creates) the chain key for the database at
/// `database_url`. Errors name the configuration key at fault and never show key material.
pub fn load(audit: &AuditConfig, database_url: &str) -> Result<(ChainKey, KeySource), String> {
    let direct = audit.chain_key.trim();
    let file = audit.chain_key_file.trim();
    if !direct.is_empty() && !file.is_empty() {
        return Err("set audit.chain_key or audit.chain_key_file, not both".into());
    }
    if !direct.is_empty() {
        let key = ChainKey::parse_hex(direct).map_err(|e| format!("audit.chain_key: {e}"))?;
        return Ok((key, KeySource::Configured));
    }
    if !file.is_empty() {
        let path = PathBuf::from(file);
        return Ok((read(&path, "audit.chain_key_file")?, KeySource::File(path)));
    }
    let Some(db) = sqlite_file(database_url) else {
        return if database_url.starts_with("sqlite:") {
            Ok((
                ChainKey::generate(&mut rand_core::OsRng),
                KeySource::Ephemeral,
            ))
        } else {
            Err(
                "audit.chain_key_file must be set with PostgreSQL: every node must use the \
                 same audit chain key, and it must not be stored in the database. Create one \
                 with `openssl rand -hex 32 > keyward-audit.key` (then `chmod 600`) and give \
                 its path to every node"
                    .into(),
            )
        };
    };
    let mut path = db.into_os_string();
    path.push(".audit-key");
    let path = PathBuf::from(path);
    match path.try_exists() {
        Ok(true) => Ok((read(&path, "the audit key file")?, KeySource::File(path))),
        Ok(false) => generate(&path),
        Err(e) => Err(format!("the audit key file {}: {e}", path.display())),
    }
}

/// The file of a `sqlite:` URL, unless the database lives in memory.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!memory).then(|| PathBuf::from(path))
}

fn read(path: &Path, what: &str) -> Result<ChainKey, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what} {shown}: {e}"))?;
    warn_if_readable_by_others(path);
    ChainKey::parse_hex(&text).map_err(|e| format!("{what} {shown}: {e}"))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the audit chain key file is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Creates the key file (never overwriting one); if another process created it first, reads
/// that one.
fn generate(path: &Path) -> Result<(ChainKey, KeySource), String> {
    let key = ChainKey::generate(&mut rand_core::OsRng);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let shown = path.display();
    let mut f = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok((
                read(path, "the audit key file")?,
                KeySource::File(path.into()),
            ))
        }
        Err(e) => return Err(format!("creating the audit key file {shown}: {e}")),
    };
    writeln!(f, "{}", key.to_hex())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing the audit key file {shown}: {e}"))?;
    tracing::info!(
        file = %shown,
        "generated the audit chain key; back it up with the database, but keep it apart from \
         the database's copies"
    );
    Ok((key, KeySource::Generated(path.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let mut b = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        let d = std::env::temp_dir().join(format!("kwkey-{}", hex::encode(b)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_sqlite_default_is_generated_once_with_mode_0600_and_read_after() {
        let d = dir();
        let url = format!("sqlite://{}/kw.db?mode=rwc", d.display());
        let (k1, s1) = load(&AuditConfig::default(), &url).unwrap();
        let file = d.join("kw.db.audit-key");
        assert_eq!(s1, KeySource::Generated(file.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, s2) = load(&AuditConfig::default(), &url).unwrap();
        assert_eq!((k1, s2), (k2, KeySource::File(file)));
        let (_, s) = load(&AuditConfig::default(), "sqlite::memory:").unwrap();
        assert_eq!(s, KeySource::Ephemeral);
    }

    #[test]
    fn configured_keys_and_refusals() {
        let d = dir();
        let hexkey = "ab".repeat(32);
        let direct = AuditConfig {
            chain_key: hexkey.clone(),
            ..AuditConfig::default()
        };
        let (k, s) = load(&direct, "postgres://x/y").unwrap();
        assert_eq!((k.to_hex(), s), (hexkey.clone(), KeySource::Configured));
        let file = d.join("audit.key");
        std::fs::write(&file, format!("{hexkey}\n")).unwrap();
        let from_file = AuditConfig {
            chain_key_file: file.display().to_string(),
            ..AuditConfig::default()
        };
        assert_eq!(
            load(&from_file, "postgres://x/y").unwrap().0.to_hex(),
            hexkey
        );
        let both = AuditConfig {
            chain_key: hexkey.clone(),
            ..from_file.clone()
        };
        assert!(load(&both, "sqlite://a.db")
            .unwrap_err()
            .contains("not both"));
        let missing = AuditConfig {
            chain_key_file: d.join("nope.key").display().to_string(),
            ..AuditConfig::default()
        };
        let e = load(&missing, "sqlite://a.db").unwrap_err();
        assert!(e.contains("audit.chain_key_file"), "{e}");
        assert!(
            !d.join("nope.key").exists(),
            "a configured file is never created"
        );
        std::fs::write(&file, "not a key, but secret-ish\n").unwrap();
        let e = load(&from_file, "sqlite://a.db").unwrap_err();
        assert!(
            e.contains("hexadecimal") && !e.contains("secret-ish"),
            "{e}"
        );
        let e = load(&AuditConfig::default(), "postgres://x/y").unwrap_err();
        assert!(
            e.contains("PostgreSQL") && e.contains("chain_key_file"),
            "{e}"
        );
        let short = AuditConfig {
            chain_key: "abcd".into(),
            ..AuditConfig::default()
        };
        assert!(load(&short, "sqlite://a.db")
            .unwrap_err()
            .contains("audit.chain_key"));
    }
}
