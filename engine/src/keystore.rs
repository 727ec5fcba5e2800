//! Key files in the data directory (PROTOCOL.md sections 11.5 and 10): the node identity and the
//! capability root key. Both are written with mode 0600, atomically, and a key file that group or
//! others may read or write is refused at load, naming the file.
//!
//! Formats (ASCII text, `\n` line ends, hex in lowercase; exactly these lines):
//!
//! `identity.key`, the seeds [`ronode_proto::identity::Identity`] is rebuilt from:
//! ```text
//! ron-identity-v1
//! ed25519-seed=<64 hex: the 32-byte RFC 8032 secret key>
//! ml-dsa-87-seed=<64 hex: the 32-byte FIPS 204 key-generation seed>
//! ```
//!
//! `cap_root.key`, the capability root key and the key id tokens name it by:
//! ```text
//! ron-cap-root-v1
//! kid=<16 hex: 8 bytes>
//! key=<64 hex: 32 bytes>
//! ```
//! The loaders also accept `\r\n` line ends and a missing final newline (a file edited by hand);
//! nothing else.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{OsRng, RngCore};
use ronode_proto::identity::IdentitySeeds;

/// File name of the node identity in the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// File name of the capability root key in the data directory.
pub const CAP_ROOT_FILE: &str = "cap_root.key";

const IDENTITY_HEADER: &str = "ron-identity-v1";
const CAP_ROOT_HEADER: &str = "ron-cap-root-v1";
/// Far more than either format needs; a larger file is not one of ours.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Why a key file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("refusing key file {}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "refusing key file {}: mode {mode:04o} lets group or others {} it; chmod 600 it",
        path.display(),
        access(*mode)
    )]
    Permissive { path: PathBuf, mode: u32 },
    #[error("key file {} is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
}

/// What the group/other bits of `mode` allow, in words.
fn access(mode: u32) -> &'static str {
    match (mode & 0o044 != 0, mode & 0o022 != 0) {
        (true, true) => "read and write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "execute",
    }
}

/// Fresh identity seeds from the operating system's random source.
pub fn generate_seeds() -> IdentitySeeds {
    let mut seeds = IdentitySeeds {
        ed25519: [0; 32],
        ml_dsa: [0; 32],
    };
    OsRng.fill_bytes(&mut seeds.ed25519);
    OsRng.fill_bytes(&mut seeds.ml_dsa);
    seeds
}

/// A fresh capability root key and its key id, from the operating system's random source.
pub fn generate_cap_root() -> ([u8; 8], [u8; 32]) {
    let mut kid = [0; 8];
    let mut key = [0; 32];
    OsRng.fill_bytes(&mut kid);
    OsRng.fill_bytes(&mut key);
    (kid, key)
}

/// Writes `dir/identity.key` (mode 0600, atomically; an existing file is replaced).
pub fn save_identity(dir: &Path, seeds: &IdentitySeeds) -> io::Result<()> {
    let mut text = format!(
        "{IDENTITY_HEADER}\ned25519-seed={}\nml-dsa-87-seed={}\n",
        hex::encode(seeds.ed25519),
        hex::encode(seeds.ml_dsa)
    )
    .into_bytes();
    let result = write_key_file(dir, IDENTITY_FILE, &text);
    wipe(&mut text);
    result
}

/// Reads an identity file written by [`save_identity`], refusing one that group or others may
/// access.
pub fn load_identity(path: &Path) -> Result<IdentitySeeds, KeyFileError> {
    let mut seeds = IdentitySeeds {
        ed25519: [0; 32],
        ml_dsa: [0; 32],
    };
    read_key_file(path, |lines| {
        expect_header(lines[0], IDENTITY_HEADER)?;
        if lines.len() != 3 {
            return Err(format!("expected 3 lines, found {}", lines.len()));
        }
        hex_field(lines[1], "ed25519-seed", &mut seeds.ed25519)?;
        hex_field(lines[2], "ml-dsa-87-seed", &mut seeds.ml_dsa)
    })?;
    Ok(seeds)
}

/// Writes `dir/cap_root.key` (mode 0600, atomically; an existing file is replaced).
pub fn save_cap_root(dir: &Path, kid: &[u8; 8], key: &[u8; 32]) -> io::Result<()> {
    let mut text = format!(
        "{CAP_ROOT_HEADER}\nkid={}\nkey={}\n",
        hex::encode(kid),
        hex::encode(key)
    )
    .into_bytes();
    let result = write_key_file(dir, CAP_ROOT_FILE, &text);
    wipe(&mut text);
    result
}

