//! The SQLite database: one writer connection (SQLite allows one writer at a
//! time anyway), a pool of readers (WAL lets them run beside it), all driven
//! from `spawn_blocking`.

use crate::error::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2_signin.sql"),
    include_str!("schema_3_admin_email_per_org.sql"),
    include_str!("schema_4_signin_by_client.sql"),
    include_str!("schema_5_mail_outbox.sql"),
    include_str!("schema_6_due_auto_closes.sql"),
    include_str!("schema_7_messages.sql"),
    include_str!("schema_8_api_keys.sql"),
    include_str!("schema_9_idempotency.sql"),
    include_str!("schema_10_history.sql"),
    include_str!("schema_11_inbound_email.sql"),
    include_str!("schema_12_webhooks.sql"),
    include_str!("schema_13_admin_roles.sql"),
    include_str!("schema_14_rate_limits.sql"),
];
const MAX_IDLE_READERS: usize = 16;

pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(e.into()),
            _ => StoreError::Internal(e.into()),
        }
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // WAL: readers never block the writer. synchronous=FULL: a commit is on
    // disk before we acknowledge it, so it survives a crash of the process or
    // of the machine.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending
    /// migrations. The files are made owner-only first: see [`make_private`].
    pub fn open(path: &Path) -> anyhow::Result<Arc<Self>> {
        make_private(path)?;
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(self);
        let read = move || {
            let idle = db.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(c) => c,
                None => open_connection(&db.path)?,
            };
            let result = f(&conn);
            let mut pool = db.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
            result
        };
        // On the blocking pool, not in place: measured, block_in_place stalled
        // the runtime's workers (p99 x4) for no throughput gain.
        tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| StoreError::Internal(e.into()))?
    }

    /// Runs `f` in an immediate write transaction, committed if `f` succeeds.
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }
}

/// The database holds password and secret hashes and every ticket, so it is
/// owner-only (0600) whatever the umask. SQLite creates `-wal` and `-shm` with
/// the main file's mode (it copies it, then `fchmod`s past the umask), so
/// creating the main file 0600 before SQLite first opens it covers all three;
/// files left with wider modes by an older version are narrowed here too.
fn make_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use anyhow::Context;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        for file in sqlite_files(path) {
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o777 != 0o600 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("cannot make {} private (mode 0600)", file.display()))?;
                    tracing::warn!(file = ?file, was = format!("{:o}", m.permissions().mode() & 0o777), "database file was readable by others: now mode 0600");
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
            }
        }
    }
    Ok(())
}

/// The database file and the two SQLite keeps beside it in WAL mode.
fn sqlite_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

/// Applies pending migrations, each in its own transaction. Foreign keys are
/// off meanwhile, as SQLite prescribes for rebuilding a referenced table
/// (migration 3 rebuilds `admins`); each migration is checked against them
/// before it commits.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if applied >= MIGRATIONS.len() {
        return Ok(());
    }
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = apply_migrations(conn, applied);
    conn.pragma_update(None, "foreign_keys", true)?;
    result
}

