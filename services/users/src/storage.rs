//! Identity storage: one trait, implemented once over either database (`platform::db`). All SQL
//! lives here; the two dialects agree on every statement this service needs.
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::db::{is_unique_violation, query, Database, Query};
use platform::service::Migrations;

/// The service's schema per dialect.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
    events: false,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken; names the field.
    #[error("{0} is already taken")]
    Taken(&'static str),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    /// Space-separated.
    pub roles: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRow {
    pub fn roles(&self) -> Vec<String> {
        self.roles.split_whitespace().map(str::to_owned).collect()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    /// Space-separated.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub private_key: String,
    pub encrypted: bool,
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn insert_user(&self, user: &UserRow) -> Result<(), StoreError>;
    /// The user whose username or email is `login` (already lower-cased).
    async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    /// Users by id, after `after`, whose username or email contains `q`.
    async fn list_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<UserRow>, StoreError>;
    /// Changes the email and/or the password hash in one transaction; a new password also
    /// revokes every refresh family of the user. Nothing changes when any part fails.
    async fn update_account(
        &self,
        id: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Sets roles and the disabled flag in one transaction; a change of roles or disabling also
    /// revokes every refresh family, so no login outlives the access it was granted with.
    async fn set_access(&self, id: &str, roles: &str, disabled: bool) -> Result<(), StoreError>;

    async fn insert_refresh(&self, token: &RefreshRow) -> Result<(), StoreError>;
    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError>;
    /// Marks `old` used and stores `new` in one transaction; false when `old` was already used or
    /// revoked (a replay), in which case nothing is stored.
    async fn rotate_refresh(&self, old: &str, new: &RefreshRow) -> Result<bool, StoreError>;
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError>;

    async fn insert_client(&self, client: &ClientRow) -> Result<(), StoreError>;
    /// Creates or replaces a client's name, secret and scopes (the services' own clients at start).
    async fn upsert_client(&self, client: &ClientRow) -> Result<(), StoreError>;
    async fn client(&self, id: &str) -> Result<Option<ClientRow>, StoreError>;
    async fn clients(&self) -> Result<Vec<ClientRow>, StoreError>;
    /// False when there was no such live client.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;

    async fn keys(&self) -> Result<Vec<KeyRow>, StoreError>;
    async fn insert_key(&self, key: &KeyRow) -> Result<(), StoreError>;
    /// Replaces a plaintext private key by its encrypted form; false when it was not plaintext.
    async fn encrypt_key(&self, kid: &str, private_key: &str) -> Result<bool, StoreError>;

    /// How many failures of `kind` `subject` has after `since` (Unix ms), and the oldest one's time.
    async fn login_failures(
        &self,
        kind: &str,
        subject: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>), StoreError>;
    /// Records a failure at `at` and deletes every failure of `kind` at or before `expired`.
    async fn record_login_failure(
        &self,
        kind: &str,
        subject: &str,
        at: i64,
        expired: i64,
    ) -> Result<(), StoreError>;
    async fn clear_login_failures(&self, kind: &str, subject: &str) -> Result<(), StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

const USER_COLUMNS: &str =
    "id, username, email, password_hash, roles, disabled, created_at, updated_at";
const INSERT_USER: &str = "INSERT INTO users (id, username, email, password_hash, roles, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const TAKEN: &str = "SELECT username, email FROM users WHERE username = $1 OR email = $2";
const SET_EMAIL: &str = "UPDATE users SET email = $2, updated_at = $3 WHERE id = $1";
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
const SET_ACCESS: &str =
    "UPDATE users SET roles = $2, disabled = $3, updated_at = $4 WHERE id = $1";
const REVOKE_USER: &str =
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
const REFRESH_COLUMNS: &str =
    "id, family_id, user_id, token_hash, parent_id, created_at, expires_at, used_at, revoked_at";
const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, parent_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const USE_REFRESH: &str = "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL";
const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
const CLIENT_COLUMNS: &str = "id, name, secret_hash, scopes, created_at, deleted_at";
const INSERT_CLIENT: &str =
    "INSERT INTO clients (id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)";
const UPSERT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, secret_hash = excluded.secret_hash, scopes = excluded.scopes, deleted_at = NULL";
const DELETE_CLIENT: &str =
    "UPDATE clients SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
const SELECT_KEYS: &str = "SELECT kid, private_key, encrypted, public_key, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at, kid";
const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, private_key, encrypted, public_key, created_at) VALUES ($1, $2, $3, $4, $5)";
const ENCRYPT_KEY: &str =
    "UPDATE signing_keys SET private_key = $2, encrypted = TRUE WHERE kid = $1 AND encrypted = FALSE";
const USER_ROLES: &str = "SELECT roles FROM users WHERE id = $1";
const COUNT_FAILURES: &str = "SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE kind = $1 AND subject = $2 AND failed_at > $3";
const EXPIRE_FAILURES: &str = "DELETE FROM login_failures WHERE kind = $1 AND failed_at <= $2";
const INSERT_FAILURE: &str =
    "INSERT INTO login_failures (kind, subject, failed_at) VALUES ($1, $2, $3)";
const CLEAR_FAILURES: &str = "DELETE FROM login_failures WHERE kind = $1 AND subject = $2";

/// Test only: `count` failures of `kind` at `at`, of the distinct subjects `<prefix>0`,
/// `<prefix>1`, ..., in one statement. The throttle's spray test needs more distinct keys than the
/// old in-memory throttle kept (100,000), more than one insert per failure could write in its time.
#[cfg(test)]
pub async fn spray_login_failures(
    db: &Database,
    kind: &str,
    prefix: &str,
    count: i64,
    at: i64,
) -> Result<u64, sqlx::Error> {
    // The only statement that differs per dialect: a series of numbers.
    let sql = match db {
        Database::Sqlite(..) => {
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $4) \
             INSERT INTO login_failures (kind, subject, failed_at) SELECT $1, $2 || i, $3 FROM n"
        }
        Database::Postgres(_) => {
            "INSERT INTO login_failures (kind, subject, failed_at) \
             SELECT $1, $2 || i::text, $3 FROM generate_series(0, $4 - 1) AS i"
        }
    };
    query(sql)
        .bind(kind.to_owned())
        .bind(prefix.to_owned())
        .bind(at)
        .bind(count)
        .execute(db)
        .await
}

/// Which of a user's unique fields a violation is about, for a registration that lost a race
/// (PostgreSQL names the constraint `users_email_key`; SQLite says `users.email`).
fn taken_field(error: &sqlx::Error) -> &'static str {
    let names_email = match error {
        sqlx::Error::Database(db) => {
            db.constraint().is_some_and(|c| c.contains("email")) || db.message().contains("email")
        }
        _ => false,
    };
    if names_email {
        "email"
    } else {
        "username"
    }
}

/// `%` and `_` in a search are literal characters, not wildcards.
fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

/// The insert of a refresh token, bound; `.execute(...)` runs it.
fn refresh_insert(t: &RefreshRow) -> Query {
    query(INSERT_REFRESH)
        .bind(&t.id)
        .bind(&t.family_id)
        .bind(&t.user_id)
        .bind(&t.token_hash)
        .bind(&t.parent_id)
        .bind(t.created_at)
        .bind(t.expires_at)
}

/// The one store, over either database.
pub struct DbStore {
    db: Database,
}

/// The store over a connected, migrated database.
pub fn open(db: Database) -> Arc<dyn Store> {
    Arc::new(DbStore { db })
}

#[async_trait]
impl Store for DbStore {
    async fn insert_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let taken: Option<(String, String)> = query(TAKEN)
            .bind(&user.username)
            .bind(&user.email)
            .fetch_optional(&mut tx)
            .await?;
        if let Some((username, _)) = taken {
            return Err(StoreError::Taken(if username == user.username {
                "username"
            } else {
                "email"
            }));
        }
        query(INSERT_USER)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(&user.roles)
            .bind(user.disabled)
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&mut tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Taken(taken_field(&e))
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1 OR email = $1");
        Ok(query(sql).bind(login).fetch_optional(&self.db).await?)
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(query(sql).bind(id).fetch_optional(&self.db).await?)
    }

    async fn list_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR username LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\') AND id > $2 ORDER BY id LIMIT $3"
                );
        Ok(query(sql)
            .bind(q.map(like_pattern))
            .bind(after.unwrap_or(""))
            .bind(fetch)
            .fetch_all(&self.db)
            .await?)
    }

    async fn update_account(
        &self,
        id: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let now = Utc::now();
        if let Some(email) = email {
            let done = query(SET_EMAIL)
                .bind(id)
                .bind(email)
                .bind(now)
                .execute(&mut tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Taken("email")
                    } else {
                        e.into()
                    }
                })?;
            if done == 0 {
                return Err(StoreError::NotFound);
            }
        }
        if let Some(hash) = password_hash {
            let done = query(SET_PASSWORD)
                .bind(id)
                .bind(hash)
                .bind(now)
                .execute(&mut tx)
                .await?;
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            query(REVOKE_USER)
                .bind(id)
                .bind(now)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_access(&self, id: &str, roles: &str, disabled: bool) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let (before,): (String,) = query(USER_ROLES)
            .bind(id)
            .fetch_optional(&mut tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let done = query(SET_ACCESS)
            .bind(id)
            .bind(roles)
            .bind(disabled)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled || before != roles {
            query(REVOKE_USER)
                .bind(id)
                .bind(Utc::now())
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_refresh(&self, t: &RefreshRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        refresh_insert(t).execute(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        let sql = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        Ok(query(sql).bind(hash).fetch_optional(&self.db).await?)
    }

    async fn rotate_refresh(&self, old: &str, new: &RefreshRow) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let used = query(USE_REFRESH)
            .bind(old)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        if used == 0 {
            return Ok(false);
        }
        refresh_insert(new).execute(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(REVOKE_FAMILY)
            .bind(family)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        self.write_client(INSERT_CLIENT, c).await
    }

    async fn upsert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        self.write_client(UPSERT_CLIENT, c).await
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRow>, StoreError> {
        let sql =
            format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1 AND deleted_at IS NULL");
        Ok(query(sql).bind(id).fetch_optional(&self.db).await?)
    }

    async fn clients(&self) -> Result<Vec<ClientRow>, StoreError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE deleted_at IS NULL ORDER BY created_at, id"
        );
        Ok(query(sql).fetch_all(&self.db).await?)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let done = query(DELETE_CLIENT)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done == 1)
    }

    async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        Ok(query(SELECT_KEYS).fetch_all(&self.db).await?)
    }

    async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(INSERT_KEY)
            .bind(&k.kid)
            .bind(&k.private_key)
            .bind(k.encrypted)
            .bind(&k.public_key)
            .bind(k.created_at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn encrypt_key(&self, kid: &str, private_key: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let done = query(ENCRYPT_KEY)
            .bind(kid)
            .bind(private_key)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done == 1)
    }

    async fn login_failures(
        &self,
        kind: &str,
        subject: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        Ok(query(COUNT_FAILURES)
            .bind(kind)
            .bind(subject)
            .bind(since)
            .fetch_one(&self.db)
            .await?)
    }

    async fn record_login_failure(
        &self,
        kind: &str,
        subject: &str,
        at: i64,
        expired: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(EXPIRE_FAILURES)
            .bind(kind)
            .bind(expired)
            .execute(&mut tx)
            .await?;
        query(INSERT_FAILURE)
            .bind(kind)
            .bind(subject)
            .bind(at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clear_login_failures(&self, kind: &str, subject: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(CLEAR_FAILURES)
            .bind(kind)
            .bind(subject)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl DbStore {
    async fn write_client(&self, sql: &'static str, c: &ClientRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(sql)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(&c.scopes)
            .bind(c.created_at)
            .execute(&mut tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Taken("client id")
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        Ok(())
    }
}
