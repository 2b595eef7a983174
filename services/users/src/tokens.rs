//! Issuing tokens: access tokens (EdDSA JWTs) and rotating refresh tokens.
use chrono::{Duration, Utc};
use platform::auth::Claims;
use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::{random_token, sha256};
use crate::error::ApiError;
use crate::storage::{RefreshRow, UserRow};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
}

impl AppState {
    pub fn access_token(
        &self,
        subject: &str,
        roles: Vec<String>,
        scope: String,
    ) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.audience.clone(),
            exp: now + self.settings.access_token_seconds,
            iat: now,
            nbf: None,
            jti: uuid::Uuid::now_v7().to_string(),
            roles,
            scope,
        };
        Ok(self.keys.sign(&claims)?)
    }

    /// A new access token and a refresh token that starts a family (`parent` is `None`) or
    /// continues one (rotation), inheriting its absolute expiry.
    pub async fn token_pair(
        &self,
        user: &UserRow,
        parent: Option<&RefreshRow>,
    ) -> Result<TokenPair, ApiError> {
        let refresh = random_token();
        let now = Utc::now();
        let row = RefreshRow {
            id: uuid::Uuid::now_v7().to_string(),
            family_id: parent
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), |p| p.family_id.clone()),
            user_id: user.id.clone(),
            token_hash: sha256(&refresh),
            parent_id: parent.map(|p| p.id.clone()),
            created_at: now,
            expires_at: parent.map_or(
                now + Duration::days(self.settings.refresh_token_days),
                |p| p.expires_at,
            ),
            used_at: None,
            revoked_at: None,
        };
        match parent {
            None => self.store.insert_refresh(&row).await?,
            Some(parent) => {
                if !self.store.rotate_refresh(&parent.id, &row).await? {
                    // Used concurrently by someone else: a replay. The family is compromised.
                    self.store.revoke_family(&parent.family_id).await?;
                    return Err(crate::routes::auth::invalid_refresh());
                }
            }
        }
        Ok(TokenPair {
            access_token: self.access_token(&user.id, user.roles(), String::new())?,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.settings.access_token_seconds,
        })
    }
}