fn apply_migrations(conn: &mut Connection, applied: usize) -> anyhow::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if broken > 0 {
            anyhow::bail!("migration {} would leave {broken} broken references", i + 1);
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(migration = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Checked while the database is open (so `-wal` and `-shm` exist) and
    /// after a write, whatever the umask that created them.
    fn assert_private(db: &Db) {
        for file in sqlite_files(db.path()) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }

    #[tokio::test]
    async fn a_new_database_and_its_wal_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.write(|tx| Ok(tx.execute_batch("CREATE TABLE probe (x)")?))
            .await
            .unwrap();
        assert_private(&db);
    }

    #[tokio::test]
    async fn files_left_readable_by_others_are_made_private_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path).unwrap());
        for file in sqlite_files(&path) {
            if !file.exists() {
                std::fs::write(&file, b"").unwrap();
            }
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let db = Db::open(&path).unwrap();
        db.write(|tx| Ok(tx.execute_batch("CREATE TABLE probe (x)")?))
            .await
            .unwrap();
        assert_private(&db);
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// A database made by the first two migrations, with an org, an admin and
    /// a ticket assigned to it, upgrades with nothing lost: the admin still
    /// signs in by its email, its ticket still points at it, and emails are now
    /// unique per org only.
    #[test]
    fn upgrading_keeps_admins_and_their_tickets_and_scopes_emails_to_orgs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = open_connection(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..2] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 2).unwrap();
            tx.execute_batch(
                "INSERT INTO orgs VALUES ('o1', 'One', 'one.example', 's1', 1);
                 INSERT INTO orgs VALUES ('o2', 'Two', 'two.example', 's2', 1);
                 INSERT INTO admins (id, org_id, first_name, last_name, email, password_hash, open_tickets, created_at)
                     VALUES ('a1', 'o1', 'A', 'B', 'boss@one.example', 'hash', 1, 1);
                 INSERT INTO tickets (id, org_id, title, description, added_by, admin_id, status, created_at,
                                      updated_at, version)
                     VALUES ('t1', 'o1', 't', 'd', 'c@x.io', 'a1', 'OPEN', 1, 1, 1);
                 INSERT INTO signin_failures VALUES ('boss@one.example', 1, 3);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let db = Db::open(&path).unwrap();
        let conn = db.writer.lock().unwrap();
        let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let fk: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(fk, "foreign keys are back on after migrating");
        let (email, open): (String, i64) = conn
            .query_row("SELECT email, open_tickets FROM admins WHERE id = 'a1'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((email.as_str(), open), ("boss@one.example", 1));
        let assignee: String = conn
            .query_row(
                "SELECT admins.id FROM tickets JOIN admins ON admins.id = tickets.admin_id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(assignee, "a1");

        let insert = |id: &str, org: &str| {
            conn.execute(
                "INSERT INTO admins (id, org_id, first_name, last_name, email, password_hash, created_at)
                 VALUES (?1, ?2, 'A', 'B', 'boss@one.example', 'hash', 1)",
                [id, org],
            )
        };
        insert("a2", "o2").expect("the same email in another org");
        let again = insert("a3", "o1").unwrap_err();
        assert_eq!(again.sqlite_error_code(), Some(ErrorCode::ConstraintViolation));
        // References are enforced again: an admin of no org is refused.
        assert!(insert("a4", "nope").is_err());
    }

    /// id, state, message id, reason, at.
    type DeliveryRow = (String, String, Option<String>, Option<String>, Option<i64>);

    /// Responses from before migration 5 keep their deliveries; one left
    /// `pending` by the old code (its mail was never kept) becomes `failed`,
    /// saying so, and no old row is due for sending.
    #[test]
    fn upgrading_keeps_deliveries_and_fails_mail_left_pending_without_its_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = open_connection(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..4] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 4).unwrap();
            tx.execute_batch(
                "INSERT INTO orgs VALUES ('o1', 'One', 'one.example', 's1', 1);
                 INSERT INTO admins (id, org_id, first_name, last_name, email, password_hash, created_at)
                     VALUES ('a1', 'o1', 'A', 'B', 'boss@one.example', 'hash', 1);
                 INSERT INTO tickets (id, org_id, title, description, added_by, admin_id, status, created_at,
                                      updated_at, version)
                     VALUES ('t1', 'o1', 't', 'd', 'c@x.io', 'a1', 'RESPONDED', 1, 1, 1);
                 INSERT INTO responses VALUES ('r1', 't1', 'a1', 'm', 10, 'sent', 'msg-1', 11);
                 INSERT INTO responses VALUES ('r2', 't1', 'a1', 'm', 20, 'failed', 'unreachable', 21);
                 INSERT INTO responses VALUES ('r3', 't1', 'a1', 'm', 30, 'pending', NULL, NULL);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let db = Db::open(&path).unwrap();
        let conn = db.writer.lock().unwrap();
        let rows: Vec<DeliveryRow> = conn
            .prepare("SELECT id, delivery_state, delivery_message_id, delivery_reason, delivery_at FROM responses ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let row = |id: &str, state: &str, mid: Option<&str>, reason: Option<&str>, at: i64| {
            (
                id.to_owned(),
                state.to_owned(),
                mid.map(str::to_owned),
                reason.map(str::to_owned),
                Some(at),
            )
        };
        assert_eq!(
            rows,
            vec![
                row("r1", "sent", Some("msg-1"), None, 11),
                row("r2", "failed", None, Some("unreachable"), 21),
                row("r3", "failed", None, Some("interrupted before it was sent"), 30),
            ]
        );
        let due: i64 = conn
            .query_row(
                "SELECT count(*) FROM responses WHERE delivery_state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(due, 0);
    }
}
