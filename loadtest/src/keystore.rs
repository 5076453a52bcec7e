//! The API keys `--setup` minted, kept in a small JSON file so later runs reuse them instead of
//! minting a key per run (the gateway has no endpoint to list keys, so a key not written down
//! cannot be found again). Entries are keyed by gateway URL and store; the file holds secrets,
//! so it is written readable by its owner only, replaced whole by a rename.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A key file at a path.
#[derive(Debug, Clone)]
pub(crate) struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    pub(crate) fn new(path: PathBuf) -> KeyFile {
        KeyFile { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The entry name for a store on a gateway.
    pub(crate) fn entry(base: &url::Url, store: &str) -> String {
        format!("{} {store}", base.as_str().trim_end_matches('/'))
    }

    /// The key stored under `entry`, if any.
    pub(crate) fn get(&self, entry: &str) -> anyhow::Result<Option<String>> {
        Ok(self.read()?.remove(entry))
    }

    /// Stores `key` under `entry`, keeping the other entries.
    pub(crate) fn put(&self, entry: &str, key: &str) -> anyhow::Result<()> {
        let mut keys = self.read()?;
        keys.insert(entry.to_owned(), key.to_owned());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        write_private(&temporary, &serde_json::to_vec_pretty(&keys)?)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))
    }

    fn read(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(BTreeMap::new())
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", self.path.display()))
            }
        };
        // Overwriting a file that does not parse would drop whatever else it held.
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a loadtest key file; remove it or give another --state",
                self.path.display()
            )
        })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_per_gateway_and_store_and_survive_other_writes() {
        let dir = tempfile::tempdir().expect("dir");
        let file = KeyFile::new(dir.path().join("nested/keys.json"));
        let gateway = url::Url::parse("http://127.0.0.1:8080/").expect("url");
        let other = url::Url::parse("http://127.0.0.1:9090").expect("url");
        let (a, b) = (
            KeyFile::entry(&gateway, "store-a"),
            KeyFile::entry(&other, "store-a"),
        );
        assert_eq!(a, "http://127.0.0.1:8080 store-a");
        assert_eq!(file.get(&a).expect("read"), None, "no file yet");
        file.put(&a, "k1:s1").expect("write");
        file.put(&b, "k2:s2").expect("write");
        assert_eq!(file.get(&a).expect("read").as_deref(), Some("k1:s1"));
        assert_eq!(file.get(&b).expect("read").as_deref(), Some("k2:s2"));
        file.put(&a, "k3:s3").expect("replace");
        assert_eq!(file.get(&a).expect("read").as_deref(), Some("k3:s3"));
        assert_eq!(file.get(&b).expect("read").as_deref(), Some("k2:s2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "secrets are the owner's only");
        }
    }

    #[test]
    fn a_file_that_is_not_a_key_file_is_an_error_not_overwritten() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys.json");
        std::fs::write(&path, b"my notes").expect("write");
        let file = KeyFile::new(path.clone());
        let error = file.put("e", "k:s").expect_err("refused");
        assert!(
            format!("{error:#}").contains("not a loadtest key file"),
            "{error:#}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"my notes");
    }
}