/// Reads a capability root key file written by [`save_cap_root`] (also what `--cap-key FILE`
/// names), refusing one that group or others may access. Returns `(kid, key)`.
pub fn load_cap_root(path: &Path) -> Result<([u8; 8], [u8; 32]), KeyFileError> {
    let mut kid = [0; 8];
    let mut key = [0; 32];
    read_key_file(path, |lines| {
        expect_header(lines[0], CAP_ROOT_HEADER)?;
        if lines.len() != 3 {
            return Err(format!("expected 3 lines, found {}", lines.len()));
        }
        hex_field(lines[1], "kid", &mut kid)?;
        hex_field(lines[2], "key", &mut key)
    })?;
    Ok((kid, key))
}

/// Overwrites a buffer that held secret text before it is freed.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&buf);
}

fn expect_header(line: &str, header: &str) -> Result<(), String> {
    if line == header {
        Ok(())
    } else {
        Err(format!("first line must be {header:?}"))
    }
}

/// Parses `name=<hex>` into `out` (exactly `2 * out.len()` hex digits).
fn hex_field(line: &str, name: &str, out: &mut [u8]) -> Result<(), String> {
    let value = line
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| format!("expected a line \"{name}=<hex>\""))?;
    hex::decode_to_slice(value, out)
        .map_err(|_| format!("{name} must be {} hex digits", 2 * out.len()))
}

/// Opens `path`, checks it is a regular file that group and others cannot access (on the open
/// descriptor, so the check and the read see the same file), reads it and hands its lines to
/// `parse`. The text is wiped afterwards.
fn read_key_file(
    path: &Path,
    parse: impl FnOnce(&[&str]) -> Result<(), String>,
) -> Result<(), KeyFileError> {
    let io_err = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let corrupt = |detail: String| KeyFileError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissive {
            path: path.to_owned(),
            mode,
        });
    }
    let mut buf = Vec::with_capacity(256);
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    let result = if buf.len() as u64 > MAX_KEY_FILE_BYTES {
        Err(format!("larger than {MAX_KEY_FILE_BYTES} bytes"))
    } else {
        match std::str::from_utf8(&buf) {
            Err(_) => Err("not ASCII text".to_owned()),
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    Err("empty file".to_owned())
                } else {
                    parse(&lines)
                }
            }
        }
    };
    wipe(&mut buf);
    result.map_err(corrupt)
}

