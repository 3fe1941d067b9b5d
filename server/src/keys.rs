//! ticketd's JWT key ring in its data dir (`jwt-keys.json`, mode 0600):
//! created on first start, rotated by `ticketd rotate-jwt-key`, and re-read
//! by a running ticketd (every second at most, on use) so a rotation needs no
//! restart. An earlier version's HS256 keys (its `jwt-keys.json`, or the
//! single-key `jwt-secret` file before it) are replaced by a fresh ES256 ring
//! on start: their tokens are refused from then on (admins sign in again,
//! once), so no symmetric key is left that could verify, or forge, a token.
//! Beside it, the reply key of inbound email (`reply-key`, mode 0600): made
//! once, never rotated (an old email's reply address must still verify).

use anyhow::Context;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ticketing::auth::keyring::INITIAL_KID;
use ticketing::auth::{KeyRing, KeyRingError, KeySet, ReplyKey, SigningKey};
use ticketing::ports::KeySource;

pub const JWT_KEYS_FILE: &str = "jwt-keys.json";
/// The single HS256 secret earlier versions kept; replaced by [`JWT_KEYS_FILE`].
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// Inbound email's reply key (see [`reply_key`]).
pub const REPLY_KEY_FILE: &str = "reply-key";

/// How stale a running ticketd's keys may get: re-reading a 300-byte file
/// once a second is nothing, and a rotation takes effect within it.
pub const KEY_FILE_MAX_AGE: Duration = Duration::from_secs(1);

/// The key file as a key source.
pub struct KeyFile {
    pub path: PathBuf,
    /// The text last read and its ring: deriving a ring's key pairs costs
    /// about a millisecond (bench part c), the file is read every second.
    last: std::sync::Mutex<Option<(String, KeyRing)>>,
}

impl KeyFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            last: Default::default(),
        }
    }
}

#[async_trait]
impl KeySource for KeyFile {
    async fn load(&self) -> anyhow::Result<KeySet> {
        // A 300-byte file, read at most once a second: no need to leave the runtime for it.
        let text =
            std::fs::read_to_string(&self.path).with_context(|| format!("cannot read {}", self.path.display()))?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((read, ring)) = last.as_ref()
            && *read == text
        {
            return Ok(KeySet::Signing(ring.clone()));
        }
        let ring =
            KeyRing::from_json(&text).with_context(|| format!("{} is not a valid key file", self.path.display()))?;
        *last = Some((text, ring.clone()));
        Ok(KeySet::Signing(ring))
    }

    fn max_age(&self) -> Duration {
        KEY_FILE_MAX_AGE
    }
}

/// The data dir's key ring: read, or generated (kid [`INITIAL_KID`]) when
/// there is none or only an earlier version's HS256 keys.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<KeyRing> {
    let path = data_dir.join(JWT_KEYS_FILE);
    let hs256 = match std::fs::read_to_string(&path) {
        Ok(text) => match KeyRing::from_json(&text) {
            Ok(ring) => return Ok(ring),
            Err(KeyRingError::Hs256) => true,
            Err(e) => return Err(e).with_context(|| format!("{} is not a valid key file", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let legacy = data_dir.join(JWT_SECRET_FILE);
    let hs256 = hs256 || legacy.exists();
    let ring = KeyRing::single(SigningKey::generate(INITIAL_KID).expect("a generated key passes the rules"));
    write_private(&path, &ring.to_json())?;
    if legacy.exists() {
        // Its key signs nothing any more, and verifies nothing.
        std::fs::remove_file(&legacy).with_context(|| format!("cannot remove {}", legacy.display()))?;
    }
    if hs256 {
        tracing::warn!(
            file = %path.display(),
            "replaced the HS256 JWT keys of an earlier version with a new ES256 key: tokens issued before are refused, admins sign in again"
        );
    } else {
        tracing::warn!(
            "no JWT secret configured: generated a key and saved it to {} (mode 0600); set TICKETING_JWT_SECRET to choose your own",
            path.display()
        );
    }
    Ok(ring)
}

/// Rotates the data dir's keys: current becomes previous, a new current
/// key, the previous one retired. Returns the new ring.
pub fn rotate(data_dir: &Path) -> anyhow::Result<KeyRing> {
    let rotated = load_or_create(data_dir)?.rotated();
    write_private(&data_dir.join(JWT_KEYS_FILE), &rotated.to_json())?;
    Ok(rotated)
}

/// The data dir's reply key: read, or generated and saved (mode 0600) on
/// first use. Replacing the file invalidates every reply address sent.
pub fn reply_key(data_dir: &Path) -> anyhow::Result<ReplyKey> {
    let path = data_dir.join(REPLY_KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = ReplyKey::generate_text();
            write_private(&path, &text)?;
            tracing::info!(file = %path.display(), "generated the reply key for inbound email (mode 0600)");
            text
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    ReplyKey::from_text(&text).with_context(|| format!("{} holds no usable reply key", path.display()))
}

/// Writes `text` to `path` atomically (a reader sees the old file or the new
/// one, never half) with mode 0600 from the start.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("a key file has a directory")?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(JWT_KEYS_FILE);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    // The rename itself survives a crash once the directory is synced.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generated_keys_are_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.current.kid, INITIAL_KID);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        assert_eq!(mode(&dir.path().join(JWT_KEYS_FILE)), 0o600);
    }

    /// An HS256 token of the earlier key, as a client still holds it.
    fn hs256_token(secret: &str, kid: Option<&str>) -> String {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        let now = ticketing::domain::Timestamp::now().millis() / 1000;
        let (sub, org) = (ticketing::domain::AdminId::new(), ticketing::domain::OrgId::new());
        let claims = serde_json::json!({"sub": sub, "org": org, "iat": now, "exp": now + 3600});
        let header = Header {
            kid: kid.map(str::to_owned),
            ..Header::new(Algorithm::HS256)
        };
        encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn verifies(ring: &KeyRing, token: &str) -> bool {
        let keys =
            ticketing::auth::JwtKeys::new(&KeySet::Signing(ring.clone()), ticketing::auth::DEFAULT_TOKEN_LIFETIME);
        keys.verify(token).is_ok()
    }

    #[test]
    fn an_old_secret_file_is_replaced_by_a_fresh_es256_ring_and_its_tokens_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "an-old-secret-of-forty-characters-0123456";
        std::fs::write(dir.path().join(JWT_SECRET_FILE), format!("{secret}\n")).unwrap();
        let ring = load_or_create(dir.path()).unwrap();
        assert_eq!(ring.current.kid, INITIAL_KID);
        assert_ne!(
            ring.current,
            SigningKey::new(INITIAL_KID, secret).unwrap(),
            "not derived from the old key"
        );
        assert!(!dir.path().join(JWT_SECRET_FILE).exists(), "the old key is gone");
        assert_eq!(load_or_create(dir.path()).unwrap(), ring);
        assert!(!verifies(&ring, &hs256_token(secret, None)));
        assert!(!verifies(&ring, &hs256_token(secret, Some("0"))));
    }

    #[test]
    fn an_hs256_key_file_is_migrated_on_start_and_its_tokens_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = "an-hs256-key-of-an-earlier-ticketd-0123456789";
        let file = dir.path().join(JWT_KEYS_FILE);
        std::fs::write(&file, format!(r#"{{"currentKid":"k1","current":"{old}"}}"#)).unwrap();
        let ring = load_or_create(dir.path()).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("ES256") && !text.contains(old),
            "rewritten in the new format"
        );
        assert_eq!(KeyRing::from_json(&text).unwrap(), ring);
        assert_eq!(mode(&file), 0o600);
        assert!(!verifies(&ring, &hs256_token(old, Some("k1"))));
        let (token, _) =
            ticketing::auth::JwtKeys::new(&KeySet::Signing(ring.clone()), ticketing::auth::DEFAULT_TOKEN_LIFETIME)
                .issue(
                    ticketing::domain::AdminId::new(),
                    ticketing::domain::OrgId::new(),
                    ticketing::domain::Timestamp::now(),
                )
                .unwrap();
        assert!(verifies(&ring, &token));
    }

    #[test]
    fn rotating_twice_retires_the_first_key_and_keeps_the_file_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = rotate(dir.path()).unwrap();
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        let third = rotate(dir.path()).unwrap();
        assert_eq!(third.previous.as_ref(), Some(&second.current));
        assert_eq!(load_or_create(dir.path()).unwrap(), third);
        assert_eq!(mode(&dir.path().join(JWT_KEYS_FILE)), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [JWT_KEYS_FILE], "no temporary file left");
    }

    #[test]
    fn the_reply_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = reply_key(dir.path()).unwrap();
        assert_eq!(mode(&dir.path().join(REPLY_KEY_FILE)), 0o600);
        assert_eq!(reply_key(dir.path()).unwrap(), first, "never rotated");
        std::fs::write(dir.path().join(REPLY_KEY_FILE), "short").unwrap();
        let err = format!("{:#}", reply_key(dir.path()).unwrap_err());
        assert!(err.contains("no usable reply key"), "{err}");
    }

    #[test]
    fn a_damaged_key_file_is_an_error_that_quotes_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "s".repeat(40);
        std::fs::write(dir.path().join(JWT_KEYS_FILE), format!(r#"{{"current":"{secret}"}}"#)).unwrap();
        let err = format!("{:#}", load_or_create(dir.path()).unwrap_err());
        assert!(err.contains("not a valid key file") && !err.contains(&secret), "{err}");
    }
}