/// Distinguishes temporary files of concurrent saves in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `dir/name` atomically: a temporary file created with mode 0600, filled, fsynced and
/// renamed over `name`, then the directory fsynced so the rename survives a crash. Errors name
/// the file.
fn write_key_file(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask only clears bits, but make the mode exact whatever it is.
        file.set_permissions(Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io::Error::new(
            e.kind(),
            format!("cannot write key file {}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ronode-keystore-{}-{n}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    fn write_raw(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        chmod(path, 0o600);
    }

    #[test]
    fn identity_round_trip() {
        let dir = TempDir::new("identity");
        let seeds = generate_seeds();
        assert_ne!(seeds, generate_seeds());
        save_identity(&dir.0, &seeds).unwrap();
        let path = dir.0.join(IDENTITY_FILE);
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(load_identity(&path).unwrap(), seeds);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "ron-identity-v1\ned25519-seed={}\nml-dsa-87-seed={}\n",
                hex::encode(seeds.ed25519),
                hex::encode(seeds.ml_dsa)
            )
        );

        // Saving again replaces the file and leaves no temporary file behind.
        let other = generate_seeds();
        save_identity(&dir.0, &other).unwrap();
        assert_eq!(load_identity(&path).unwrap(), other);
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [IDENTITY_FILE]);

        // Hand-edited line ends are fine; 0400 is fine.
        write_raw(&path, &text.replace('\n', "\r\n"));
        assert_eq!(load_identity(&path).unwrap(), seeds);
        write_raw(&path, text.trim_end());
        chmod(&path, 0o400);
        assert_eq!(load_identity(&path).unwrap(), seeds);
    }

    #[test]
    fn cap_root_round_trip() {
        let dir = TempDir::new("cap");
        let (kid, key) = generate_cap_root();
        save_cap_root(&dir.0, &kid, &key).unwrap();
        let path = dir.0.join(CAP_ROOT_FILE);
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(load_cap_root(&path).unwrap(), (kid, key));
        assert!(fs::read_to_string(&path)
            .unwrap()
            .starts_with("ron-cap-root-v1\nkid="));
        // An identity file is not a capability key file, and the other way round.
        save_identity(&dir.0, &generate_seeds()).unwrap();
        let err = load_cap_root(&dir.0.join(IDENTITY_FILE)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is corrupt: first line must be \"ron-cap-root-v1\""),
            "{err}"
        );
        assert!(matches!(
            load_identity(&path),
            Err(KeyFileError::Corrupt { .. })
        ));
    }

    #[test]
    fn permissive_modes_refused() {
        let dir = TempDir::new("modes");
        save_identity(&dir.0, &generate_seeds()).unwrap();
        let path = dir.0.join(IDENTITY_FILE);
        chmod(&path, 0o644);
        let err = load_identity(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Permissive { mode: 0o644, .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "refusing key file {}: mode 0644 lets group or others read it; chmod 600 it",
                path.display()
            )
        );
        for (mode, words) in [
            (0o640, "read"),
            (0o604, "read"),
            (0o620, "write"),
            (0o666, "read and write"),
            (0o610, "execute"),
        ] {
            chmod(&path, mode);
            let err = load_identity(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("mode {mode:04o} lets group or others {words} it")),
                "{err}"
            );
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        save_cap_root(&dir.0, &[1; 8], &[2; 32]).unwrap();
        let cap = dir.0.join(CAP_ROOT_FILE);
        chmod(&cap, 0o604);
        assert!(matches!(
            load_cap_root(&cap),
            Err(KeyFileError::Permissive { mode: 0o604, .. })
        ));
    }

    #[test]
    fn corrupt_and_missing_files() {
        let dir = TempDir::new("corrupt");
        let path = dir.0.join(IDENTITY_FILE);
        let good_ed = "ab".repeat(32);
        let cases = [
            ("", "empty file".to_owned()),
            (
                "ron-identity-v2\n",
                "first line must be \"ron-identity-v1\"".to_owned(),
            ),
            ("ron-identity-v1\n", "expected 3 lines, found 1".to_owned()),
            (
                &*format!(
                    "ron-identity-v1\ned25519-seed={good_ed}\nml-dsa-87-seed={}\n",
                    &good_ed[..63]
                ),
                "ml-dsa-87-seed must be 64 hex digits".to_owned(),
            ),
            (
                &*format!(
                    "ron-identity-v1\ned25519-seed={good_ed}\nml-dsa-87-seed={}zz\n",
                    &good_ed[..62]
                ),
                "ml-dsa-87-seed must be 64 hex digits".to_owned(),
            ),
            (
                &*format!("ron-identity-v1\ned25519={good_ed}\nml-dsa-87-seed={good_ed}\n"),
                "expected a line \"ed25519-seed=<hex>\"".to_owned(),
            ),
            (
                &*format!(
                    "ron-identity-v1\ned25519-seed={good_ed}\nml-dsa-87-seed={good_ed}\nextra\n"
                ),
                "expected 3 lines, found 4".to_owned(),
            ),
        ];
        for (text, detail) in cases {
            write_raw(&path, text);
            let err = load_identity(&path).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("key file {} is corrupt: {detail}", path.display()),
                "{text:?}"
            );
        }
        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(load_identity(&path)
            .unwrap_err()
            .to_string()
            .ends_with("not ASCII text"));
        fs::write(&path, vec![b'a'; 5000]).unwrap();
        assert!(load_identity(&path)
            .unwrap_err()
            .to_string()
            .ends_with("larger than 1024 bytes"));

        let missing = dir.0.join("nope.key");
        let err = load_identity(&missing).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(err
            .to_string()
            .starts_with(&format!("cannot read key file {}: ", missing.display())));
        assert!(matches!(
            load_identity(&dir.0),
            Err(KeyFileError::NotAFile { .. })
        ));

        let err = save_identity(&dir.0.join("no-such-dir"), &generate_seeds()).unwrap_err();
        assert!(
            err.to_string().contains("no-such-dir/identity.key"),
            "{err}"
        );
    }
}
